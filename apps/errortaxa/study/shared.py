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

_BLOCK_ENTRIES = 1 << 20  # (model, image) decisions counted at a time
_BLOCK_KEYS = 1 << 21  # (image, class) keys a block's counter holds at most


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


def count_errors(values: np.ndarray, preds: np.ndarray, correct: np.ndarray, headline: np.ndarray,
                 classes: int) -> SharedErrors:
    """The distinct errors of every model's decisions (``values``: int[M, N] primary-axis values,
    -1 none; ``preds``: int[M, N] predictions, -1 none; ``correct``: bool[V + 1], a value counted
    correct by multi-label accuracy, last: none), counted a block of images at a time so that each
    block's (image, class) counter stays small and near in memory."""
    models, n = values.shape
    rows_per_block = max(1, min(_BLOCK_ENTRIES // max(models, 1), _BLOCK_KEYS // max(classes, 1)))
    keys_of: list[np.ndarray] = []
    counts_of: list[np.ndarray] = []
    values_of: list[np.ndarray] = []
    for r0 in range(0, n, rows_per_block):
        r1 = min(n, r0 + rows_per_block)
        pred = preds[:, r0:r1]
        error = (pred >= 0) & ~correct[values[:, r0:r1]] & headline[None, r0:r1]
        model, row = np.nonzero(error)
        keys = row.astype(np.int64) * classes + pred[model, row]
        counts = np.bincount(keys, minlength=(r1 - r0) * classes)
        distinct = np.flatnonzero(counts)
        value = np.empty(counts.shape[0], np.int16)
        value[keys] = values[model, r0 + row]  # a pair has one value whichever model makes it
        keys_of.append(distinct + r0 * classes)
        counts_of.append(counts[distinct])
        values_of.append(value[distinct].astype(np.int64))
    keys = np.concatenate(keys_of) if keys_of else np.zeros(0, np.int64)
    counts = np.concatenate(counts_of) if counts_of else np.zeros(0, np.int64)
    value_of = np.concatenate(values_of) if values_of else np.zeros(0, np.int64)
    rows, pred_of = np.divmod(keys, classes)
    return SharedErrors(rows=rows, preds=pred_of, values=value_of,
                        models=counts, wrong=np.bincount(rows, weights=counts, minlength=n).astype(np.int64),
                        predicted=np.count_nonzero(preds >= 0, axis=0).astype(np.int64), headline=headline)


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
