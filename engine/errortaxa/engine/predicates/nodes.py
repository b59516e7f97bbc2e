"""Compiled sample predicates: vectorised evaluation in Kleene three-valued logic.

Every node evaluates on a set of rows at once and returns where it is true, where it is false
(neither = not evaluated, e.g. a provider had no features) and a *witness* per row: the class
(a label or the target) that made a class-pair test hold, or -1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from errortaxa.engine.providers import FeatureProvider
from errortaxa.engine.results.decisions import reason_code
from errortaxa.engine.samples import IndexedNames, SampleBatch, csr_take


@dataclass
class Outcome:
    """Three-valued result over ``rows``; ``evidence`` maps row positions to provider evidence."""

    true: np.ndarray
    false: np.ndarray
    witness: np.ndarray
    reason: np.ndarray | None = None  # int16 codes into Context.reasons where neither true nor false
    evidence: dict[int, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, mask: np.ndarray, witness: np.ndarray | None = None) -> Outcome:
        w = witness if witness is not None else np.full(mask.shape[0], -1, np.int32)
        return cls(mask, ~mask, w)


class Context:
    """One batch being evaluated, with the providers and the lazily built label-entry index."""

    def __init__(self, batch: SampleBatch, providers: Mapping[str, FeatureProvider]) -> None:
        self.batch = batch
        self.providers = providers
        self.sizes = np.diff(batch.label_offsets)
        self.reasons: list[str] = []

    def reason_code(self, text: str) -> int:
        """The code of a not-evaluated reason (codes index ``self.reasons``)."""
        return reason_code(self.reasons, text)

    def label_entries(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For the label sets of ``rows``: (position in rows, label class) of every entry."""
        b = self.batch
        if rows.shape[0] == len(b):
            return b.label_rows(), b.label_values
        offsets, values = csr_take(b.label_offsets, b.label_values, rows)
        return np.repeat(np.arange(rows.shape[0], dtype=np.int64), np.diff(offsets)), values


class Node:
    """A compiled predicate."""

    def eval(self, ctx: Context, rows: np.ndarray) -> Outcome:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


@dataclass
class Flag(Node):
    """pred_is_target, pred_in_labels, target_in_labels, labels_empty, problematic, always."""

    name: str
    expected: bool = True

    def eval(self, ctx: Context, rows: np.ndarray) -> Outcome:
        b = ctx.batch
        if self.name == "pred_is_target":
            mask = b.pred[rows] == b.target[rows]
        elif self.name in ("pred_in_labels", "target_in_labels"):
            column = b.pred if self.name == "pred_in_labels" else b.target
            pos, values = ctx.label_entries(rows)
            mask = np.zeros(rows.shape[0], bool)
            mask[pos[values == column[rows][pos]]] = True
        elif self.name == "labels_empty":
            mask = ctx.sizes[rows] == 0
        elif self.name == "problematic":
            mask = b.problematic[rows]
        else:
            mask = np.ones(rows.shape[0], bool)
        if not self.expected:
            mask = ~mask
        return Outcome.of(mask)

    def describe(self) -> str:
        return self.name + ("" if self.expected else " is false")


@dataclass
class InSampleList(Node):
    name: str
    images: frozenset[str] | None
    missing_reason: str | None = None
    # the membership of every name of the last base list seen through IndexedNames
    _listed: tuple[Sequence[str], np.ndarray] | None = field(default=None, init=False, repr=False, compare=False)

    def eval(self, ctx: Context, rows: np.ndarray) -> Outcome:
        n = rows.shape[0]
        names = ctx.batch.images
        reason = self.missing_reason or (None if names is not None else "the samples carry no image names")
        if reason is not None or self.images is None or names is None:
            code = ctx.reason_code(f"sample list '{self.name}': {reason}")
            return Outcome(np.zeros(n, bool), np.zeros(n, bool), np.full(n, -1, np.int32), np.full(n, code, np.int16))
        if isinstance(names, IndexedNames):  # each name of the base list is looked up once
            cached = self._listed
            if cached is None or cached[0] is not names.base:
                listed = np.fromiter((name in self.images for name in names.base), bool, count=len(names.base))
                cached = self._listed = (names.base, listed)
            return Outcome.of(cached[1][names.picks[rows]])
        hits = map(self.images.__contains__, map(names.__getitem__, rows.tolist()))
        return Outcome.of(np.fromiter(hits, bool, count=n))

    def describe(self) -> str:
        return f"image in sample list '{self.name}'"


