"""Flags of the sample itself: pred_is_target, pred_in_labels, target_in_labels, labels_empty,
problematic, always."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from errortaxa.engine.language.fields import Strict
from errortaxa.engine.language.problems import KeyPath
from errortaxa.engine.predicates.base import Compiling, Context, Node, Outcome, SampleEntry
from pydantic import BaseModel


class PredIsTarget(Strict):
    pred_is_target: bool


class PredInLabels(Strict):
    pred_in_labels: bool


class TargetInLabels(Strict):
    target_in_labels: bool


class LabelsEmpty(Strict):
    labels_empty: bool


class Problematic(Strict):
    problematic: bool


class Always(Strict):
    always: Literal[True]


def _in_labels(column: str) -> Callable[[Context, np.ndarray], np.ndarray]:
    def mask(ctx: Context, rows: np.ndarray) -> np.ndarray:
        pos, values = ctx.label_entries(rows)
        out = np.zeros(rows.shape[0], bool)
        out[pos[values == getattr(ctx.batch, column)[rows][pos]]] = True
        return out

    return mask


MASKS: dict[str, Callable[[Context, np.ndarray], np.ndarray]] = {
    "pred_is_target": lambda ctx, rows: ctx.batch.pred[rows] == ctx.batch.target[rows],
    "pred_in_labels": _in_labels("pred"),
    "target_in_labels": _in_labels("target"),
    "labels_empty": lambda ctx, rows: ctx.sizes[rows] == 0,
    "problematic": lambda ctx, rows: ctx.batch.problematic[rows],
    "always": lambda ctx, rows: np.ones(rows.shape[0], bool),
}


@dataclass
class Flag(Node):
    name: str
    expected: bool = True

    def eval(self, ctx: Context, rows: np.ndarray) -> Outcome:
        mask = MASKS[self.name](ctx, rows)
        return Outcome.of(mask if self.expected else ~mask)

    def describe(self) -> str:
        return self.name + ("" if self.expected else " is false")


def _compile(pred: BaseModel, ctx: Compiling, path: KeyPath) -> Node:
    [(name, expected)] = pred.model_dump().items()
    return Flag(name, bool(expected))


ENTRIES = [
    SampleEntry("pred_is_target", PredIsTarget, _compile),
    SampleEntry("pred_in_labels", PredInLabels, _compile),
    SampleEntry("target_in_labels", TargetInLabels, _compile),
    SampleEntry("labels_empty", LabelsEmpty, _compile),
    SampleEntry("problematic", Problematic, _compile),
    SampleEntry("always", Always, _compile, conjuncts=lambda value, of: []),  # holds always: requires nothing
]
