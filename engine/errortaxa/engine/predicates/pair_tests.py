"""pred_vs_target / pred_vs_label: a class-pair predicate between the prediction and the target, or
some label. The class it held with is the witness; the class-pair predicate says what held."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from errortaxa.engine.language.fields import Strict
from errortaxa.engine.language.problems import KeyPath
from errortaxa.engine.predicates.base import Compiling, Context, Node, Outcome, PairNode, SampleEntry
from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from errortaxa.engine.predicates.base import PairPredicate


class PredVsTarget(Strict):
    pred_vs_target: PairPredicate = Field(description="the pair (prediction, target) satisfies the predicate")


class PredVsLabel(Strict):
    pred_vs_label: PairPredicate = Field(description="(prediction, l) satisfies it for some label l")


@dataclass
class PairTest(Node):
    """A class x class relation between the prediction and the target or some label."""

    pair: PairNode
    other: str  # "target" | "label"
    text: str

    def eval(self, ctx: Context, rows: np.ndarray) -> Outcome:
        b = ctx.batch
        pred = b.pred[rows]
        matrix = self.pair.matrix
        if self.other == "target":
            target = b.target[rows]
            mask = matrix[pred, target]
            witness = np.where(mask, target, -1).astype(np.int32)
        else:
            pos, values = ctx.label_entries(rows)
            hit = matrix[pred[pos], values]
            mask = np.zeros(rows.shape[0], bool)
            hit_pos = pos[hit]
            mask[hit_pos] = True
            witness = np.full(rows.shape[0], -1, np.int32)
            witness[hit_pos[::-1]] = values[hit][::-1]  # the first matching label wins
        return Outcome(mask, ~mask, witness, np.full(mask.shape[0], self.slot, np.int16))

    def describe(self) -> str:
        return f"prediction vs {'target' if self.other == 'target' else 'some label'}: {self.text}"

    def witness_leaves(self) -> list[Node]:
        return [self]

    def pair_evidence(self, pred: int, other: int) -> dict[str, Any]:
        return self.pair.evidence(pred, other)

    def pair_evidence_bound(self) -> dict[str, Any]:
        return self.pair.evidence_bound()


def _compiler(key: str, other: str) -> Any:
    def compile_test(pred: BaseModel, ctx: Compiling, path: KeyPath) -> Node:
        inner: BaseModel = getattr(pred, key)
        text = json.dumps(inner.model_dump(mode="json", by_alias=True, exclude_defaults=True))
        return PairTest(ctx.pair(inner, (*path, key)), other, text)

    return compile_test


ENTRIES = [
    SampleEntry("pred_vs_target", PredVsTarget, _compiler("pred_vs_target", "target")),
    SampleEntry("pred_vs_label", PredVsLabel, _compiler("pred_vs_label", "label")),
]
