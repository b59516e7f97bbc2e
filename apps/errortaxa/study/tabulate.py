"""Per-model statistics of a study: decide and count one model at a time against a shared memo
(:class:`Tabulator`), accumulate the counts (:class:`Accumulator`, also what a Ray task returns),
and turn them into the table and the most common errors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from errortaxa.engine import CompiledTaxonomy
from errortaxa.engine.features import FeatureProvider
from errortaxa.engine.results.accuracy import (
    LABEL_GROUPS,
    TARGET_GROUPS,
    GroupCells,
    class_sets,
    group_masks,
    levels_not_evaluated,
    pred_in_labels,
    value_masks,
)
from errortaxa.engine.run.imageset import ImageSetClassifier
from errortaxa.study.models import ImageSet
from errortaxa.study.shared import SharedErrors
from errortaxa.study.stats import clopper_pearson

GROUPS = (*(f"{g}_by_label" for g in LABEL_GROUPS), *(f"{g}_by_target" for g in TARGET_GROUPS))
"""The breakdown groups: the reference's (an image in every group one of its correct labels is in,
overlapping) and Shankar et al.'s (by the original target, a partition)."""
MLA_STATS = ("mla", "mla_minor", "mla_explainable")


@dataclass
class Accumulator:
    """Per-model counts of one study (or one chunk of it), and the error keys for the top errors."""

    models: list[str] = field(default_factory=list)
    samples: list[np.ndarray] = field(default_factory=list)  # int64[G]
    top1: list[np.ndarray] = field(default_factory=list)  # int64[G]
    mla: list[np.ndarray] = field(default_factory=list)  # int64[G]: images counted correct (the share)
    levels: list[np.ndarray] = field(default_factory=list)  # float[3, G]: per-class MLA, minor, explainable
    listed: list[np.ndarray] = field(default_factory=list)  # int64[G, 2]: listed images, their errors
    extras: list[dict[str, float]] = field(default_factory=list)  # e.g. top-1 on all validation images
    counts: list[np.ndarray] = field(default_factory=list)  # int64[G, V]
    # per study row: the primary-axis value (int16, -1: none or no prediction) and the prediction
    # (-1: none); the per-image analyses (shared errors, intervals, consistency, classes) read them
    values: list[np.ndarray] = field(default_factory=list)
    preds: list[np.ndarray] = field(default_factory=list)
    not_evaluated: list[np.ndarray] = field(default_factory=list)  # int64[G, R]: samples per group and rule
    # int64[G, 3]: samples an unevaluated rule might have counted otherwise under MLA, minor, explainable
    levels_not_evaluated: list[np.ndarray] = field(default_factory=list)
    # with a taxonomy comparison: distinct headline predictions (row * C + pred) and how many models
    # made each: a dense counter over every (row, class) while it is small enough, else (keys, counts)
    # parts merged now and then
    pairs: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    _dense: np.ndarray | None = None
    _pending: int = 0
    # with reserve(): every model's decision rows written in place into one [models, N] array each
    _blocks: tuple[np.ndarray, np.ndarray] | None = None

    def reserve(self, models: int, images: int, pred_dtype: type[np.integer[Any]]) -> None:
        """Room for the decisions of ``models`` models (before the first is added), so that
        :meth:`decisions` hands out slices instead of stacking the rows."""
        if self.values:
            raise ValueError("reserve() before the first model is added")
        self._blocks = (np.empty((models, images), np.int16), np.empty((models, images), pred_dtype))

    def add_decisions(self, values: np.ndarray, preds: np.ndarray) -> None:
        """One model's decision rows: its primary-axis values (-1: none) and predictions (-1: none)."""
        i = len(self.values)
        if self._blocks is not None and i < self._blocks[0].shape[0]:
            rows = self._blocks[0][i], self._blocks[1][i]
            np.copyto(rows[0], values, casting="unsafe")
            np.copyto(rows[1], preds, casting="unsafe")
            self.values.append(rows[0])
            self.preds.append(rows[1])
        else:
            self.values.append(values.astype(np.int16))
            self.preds.append(preds.astype(self._blocks[1].dtype if self._blocks is not None else preds.dtype))

    def decisions(self, start: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """The decision rows of the models from ``start`` on, [m, N] each: slices of the reserved
        arrays while every row is in them, else stacked."""
        end = len(self.values)
        if self._blocks is not None and end <= self._blocks[0].shape[0] and \
                all(v.base is self._blocks[0] for v in self.values[start:end]):
            return self._blocks[0][start:end], self._blocks[1][start:end]
        return np.stack(self.values[start:end]), np.stack(self.preds[start:end])

    def extend(self, other: Accumulator) -> None:
        self.models += other.models
        self.samples += other.samples
        self.top1 += other.top1
        self.mla += other.mla
        self.levels += other.levels
        self.listed += other.listed
        self.extras += other.extras
        self.counts += other.counts
        self.values += other.values
        self.preds += other.preds
        self.not_evaluated += other.not_evaluated
        self.levels_not_evaluated += other.levels_not_evaluated
        if other.pairs or other._dense is not None:
            self.add_pairs(*other.pair_counts())

    def add_pairs(self, keys: np.ndarray, counts: np.ndarray | None = None, size: int | None = None) -> None:
        """Count ``keys`` (with ``counts``, else once each: one model's distinct predictions, keys
        below ``size``)."""
        if counts is None and size is not None and size <= _DENSE_PAIRS:
            if self._dense is None:
                self._dense = np.zeros(size, np.uint32)
            self._dense[keys] += 1  # distinct keys: one prediction per image
            return
        self.pairs.append((keys, np.ones(keys.shape[0], np.int64) if counts is None else counts))
        self._pending += keys.shape[0]
        if self._pending > 1 << 22:
            self.pair_counts()

    def pair_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """The distinct keys (sorted) and their counts over everything added so far."""
        if self._dense is not None:
            nonzero = np.flatnonzero(self._dense)
            self.pairs.append((nonzero, self._dense[nonzero].astype(np.int64)))
            self._dense = None
        if len(self.pairs) != 1:
            keys = np.concatenate([k for k, _ in self.pairs]) if self.pairs else np.zeros(0, np.int64)
            counts = np.concatenate([c for _, c in self.pairs]) if self.pairs else np.zeros(0, np.int64)
            uniq, inverse = np.unique(keys, return_inverse=True)
            self.pairs = [(uniq, np.bincount(inverse, weights=counts, minlength=uniq.shape[0]).astype(np.int64))]
        self._pending = 0
        return self.pairs[0]


_DENSE_PAIRS = 1 << 26  # (image, class) pairs counted in a dense uint32 array up to this many (256 MB)


class Tabulator:
    """Decides and counts one model at a time against a shared ImageSetClassifier (with ``providers``,
    e.g. ``{"oov": provider}``, asked once per (image, class) pair for all models)."""

    def __init__(self, taxonomy: CompiledTaxonomy, images: ImageSet,
                 image_list: Sequence[str] | None = None, pairs: bool = False,
                 providers: Mapping[str, FeatureProvider] | None = None) -> None:
        self.taxonomy = taxonomy
        self.pairs = pairs
        self.images = images
        self.classifier = ImageSetClassifier(taxonomy, images.batch, providers)
        axis = taxonomy.axes[taxonomy.primary_axis]
        self.values = axis.value_ids
        self.mla_value = axis.mla_correct
        # rules that can be 'not evaluated' (a provider or a sample list): counted per model
        self.axis = axis
        self.unknowable = [(r, axis.rules[r].id) for r in axis.unknowable]
        batch = images.batch
        self.levels = np.stack(list(value_masks(axis).values()))  # bool[3, V + 1]
        groups = group_masks(batch, class_sets(taxonomy.vocabulary))
        problematic = batch.problematic
        masks = {"all": ~problematic}
        masks.update({f"{g}_by_label": ~problematic & m for g, m in groups["by_any_label"].items()})
        masks.update({f"{g}_by_target": ~problematic & m for g, m in groups["by_target"].items()})
        masks["problematic"] = problematic.copy()
        self.listed: np.ndarray | None = None
        if image_list is not None:
            rows = images.rows_of(image_list)
            self.listed = np.zeros(len(batch), bool)
            self.listed[rows[rows >= 0]] = True
            masks["image_list"] = self.listed & ~problematic
        self.group_names = list(masks)
        self.masks = masks
        self.headline = masks["all"]
        self.classes = len(taxonomy.vocabulary)
        self.pred_dtype = np.int16 if self.classes < 2**15 else np.int32
        # the per-model sums per group (and class) are sums over these cells (see GroupCells)
        self.cells = GroupCells(np.stack([masks[g] for g in self.group_names]), batch.target, self.classes)

    def add(self, acc: Accumulator, name: str, pred: np.ndarray, extras: Mapping[str, float] | None = None) -> None:
        """Decide and count one model's predictions (``pred``: int[N], -1 = none); ``extras``: its
        figures that do not come from the decisions (e.g. top-1 on all validation images)."""
        rows = np.flatnonzero(pred >= 0)
        full = rows.shape[0] == pred.shape[0]
        shown = pred if full else pred[rows]
        primary = self.classifier.primary(shown, None if full else rows)
        value = primary.value.astype(np.int64)  # per present prediction; -1 = no value
        cells = self.cells
        cell = cells.cell if full else cells.cell[rows]
        v = len(self.values)
        # per cell, its samples with each value (column 0: none)
        table = np.bincount(cell * (v + 1) + value + 1, minlength=cells.size * (v + 1)).reshape(cells.size, v + 1)
        table = table.astype(np.float64)
        correct = self.levels[:, :v].astype(np.float64) @ table[:, 1:].T  # [3, Q]
        counts = cells.per_group(table)  # [G, V + 1]
        batch = self.images.batch
        top1 = cells.per_group(cells.count(cell, shown == batch.target[rows]))
        acc.models.append(name)
        acc.samples.append(_ints(counts.sum(axis=1)))
        acc.top1.append(_ints(top1))
        acc.mla.append(_ints(cells.per_group(correct[0])))
        acc.levels.append(cells.class_means(correct, table.sum(axis=1)))
        if self.listed is not None:
            # the reference's count on an image list: an error whenever top-1 is not a correct label
            listed = self.listed[rows]
            wrong = ~pred_in_labels(batch, np.where(pred >= 0, pred, -1))[rows]
            acc.listed.append(_ints(np.stack([cells.per_group(cells.count(cell, listed)),
                                              cells.per_group(cells.count(cell, listed & wrong))], axis=1)))
        acc.extras.append(dict(extras or {}))
        acc.counts.append(_ints(counts[:, 1:]))
        if full:
            acc.add_decisions(value, pred.astype(self.pred_dtype, copy=False))
        else:
            per_row = np.full(pred.shape[0], -1, np.int16)
            per_row[rows] = value
            acc.add_decisions(per_row, np.where(pred >= 0, pred, -1).astype(self.pred_dtype))
        skipped = [np.flatnonzero(primary.rule_not_evaluated(r)) for r, _ in self.unknowable]
        unsure = levels_not_evaluated(self.axis, self.levels, value, skipped)
        counts_not_evaluated = self._per_group(cell, [*skipped, *unsure])  # [G, R + 3]
        acc.not_evaluated.append(counts_not_evaluated[:, :len(skipped)])
        acc.levels_not_evaluated.append(counts_not_evaluated[:, len(skipped):])
        if self.pairs:
            seen = np.flatnonzero(self.headline[rows])
            acc.add_pairs(rows[seen] * self.classes + shown[seen], size=len(pred) * self.classes)

    def _per_group(self, cell: np.ndarray, rows: Sequence[np.ndarray]) -> np.ndarray:
        """int64[G, len(rows)]: per group, how many of each entry's samples (indices into ``cell``)
        it has."""
        cells = self.cells
        if not any(r.size for r in rows):
            return np.zeros((cells.groups, len(rows)), np.int64)
        keys = np.concatenate([cell[r] + k * cells.size for k, r in enumerate(rows)])  # one bincount for all
        per_cell = np.bincount(keys, minlength=len(rows) * cells.size).reshape(len(rows), cells.size)
        return _ints(cells.per_group(per_cell.T.astype(np.float64)))


@dataclass(frozen=True)
class StudyDecisions:
    """Every model's primary-axis value and prediction on every study image (the per-image analyses'
    input: consistency, classes, factors)."""

    values: np.ndarray  # int16[M, N]: primary-axis value, -1: none or no prediction
    preds: np.ndarray  # int[M, N]: top-1 prediction, -1: none
    target: np.ndarray  # int[N]
    headline: np.ndarray  # bool[N]: the non-problematic images
    levels: np.ndarray  # bool[3, V + 1]: a value counted correct by MLA, minor, explainable (last: none)
    value_ids: list[str]

    @classmethod
    def of(cls, tab: Tabulator, acc: Accumulator) -> StudyDecisions:
        """The decisions of an accumulator's models (their per-row arrays are released)."""
        n = len(tab.images)
        values, preds = acc.decisions() if acc.values else (np.zeros((0, n), np.int16),
                                                            np.zeros((0, n), tab.pred_dtype))
        acc.values, acc.preds, acc._blocks = [], [], None
        return cls(values=values, preds=preds, target=tab.images.batch.target, headline=tab.headline,
                   levels=tab.levels, value_ids=list(tab.values))

    @property
    def present(self) -> np.ndarray:
        """bool[M, N]: a headline image the model has a prediction for."""
        return (self.preds >= 0) & self.headline[None, :]

    @property
    def top1_errors(self) -> np.ndarray:
        """bool[M, N]: a headline image whose prediction is not its target."""
        return self.present & (self.preds != self.target[None, :])


def _ints(sums: np.ndarray) -> np.ndarray:
    """int64 of float sums of counts (exact below 2**53)."""
    return np.rint(sums).astype(np.int64)


def frame(tab: Tabulator, acc: Accumulator, intervals: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None
          ) -> pd.DataFrame:
    """The per-model statistics table of an accumulator.

    Per group: ``samples``; ``top1`` and ``mla_share`` (plain shares of images, with 95%
    Clopper-Pearson intervals ``_lo`` / ``_hi``); ``mla``, ``mla_minor``, ``mla_explainable``
    (per-class means, see :mod:`errortaxa.engine.results.accuracy`; with their bootstrap intervals
    where ``intervals``, ``"group.stat" -> (lo, hi)``, has them); ``top1_errors``; ``n.VALUE`` and
    ``share.VALUE`` (with its Clopper-Pearson interval) per value; ``not_evaluated.RULE`` (samples
    whose rule could not be evaluated) and, where a rule can be, ``STAT_not_evaluated`` per MLA figure
    (samples an unevaluated rule might have counted otherwise: the figure is then not exact). On an
    image list: ``samples``, ``errors`` (top-1 not a correct label, the reference's count) and
    ``accuracy``; per group also ``listed`` / ``listed_errors``. ``error_share.VALUE`` (with its
    interval): the value's share of the headline errors. All accuracies are fractions in [0, 1].
    """
    cols: dict[str, Any] = {"model": acc.models}
    if not acc.models:
        return pd.DataFrame(cols)
    intervals = intervals or {}
    samples = np.stack(acc.samples)
    top1 = np.stack(acc.top1)
    mla = np.stack(acc.mla)
    levels = np.stack(acc.levels)  # [M, 3, G]
    counts = np.stack(acc.counts)  # [M, G, V]
    not_evaluated = np.stack(acc.not_evaluated)  # [M, G, R]
    levels_not_evaluated = np.stack(acc.levels_not_evaluated)  # [M, G, 3]
    listed = np.stack(acc.listed) if acc.listed else None  # [M, G, 2]
    extras = sorted({k for e in acc.extras for k in e})
    for key in extras:
        cols[key] = np.array([e.get(key, np.nan) for e in acc.extras], np.float64)

    pending: list[tuple[str, np.ndarray, np.ndarray]] = []  # shares whose intervals are computed together

    def share(name: str, k: np.ndarray, n: np.ndarray) -> None:
        cols[name] = np.where(n > 0, k / np.maximum(n, 1), np.nan)
        cols[f"{name}_lo"] = cols[f"{name}_hi"] = None  # the column's place; filled below
        pending.append((name, k, n))

    with np.errstate(invalid="ignore", divide="ignore"):
        for g, group in enumerate(tab.group_names):
            n = samples[:, g]
            cols[f"{group}.samples"] = n
            if group == "image_list" and listed is not None:
                wrong = listed[:, g, 1]
                cols[f"{group}.errors"] = wrong
                share(f"{group}.accuracy", n - wrong, n)
                continue
            share(f"{group}.top1", top1[:, g], n)
            share(f"{group}.mla_share", mla[:, g], n)
            for j, stat in enumerate(MLA_STATS):
                cols[f"{group}.{stat}"] = levels[:, j, g]
                if f"{group}.{stat}" in intervals:
                    cols[f"{group}.{stat}_lo"], cols[f"{group}.{stat}_hi"] = intervals[f"{group}.{stat}"]
                if tab.unknowable:
                    cols[f"{group}.{stat}_not_evaluated"] = levels_not_evaluated[:, g, j]
            cols[f"{group}.top1_errors"] = n - top1[:, g]
            for j, cat in enumerate(tab.values):
                cols[f"{group}.n.{cat}"] = counts[:, g, j]
            for j, cat in enumerate(tab.values):
                share(f"{group}.share.{cat}", counts[:, g, j], n)
            for column, (_, rule_id) in enumerate(tab.unknowable):
                cols[f"{group}.not_evaluated.{rule_id}"] = not_evaluated[:, g, column]
            if listed is not None:
                cols[f"{group}.listed"] = listed[:, g, 0]
                cols[f"{group}.listed_errors"] = listed[:, g, 1]
        errors = samples[:, 0] - mla[:, 0]
        for j, cat in enumerate(tab.values):
            if not tab.mla_value[j]:
                share(f"error_share.{cat}", counts[:, 0, j], errors)
    if pending:  # one call: each distinct (k, n) pair of the whole table is computed once
        lo, hi = clopper_pearson(np.concatenate([k for _, k, _ in pending]), np.concatenate([n for _, _, n in pending]))
        parts = len(pending)
        for (name, _, _), low, high in zip(pending, np.split(lo, parts), np.split(hi, parts), strict=True):
            cols[f"{name}_lo"], cols[f"{name}_hi"] = low, high
    return pd.DataFrame(cols)


def top_errors(tab: Tabulator, shared: SharedErrors, k: int = 10) -> dict[str, list[dict[str, Any]]]:
    """Per error category, the ``k`` most common (target, prediction) pairs over all models."""
    rows, preds, counts, value = shared.rows, shared.preds, shared.models, shared.values
    target = tab.images.batch.target[rows].astype(np.int64)
    names = tab.taxonomy.vocabulary.names
    images = tab.images.batch.images or [str(i) for i in range(len(tab.images))]
    out: dict[str, list[dict[str, Any]]] = {}
    for j, cat in enumerate(tab.values):
        sel = np.flatnonzero(value == j)
        if not sel.size:
            continue
        pair = target[sel] * tab.classes + preds[sel]
        uniq, inverse = np.unique(pair, return_inverse=True)
        totals = np.bincount(inverse, weights=counts[sel]).astype(np.int64)
        order = np.argsort(-totals, kind="stable")[:k]
        entries = []
        for u in order.tolist():
            t, p = divmod(int(uniq[u]), tab.classes)
            members = sel[inverse == u]
            example = members[np.argsort(-counts[members], kind="stable")[:3]]
            entries.append({
                "target": t, "target_name": names[t], "pred": p, "pred_name": names[p],
                "errors": int(totals[u]), "images": [images[int(rows[e])] for e in example],
            })
        out[cat] = entries
    return out
