"""Compare two taxonomies on the same samples: a confusion matrix of their categories."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from errortaxa.engine import CompiledTaxonomy, Decisions, SampleBatch, evaluate
from errortaxa.engine.features import FeatureProvider
from errortaxa.engine.inputs import LabeledImages, ReadOptions, read_predictions

NONE = "(none)"


def read_samples(path: str | os.PathLike[str], labels: LabeledImages | None,
                 options: ReadOptions | None = None) -> SampleBatch:
    """The samples of a predictions file in any registered format: JSONL records with their own
    labels, other predictions joined with ``labels``."""
    options = options or ReadOptions()
    return read_predictions(path, options).with_labels(labels, options.num_classes)[0]


@dataclass
class DiffResult:
    """Rows: taxonomy A's values (+ none), columns: B's; ``examples[(i, j)]``: sample indices."""

    name_a: str
    name_b: str
    axis_a: str
    axis_b: str
    values_a: list[str]
    values_b: list[str]
    matrix: np.ndarray  # int64[len(values_a), len(values_b)]
    examples: dict[tuple[int, int], list[dict[str, Any]]] = field(default_factory=dict)
    samples: int = 0

    @property
    def same(self) -> int:
        """Samples whose value has the same id in both taxonomies."""
        return int(sum(self.matrix[i, self.values_b.index(v)] for i, v in enumerate(self.values_a)
                       if v in self.values_b))

    @property
    def agreement(self) -> float:
        return self.same / self.samples if self.samples else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": {"taxonomy": self.name_a, "axis": self.axis_a, "values": self.values_a},
            "b": {"taxonomy": self.name_b, "axis": self.axis_b, "values": self.values_b},
            "samples": self.samples, "same": self.same, "agreement": self.agreement,
            "matrix": self.matrix.tolist(),
            "cells": [{"a": self.values_a[i], "b": self.values_b[j], "count": int(self.matrix[i, j]),
                       "examples": ex} for (i, j), ex in sorted(self.examples.items())],
        }


def diff_taxonomies(a: CompiledTaxonomy, b: CompiledTaxonomy, batch: SampleBatch, *,
                    axis_a: str | None = None, axis_b: str | None = None, errors_only: bool = True,
                    examples: int = 3, weights: np.ndarray | None = None,
                    providers_a: Mapping[str, FeatureProvider] | None = None,
                    providers_b: Mapping[str, FeatureProvider] | None = None,
                    decisions_a: Decisions | None = None) -> DiffResult:
    """Classify ``batch`` with both taxonomies and cross-tabulate the values of one axis of each.

    Each taxonomy is evaluated with its feature providers (``providers_a``, ``providers_b``; e.g. the
    OOV provider); ``decisions_a``: A's decisions on ``batch`` when already made (a study's memo).

    With ``errors_only`` the samples both taxonomies call correct (values tagged ``mla_correct``)
    are left out. ``weights`` (int per sample): each sample counts that many times (a study's
    distinct predictions with the number of models that made each); the examples of a cell are then
    its heaviest samples, each with its ``count``.
    """
    if a.vocabulary.wnids != b.vocabulary.wnids:
        raise ValueError(f"taxonomies '{a.name}' and '{b.name}' have different class vocabularies")
    axis_a = axis_a or a.primary_axis
    axis_b = axis_b or b.primary_axis
    for tax, axis in ((a, axis_a), (b, axis_b)):
        if axis not in tax.axes:
            raise KeyError(f"taxonomy '{tax.name}' has no axis '{axis}' (axes: {', '.join(tax.axes)})")
    if decisions_a is not None and len(decisions_a.primary.value) != len(batch):
        raise ValueError(f"decisions_a has {len(decisions_a.primary.value)} samples for {len(batch)}")
    da = (decisions_a if decisions_a is not None else evaluate(a, batch, providers_a)).axes[axis_a]
    db = evaluate(b, batch, providers_b).axes[axis_b]
    va = [*da.values, NONE]
    vb = [*db.values, NONE]
    ia = np.where(da.value >= 0, da.value, len(da.values)).astype(np.int64)
    ib = np.where(db.value >= 0, db.value, len(db.values)).astype(np.int64)
    keep = np.ones(len(batch), bool)
    if errors_only:
        keep = ~(a.axes[axis_a].mla_correct[ia] & b.axes[axis_b].mla_correct[ib])
    rows = np.flatnonzero(keep)
    w = None if weights is None else np.asarray(weights, np.int64)[rows]
    matrix = np.bincount(ia[rows] * len(vb) + ib[rows], weights=w,
                         minlength=len(va) * len(vb)).reshape(len(va), len(vb)).astype(np.int64)
    # drop an all-zero "(none)" row / column
    if not matrix[-1].any():
        matrix, va = matrix[:-1], va[:-1]
    if not matrix[:, -1].any():
        matrix, vb = matrix[:, :-1], vb[:-1]
    names = a.vocabulary.names
    out: dict[tuple[int, int], list[dict[str, Any]]] = {}
    order = rows if w is None else rows[np.argsort(-w, kind="stable")]
    for r in order.tolist():
        i, j = int(ia[r]), int(ib[r])
        cell = out.setdefault((i, j), [])
        if len(cell) < examples:
            t, p = int(batch.target[r]), int(batch.pred[r])
            ident = (batch.ids[r] if batch.ids is not None else batch.images[r] if batch.images else str(r))
            cell.append({"sample": ident, "target": t, "target_name": names[t], "pred": p, "pred_name": names[p],
                         "labels": [names[x] for x in batch.labels_of(r)]})
            if weights is not None:
                cell[-1]["count"] = int(weights[r])
    samples = int(rows.shape[0]) if w is None else int(w.sum())
    return DiffResult(a.name, b.name, axis_a, axis_b, va, vb, matrix, out, samples)


def format_diff(result: DiffResult, examples: bool = True) -> str:
    """The confusion matrix as a terminal table, then example errors per off-diagonal cell."""
    head = f"{result.name_a}.{result.axis_a} (rows) vs {result.name_b}.{result.axis_b} (columns)"
    width = max([len(v) for v in result.values_a] + [8])
    cols = [v[:14] for v in result.values_b]
    lines = [head, " " * width + " " + " ".join(f"{c:>14}" for c in cols)]
    for i, v in enumerate(result.values_a):
        lines.append(f"{v:<{width}} " + " ".join(f"{int(x):>14}" for x in result.matrix[i]))
    lines.append(f"{result.samples} samples; same category in both: {result.same} ({result.agreement:.1%})")
    if examples:
        for (i, j), exs in sorted(result.examples.items()):
            a_id, b_id = result.values_a[i], result.values_b[j]
            if a_id == b_id or not exs:
                continue
            lines.append(f"  {a_id} -> {b_id} ({int(result.matrix[i, j])}):")
            for e in exs:
                models = f" ({e['count']} models)" if "count" in e else ""
                lines.append(f"    {e['sample']}: target {e['target']} {e['target_name']}, "
                             f"pred {e['pred']} {e['pred_name']}{models}")
    return "\n".join(lines)