@dataclass
class PairTest(Node):
    """A class x class relation between the prediction and the target or some label."""

    matrix: np.ndarray  # bool[C, C], [prediction, other]
    other: str  # "target" | "label"
    text: str

    def eval(self, ctx: Context, rows: np.ndarray) -> Outcome:
        b = ctx.batch
        pred = b.pred[rows]
        if self.other == "target":
            target = b.target[rows]
            mask = self.matrix[pred, target]
            return Outcome.of(mask, np.where(mask, target, -1).astype(np.int32))
        pos, values = ctx.label_entries(rows)
        hit = self.matrix[pred[pos], values]
        mask = np.zeros(rows.shape[0], bool)
        hit_pos = pos[hit]
        mask[hit_pos] = True
        witness = np.full(rows.shape[0], -1, np.int32)
        witness[hit_pos[::-1]] = values[hit][::-1]  # the first matching label wins
        return Outcome.of(mask, witness)

    def describe(self) -> str:
        return f"prediction vs {'target' if self.other == 'target' else 'some label'}: {self.text}"


@dataclass
class Feature(Node):
    provider: str
    test: str
    params: dict[str, Any]

    def eval(self, ctx: Context, rows: np.ndarray) -> Outcome:
        n = rows.shape[0]
        provider = ctx.providers.get(self.provider)
        if provider is None:
            code = ctx.reason_code(f"no '{self.provider}' feature provider is configured")
            none = np.zeros(n, bool)
            return Outcome(none, none.copy(), np.full(n, -1, np.int32), np.full(n, code, np.int16))
        result = provider.evaluate(self.test, self.params, ctx.batch, rows)
        true = result.holds & result.known
        reason = np.full(n, -1, np.int16)
        for i in np.flatnonzero(~result.known).tolist():
            reason[i] = ctx.reason_code(result.reason[i] or f"{self.provider} gave no result")
        evidence = {i: result.evidence[i] for i in np.flatnonzero(true).tolist()}
        return Outcome(true, ~result.holds & result.known, np.full(n, -1, np.int32), reason, evidence)

    def describe(self) -> str:
        return f"feature {self.provider}.{self.test}"


@dataclass
class All(Node):
    parts: list[Node]

    def eval(self, ctx: Context, rows: np.ndarray) -> Outcome:
        """Each part is asked only about the rows that no earlier part made false."""
        n = rows.shape[0]
        live = np.arange(n, dtype=np.int64)
        outs: list[Outcome] = []
        for part in self.parts:
            out = part.eval(ctx, rows if live.shape[0] == n else rows[live])
            outs.append(_widen(out, live, n) if live.shape[0] < n else out)
            live = live[~out.false]
            if live.shape[0] == 0:
                break
        true = np.logical_and.reduce([o.true for o in outs]) if len(outs) == len(self.parts) else np.zeros(n, bool)
        false = np.logical_or.reduce([o.false for o in outs])
        return _combine(outs, true, false)

    def describe(self) -> str:
        return "all of (" + "; ".join(p.describe() for p in self.parts) + ")"


@dataclass
class Any_(Node):
    parts: list[Node]

    def eval(self, ctx: Context, rows: np.ndarray) -> Outcome:
        outs = [p.eval(ctx, rows) for p in self.parts]
        true = np.logical_or.reduce([o.true for o in outs])
        false = np.logical_and.reduce([o.false for o in outs])
        return _combine(outs, true, false)

    def describe(self) -> str:
        return "any of (" + "; ".join(p.describe() for p in self.parts) + ")"


@dataclass
class Not(Node):
    part: Node

    def eval(self, ctx: Context, rows: np.ndarray) -> Outcome:
        o = self.part.eval(ctx, rows)
        return Outcome(o.false, o.true, np.full(rows.shape[0], -1, np.int32), o.reason)

    def describe(self) -> str:
        return f"not ({self.part.describe()})"


def _widen(out: Outcome, rows: np.ndarray, n: int) -> Outcome:
    """An outcome on ``rows`` of n rows as one on all n (the others: false, no witness, no reason)."""
    true, false = np.zeros(n, bool), np.ones(n, bool)
    true[rows], false[rows] = out.true, out.false
    witness = np.full(n, -1, np.int32)
    witness[rows] = out.witness
    reason = None
    if out.reason is not None:
        reason = np.full(n, -1, np.int16)
        reason[rows] = out.reason
    return Outcome(true, false, witness, reason, {int(rows[i]): e for i, e in out.evidence.items()})


def _combine(outs: list[Outcome], true: np.ndarray, false: np.ndarray) -> Outcome:
    witness = np.full(true.shape[0], -1, np.int32)
    for o in reversed(outs):  # the first part with a witness wins
        take = o.true & (o.witness >= 0)
        witness[take] = o.witness[take]
    witness[~true] = -1
    unknown = ~(true | false)
    reason: np.ndarray | None = None
    evidence: dict[int, Any] = {}
    for o in reversed(outs):  # the first part's reason wins
        if o.reason is not None and unknown.any():
            reason = np.full(true.shape[0], -1, np.int16) if reason is None else reason
            take = unknown & (o.reason >= 0)
            reason[take] = o.reason[take]
    for o in outs:
        for i, e in o.evidence.items():
            if true[i]:
                evidence.setdefault(i, e)
    return Outcome(true, false, witness, reason, evidence)
