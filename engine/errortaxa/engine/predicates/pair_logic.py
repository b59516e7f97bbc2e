"""all / any / not over class-pair predicates (compiled to one matrix). Evidence: that of every
part that holds on the pair; a ``not`` gives none."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np
from errortaxa.engine.language.fields import Strict
from errortaxa.engine.language.problems import KeyPath
from errortaxa.engine.predicates.base import Compiling, PairEntry, PairNode
from pydantic import Field

if TYPE_CHECKING:
    from errortaxa.engine.predicates.base import PairPredicate


class AllPair(Strict):
    all: list[PairPredicate] = Field(min_length=1)


class AnyPair(Strict):
    any: list[PairPredicate] = Field(min_length=1)


class NotPair(Strict):
    not_: PairPredicate = Field(alias="not")


class PairJunction(PairNode):
    """``all`` or ``any`` of ``members``."""

    def __init__(self, matrix: np.ndarray, members: list[PairNode]) -> None:
        super().__init__(matrix)
        self.members = members

    def evidence(self, a: int, b: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for part in self.members:
            if part.matrix[a, b]:
                for key, value in part.evidence(a, b).items():
                    out.setdefault(key, value)
        return out

    def evidence_bound(self) -> dict[str, Any]:
        """Every member's keys, each at the longest any member reports."""
        out: dict[str, Any] = {}
        for part in self.members:
            for key, value in part.evidence_bound().items():
                if key not in out or len(json.dumps(value)) > len(json.dumps(out[key])):
                    out[key] = value
        return out


def _all(pred: AllPair, ctx: Compiling, path: KeyPath) -> PairNode:
    parts = [ctx.pair(p, (*path, "all", j)) for j, p in enumerate(pred.all)]
    return PairJunction(np.logical_and.reduce([p.matrix for p in parts]), parts)


def _any(pred: AnyPair, ctx: Compiling, path: KeyPath) -> PairNode:
    parts = [ctx.pair(p, (*path, "any", j)) for j, p in enumerate(pred.any)]
    return PairJunction(np.logical_or.reduce([p.matrix for p in parts]), parts)


def _not(pred: NotPair, ctx: Compiling, path: KeyPath) -> PairNode:
    return PairNode(~ctx.pair(pred.not_, (*path, "not")).matrix)


ENTRIES = [
    PairEntry("all", AllPair, _all),
    PairEntry("any", AnyPair, _any),
    PairEntry("not", NotPair, _not),
]
