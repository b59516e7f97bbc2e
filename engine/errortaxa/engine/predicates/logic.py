"""all / any / not over sample predicates, in Kleene three-valued logic."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from errortaxa.engine.language.fields import Strict
from errortaxa.engine.language.problems import KeyPath
from errortaxa.engine.predicates.base import Compiling, Context, Node, Outcome, SampleEntry
from pydantic import Field

if TYPE_CHECKING:
    from errortaxa.engine.predicates.base import Predicate


class AllPred(Strict):
    all: list[Predicate] = Field(min_length=1)


class AnyPred(Strict):
    any: list[Predicate] = Field(min_length=1)


class NotPred(Strict):
    not_: Predicate = Field(alias="not")


@dataclass
class AllOf(Node):
    members: list[Node]
    lists_parts: ClassVar[bool] = True

    def eval(self, ctx: Context, rows: np.ndarray) -> Outcome:
        """Each part is asked only about the rows that no earlier part made false."""
        n = rows.shape[0]
        live = np.arange(n, dtype=np.int64)
        outs: list[Outcome] = []
        for part in self.members:
            out = ctx.eval(part, rows if live.shape[0] == n else rows[live])
            outs.append(_widen(out, live, n) if live.shape[0] < n else out)
            live = live[~out.false]
            if live.shape[0] == 0:
                break
        true = np.logical_and.reduce([o.true for o in outs]) if len(outs) == len(self.members) \
            else np.zeros(n, bool)
        false = np.logical_or.reduce([o.false for o in outs])
        return _combine(outs, true, false)

    def describe(self) -> str:
        return "all of (" + "; ".join(p.describe() for p in self.members) + ")"

    def parts(self) -> Sequence[Node]:
        return self.members


@dataclass
class AnyOf(Node):
    members: list[Node]
    lists_parts: ClassVar[bool] = True

    def eval(self, ctx: Context, rows: np.ndarray) -> Outcome:
        outs = [ctx.eval(p, rows) for p in self.members]
        true = np.logical_or.reduce([o.true for o in outs])
        false = np.logical_and.reduce([o.false for o in outs])
        return _combine(outs, true, false)

    def describe(self) -> str:
        return "any of (" + "; ".join(p.describe() for p in self.members) + ")"

    def parts(self) -> Sequence[Node]:
        return self.members


@dataclass
class NotOf(Node):
    """The negation: no witness and no evidence of what it negates."""

    member: Node

    def eval(self, ctx: Context, rows: np.ndarray) -> Outcome:
        o = ctx.eval(self.member, rows)
        return Outcome(o.false, o.true, np.full(rows.shape[0], -1, np.int32), None, o.reason)

    def describe(self) -> str:
        return f"not ({self.member.describe()})"

    def parts(self) -> Sequence[Node]:
        return [self.member]

    def witness_leaves(self) -> list[Node]:
        return []


def _widen(out: Outcome, rows: np.ndarray, n: int) -> Outcome:
    """An outcome on ``rows`` of n rows as one on all n (the others: false, no witness, no reason)."""
    true, false = np.zeros(n, bool), np.ones(n, bool)
    true[rows], false[rows] = out.true, out.false
    witness = np.full(n, -1, np.int32)
    witness[rows] = out.witness
    source = reason = None
    if out.source is not None:
        source = np.full(n, -1, np.int16)
        source[rows] = out.source
    if out.reason is not None:
        reason = np.full(n, -1, np.int16)
        reason[rows] = out.reason
    return Outcome(true, false, witness, source, reason, {int(rows[i]): e for i, e in out.evidence.items()})


def _combine(outs: list[Outcome], true: np.ndarray, false: np.ndarray) -> Outcome:
    n = true.shape[0]
    witness = np.full(n, -1, np.int32)
    source: np.ndarray | None = None
    for o in reversed(outs):  # the first part with a witness wins
        if o.source is None:
            continue
        take = o.true & (o.witness >= 0)
        witness[take] = o.witness[take]
        source = np.full(n, -1, np.int16) if source is None else source
        source[take] = o.source[take]
    witness[~true] = -1
    unknown = ~(true | false)
    reason: np.ndarray | None = None
    evidence: dict[int, dict[str, Any]] = {}
    for o in reversed(outs):  # the first part's reason wins
        if o.reason is not None and unknown.any():
            reason = np.full(n, -1, np.int16) if reason is None else reason
            take = unknown & (o.reason >= 0)
            reason[take] = o.reason[take]
    for o in outs:
        for i, e in o.evidence.items():
            if true[i]:
                evidence.setdefault(i, e)
    return Outcome(true, false, witness, source, reason, evidence)


def _all(pred: AllPred, ctx: Compiling, path: KeyPath) -> Node:
    return AllOf([ctx.node(p, (*path, "all", j)) for j, p in enumerate(pred.all)])


def _any(pred: AnyPred, ctx: Compiling, path: KeyPath) -> Node:
    return AnyOf([ctx.node(p, (*path, "any", j)) for j, p in enumerate(pred.any)])


def _not(pred: NotPred, ctx: Compiling, path: KeyPath) -> Node:
    return NotOf(ctx.node(pred.not_, (*path, "not")))


ENTRIES = [
    SampleEntry("all", AllPred, _all, conjuncts=lambda parts, of: [c for p in parts for c in of(p)]),
    SampleEntry("any", AnyPred, _any),
    SampleEntry("not", NotPred, _not),
]
