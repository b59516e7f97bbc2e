"""Classify many models on one fixed image set, sharing every per-(image, class) decision.

A decision depends only on the image (target, labels, flags) and the predicted class, so the
predictions of 1000 models on the same 20,000 images need each distinct (image, class) pair
decided once: later models mostly gather from the memo tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .compiler import CompiledTaxonomy
from .decisions import AxisDecisions, Decisions, reason_code
from .predicates import All, Any_, Feature, InSampleList, Node, Not
from .providers import FeatureProvider
from .samples import SampleBatch


class ImageSetClassifier:
    """Decisions for predictions over ``images`` (a batch whose ``pred`` column is ignored)."""

    def __init__(self, taxonomy: CompiledTaxonomy, images: SampleBatch,
                 providers: Mapping[str, FeatureProvider] | None = None) -> None:
        images.validate(len(taxonomy.vocabulary))
        self.taxonomy = taxonomy
        self.images = images
        self.providers = providers or {}
        self.classes = len(taxonomy.vocabulary)
        shape = (len(images), self.classes)
        # rule + 2 in the low 16 bits (0 = not computed), witness + 1 in the high 16 bits
        self.packed = {a: np.zeros(shape, np.int32) for a in taxonomy.axes}
        bits = max(len(ax.rules) for ax in taxonomy.axes.values())
        dtype = np.uint8 if bits <= 8 else np.uint16 if bits <= 16 else np.uint32 if bits <= 32 else np.uint64
        self.skipped = {a: np.zeros(shape, dtype) for a in taxonomy.axes}
        self.reason_codes: dict[tuple[str, int], np.ndarray] = {}
        self.evidence: dict[str, dict[int, Any]] = {a: {} for a in taxonomy.axes}
        self.reasons: list[str] = []
        self.row_values = {a: np.array([r.value for r in ax.rules] + [-1], np.int16)
                           for a, ax in taxonomy.axes.items()}
        # rules before the first one that can be 'not evaluated' never leave skipped bits
        self.first_unknowable = {a: next((k for k, r in enumerate(ax.rules) if _can_be_unknown(r.node)),
                                         len(ax.rules)) for a, ax in taxonomy.axes.items()}

    def classify(self, pred: np.ndarray, rows: np.ndarray | None = None) -> Decisions:
        """Decisions for one model: ``pred[i]`` is its prediction on image ``rows[i]`` (default: all)."""
        rows = np.arange(len(self.images), dtype=np.int64) if rows is None else np.asarray(rows, np.int64)
        pred = np.asarray(pred)
        if pred.shape != rows.shape:
            raise ValueError(f"pred has {pred.shape[0]} entries for {rows.shape[0]} images")
        bad = np.flatnonzero((pred < 0) | (pred >= self.classes))
        if bad.size:
            raise ValueError(f"pred[{int(bad[0])}]: class id {int(pred[bad[0]])} is outside 0..{self.classes - 1}")
        flat = rows * self.classes + pred.astype(np.int64)
        primary = next(iter(self.taxonomy.axes))
        packed = self.packed[primary].ravel()[flat]
        missing = packed == 0
        if missing.any():
            self._fill(np.unique(flat[missing]))
            packed = self.packed[primary].ravel()[flat]
        batch = SampleBatch(
            target=self.images.target[rows], pred=pred.astype(np.int32, copy=False),
            label_offsets=self.images.label_offsets, label_values=self.images.label_values,
            problematic=self.images.problematic[rows],
            images=self.images.images, ids=self.images.ids,
        ) if rows.shape[0] == len(self.images) else self.images.take(rows, pred)
        axes = {}
        for name, ax in self.taxonomy.axes.items():
            if name != primary:
                packed = self.packed[name].ravel()[flat]
            rule = ((packed & 0xFFFF) - 2).astype(np.int16)
            skipped = np.zeros(flat.shape[0], np.uint64)
            late = np.flatnonzero((rule > self.first_unknowable[name]) | (rule < 0))
            skipped[late] = self.skipped[name].ravel()[flat[late]]
            evidence = self.evidence[name]
            codes: dict[int, np.ndarray] = {}
            for (a, r), memo in self.reason_codes.items():
                if a == name:
                    codes[r] = np.full(flat.shape[0], -1, np.int16)
                    codes[r][late] = memo.ravel()[flat[late]]
            axes[name] = AxisDecisions(
                axis=name, values=ax.value_ids, rules=ax.rule_ids, value=self.row_values[name][rule], rule=rule,
                witness=(packed >> 16) - 1, not_evaluated=skipped,
                evidence={i: evidence[k] for i, k in enumerate(flat.tolist()) if k in evidence} if evidence else {},
                reason_codes=codes,
            )
        return Decisions(self.taxonomy, batch, axes, self.reasons)

    def _fill(self, keys: np.ndarray) -> None:
        """Decide the (image, class) pairs ``keys`` (flat indices) and store them in the memo."""
        rows, classes = np.divmod(keys, self.classes)
        decided = self.taxonomy.evaluate(self.images.take(rows, classes), self.providers, validate=False)
        remap = np.array([reason_code(self.reasons, t) for t in decided.reasons] + [-1], np.int16)
        for name, ax in decided.axes.items():
            self.packed[name].ravel()[keys] = (ax.rule.astype(np.int32) + 2) | ((ax.witness + 1) << 16)
            self.skipped[name].ravel()[keys] = ax.not_evaluated
            for r, codes in ax.reason_codes.items():
                if (name, r) not in self.reason_codes:
                    self.reason_codes[(name, r)] = np.full(self.packed[name].shape, -1, np.int16)
                self.reason_codes[(name, r)].ravel()[keys] = remap[codes]
            for i, ev in ax.evidence.items():
                self.evidence[name][int(keys[i])] = ev


def _can_be_unknown(node: Node) -> bool:
    """Whether a compiled predicate can be 'not evaluated' (it asks a provider or a sample list)."""
    if isinstance(node, Feature | InSampleList):
        return True
    if isinstance(node, All | Any_):
        return any(_can_be_unknown(p) for p in node.parts)
    if isinstance(node, Not):
        return _can_be_unknown(node.part)
    return False
