"""Errors shared across models: every distinct (image, predicted class) error of a study with its
category and the number of models that make it, and per image how many models get it wrong.

An error is a headline (non-problematic) image whose prediction is not counted correct by
multi-label accuracy (its primary-axis value is not tagged ``mla_correct``), as in the models
table's ``error_share`` columns. A (image, prediction) pair has one category whichever model makes
it: the study decides each pair once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

_DENSE_KEYS = 1 << 26  # (image, class) keys counted in a dense array up to this many


@dataclass(frozen=True)
class SharedErrors:
    """The distinct errors of a study (sorted by key ``row * classes + pred``) and per-image counts."""

    rows: np.ndarray  # int64[E]: the error's study row
    preds: np.ndarray  # int64[E]: its predicted class
    values: np.ndarray  # int64[E]: its primary-axis value
    models: np.ndarray  # int64[E]: how many models make it
    wrong: np.ndarray  # int64[N]: per study row, models whose prediction is an error (0 off the headline)
    predicted: np.ndarray  # int64[N]: per study row, models with a prediction
    headline: np.ndarray  # bool[N]


class ErrorCounter:
    """Counts, model by model, the study's distinct errors (keys ``row * classes + pred``, distinct
    within a model) with their values, and per study row the models that err on it and that predict
    it: a dense counter over every (row, class) key while there are few enough, else sorted parts
    merged now and then."""

    def __init__(self, rows: int, classes: int) -> None:
        self.rows, self.classes = rows, classes
        self.predicted = np.zeros(rows, np.int64)
        size = rows * classes
        self._count = np.zeros(size, np.uint32) if size <= _DENSE_KEYS else None
        self._value = np.full(size, -1, np.int16) if size <= _DENSE_KEYS else None
        self._parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._pending = 0

    def add(self, keys: np.ndarray, values: np.ndarray, predicted_rows: np.ndarray | None) -> None:
        """One model's errors (``keys`` distinct, ``values`` their primary-axis values) and the rows
        it predicts (None: every row)."""
        if predicted_rows is None:
            self.predicted += 1
        else:
            self.predicted[predicted_rows] += 1
        if self._count is not None and self._value is not None:
            self._count[keys] += 1
            self._value[keys] = values
            return
        self._merge(keys, np.ones(keys.shape[0], np.int64), values)

    def extend(self, other: ErrorCounter) -> None:
        """Add another counter's counts (a chunk of the study's models)."""
        self.predicted += other.predicted
        keys, counts, values = other.counts()
        if self._count is not None and self._value is not None:
            self._count[keys] += counts.astype(np.uint32)
            self._value[keys] = values
        else:
            self._merge(keys, counts, values)

    def _merge(self, keys: np.ndarray, counts: np.ndarray, values: np.ndarray) -> None:
        self._parts.append((keys, counts, values))
        self._pending += keys.shape[0]
        if self._pending > 1 << 22:
            self.counts()

    def counts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The distinct keys (sorted), how many models make each, and its value."""
        if self._count is not None and self._value is not None:
            keys = np.flatnonzero(self._count)
            return keys, self._count[keys].astype(np.int64), self._value[keys].astype(np.int64)
        if len(self._parts) != 1:
            keys = np.concatenate([k for k, _, _ in self._parts]) if self._parts else np.zeros(0, np.int64)
            counts = np.concatenate([c for _, c, _ in self._parts]) if self._parts else np.zeros(0, np.int64)
            values = np.concatenate([v for _, _, v in self._parts]) if self._parts else np.zeros(0, np.int64)
            uniq, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
            totals = np.bincount(inverse.ravel(), weights=counts, minlength=uniq.shape[0]).astype(np.int64)
            self._parts = [(uniq, totals, values[first].astype(np.int64))]
        self._pending = 0
        return self._parts[0]

    def compact(self) -> None:
        """Drop the dense arrays (before the counter travels from a Ray task)."""
        if self._count is not None:
            self._parts = [self.counts()]
            self._count = self._value = None

    def result(self, headline: np.ndarray) -> SharedErrors:
        keys, counts, values = self.counts()
        rows, preds = np.divmod(keys, self.classes)
        wrong = np.bincount(rows, weights=counts, minlength=self.rows).astype(np.int64)  # a model errs once a row
        return SharedErrors(rows=rows, preds=preds, values=values, models=counts, wrong=wrong,
                            predicted=self.predicted.copy(), headline=headline)


def common_errors_frame(shared: SharedErrors, images: Sequence[str], target: np.ndarray,
                        categories: list[str]) -> pd.DataFrame:
    """``common_errors``: one row per distinct error, most shared first (ties: image order)."""
    order = np.argsort(-shared.models, kind="stable")  # the errors are sorted by (row, pred)
    rows = shared.rows[order]
    return pd.DataFrame({
        "image": _names(rows, images), "target": target[rows].astype(np.int64), "pred": shared.preds[order],
        "category": pd.Categorical.from_codes(shared.values[order], categories=categories),
        "models_count": shared.models[order],
        "models_share": shared.models[order] / np.maximum(shared.predicted[rows], 1),
    })


def _names(rows: np.ndarray, images: Sequence[str]) -> Any:
    """The image names of ``rows`` (categorical when the names are distinct)."""
    index = pd.Index(images)
    if index.is_unique:
        return pd.Categorical.from_codes(rows, categories=index)
    return np.asarray(images, dtype=object)[rows]


def images_frame(shared: SharedErrors, images: Sequence[str], target: np.ndarray) -> pd.DataFrame:
    """``images``: per headline image, how many models get it wrong and their share of the models
    with a prediction for it, most often wrong first (ties: image order)."""
    rows = np.flatnonzero(shared.headline)
    wrong = shared.wrong[rows]
    order = np.argsort(-wrong, kind="stable")
    rows, wrong = rows[order], wrong[order]
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(shared.predicted[rows] > 0, wrong / np.maximum(shared.predicted[rows], 1), np.nan)
    return pd.DataFrame({"image": _names(rows, images), "target": target[rows].astype(np.int64),
                         "models_wrong": wrong, "models_share": share})
