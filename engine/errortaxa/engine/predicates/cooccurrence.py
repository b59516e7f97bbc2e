"""cooccurs (class pair): the two classes co-occur at least ``min_count`` times in a cooccurrence
resource. Evidence: the count."""

from __future__ import annotations

from typing import Any

import numpy as np
from errortaxa.engine.language.fields import Identifier, Strict
from errortaxa.engine.language.problems import KeyPath
from errortaxa.engine.predicates.base import Compiling, PairEntry, PairNode
from pydantic import Field


class CooccurArgs(Strict):
    table: Identifier
    min_count: int = Field(ge=1)


class CooccursPair(Strict):
    cooccurs: CooccurArgs


class Cooccurs(PairNode):
    def __init__(self, table: np.ndarray, min_count: int) -> None:
        super().__init__(table >= min_count)
        self.table = table

    def evidence(self, a: int, b: int) -> dict[str, Any]:
        return {"cooccurrence": int(self.table[a, b])}

    def evidence_bound(self) -> dict[str, Any]:
        """The count with the most digits."""
        extremes = [int(self.table.max()), int(self.table.min())] if self.table.size else [0]
        return {"cooccurrence": max(extremes, key=lambda v: len(str(v)))}


def _compile(pred: CooccursPair, ctx: Compiling, path: KeyPath) -> PairNode:
    table = ctx.cooccurrence.get(pred.cooccurs.table)
    if table is None:
        ctx.error((*path, "cooccurs", "table"), f"no cooccurrence resource named '{pred.cooccurs.table}'")
        return PairNode(np.zeros((ctx.num_classes, ctx.num_classes), bool))
    return Cooccurs(table, pred.cooccurs.min_count)


ENTRIES = [PairEntry("cooccurs", CooccursPair, _compile)]
