"""same_superclass (class pair): both classes are in one superclass (``true``: any, singletons
included; a list: one of these). Evidence: the superclasses they share (of the list)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from errortaxa.engine.language.fields import Identifier, Strict
from errortaxa.engine.language.problems import KeyPath
from errortaxa.engine.predicates.base import Compiling, PairEntry, PairNode
from pydantic import Field


class SameSuperclassPair(Strict):
    same_superclass: bool | list[Identifier] = Field(
        description="true: any superclass (singletons included); a list: one of these superclasses"
    )


class SharedSuperclass(PairNode):
    def __init__(self, matrix: np.ndarray, membership: np.ndarray, names: list[str]) -> None:
        super().__init__(matrix)
        self.membership = membership  # bool[C, S] over the superclasses ``names`` it may report
        self.names = names

    def evidence(self, a: int, b: int) -> dict[str, Any]:
        both = self.membership[a] & self.membership[b]
        return {"superclasses": [self.names[k] for k in np.flatnonzero(both).tolist()]}

    def evidence_bound(self) -> dict[str, Any]:
        """The superclasses of the class that has the longest list (a pair shares at most those)."""
        cost = np.array([len(json.dumps(name)) + 1 for name in self.names], np.int64)
        widest = int(np.argmax(self.membership.astype(np.int64) @ cost)) if len(self.names) else 0
        return {"superclasses": [self.names[k] for k in np.flatnonzero(self.membership[widest]).tolist()]}


def _compile(pred: SameSuperclassPair, ctx: Compiling, path: KeyPath) -> PairNode:
    if pred.same_superclass is True:
        return SharedSuperclass(ctx.same_superclass, ctx.membership, ctx.superclass_names)
    if pred.same_superclass is False:
        return PairNode(~ctx.same_superclass)
    cols = []
    for j, name in enumerate(pred.same_superclass):
        if name in ctx.superclass_names:
            cols.append(ctx.superclass_names.index(name))
        else:
            ctx.error((*path, "same_superclass", j), f"unknown superclass '{name}'")
    cols = sorted(set(cols))
    sub = ctx.membership[:, cols]
    m = sub.astype(np.float32)
    return SharedSuperclass(m @ m.T > 0, sub, [ctx.superclass_names[k] for k in cols])


ENTRIES = [PairEntry("same_superclass", SameSuperclassPair, _compile)]
