"""Where two classes stand in WordNet: ancestor, descendant, sibling, same_class, lca_depth, distance."""

from __future__ import annotations

import numpy as np
from errortaxa.engine.language.fields import Strict
from errortaxa.engine.language.problems import KeyPath
from errortaxa.engine.predicates.base import Compiling, PairEntry, PairNode
from pydantic import Field


class Range(Strict):
    min: int | None = None
    max: int | None = None


class AncestorPair(Strict):
    ancestor: bool = Field(description="the prediction is a WordNet ancestor of the other class")


class DescendantPair(Strict):
    descendant: bool = Field(description="the prediction is a WordNet descendant of the other class")


class SiblingPair(Strict):
    sibling: bool = Field(description="the two classes share a direct hypernym")


class SameClassPair(Strict):
    same_class: bool


class LcaDepthPair(Strict):
    lca_depth: Range = Field(description="depth of the deepest common WordNet ancestor")


class DistancePair(Strict):
    distance: Range = Field(description="hypernym-graph path length through the nearest common ancestor")


def _either(matrix: np.ndarray, holds: bool) -> PairNode:
    return PairNode(matrix if holds else ~matrix)


def _within(values: np.ndarray, rng: Range) -> PairNode:
    m = np.ones(values.shape, bool)
    if rng.min is not None:
        m &= values >= rng.min
    if rng.max is not None:
        m &= values <= rng.max
    return PairNode(m)


def _ancestor(pred: AncestorPair, ctx: Compiling, path: KeyPath) -> PairNode:
    return _either(ctx.relations().ancestor, pred.ancestor)


def _descendant(pred: DescendantPair, ctx: Compiling, path: KeyPath) -> PairNode:
    return _either(ctx.relations().ancestor.T, pred.descendant)


def _sibling(pred: SiblingPair, ctx: Compiling, path: KeyPath) -> PairNode:
    return _either(ctx.relations().sibling, pred.sibling)


def _same_class(pred: SameClassPair, ctx: Compiling, path: KeyPath) -> PairNode:
    return _either(np.eye(ctx.num_classes, dtype=bool), pred.same_class)


def _lca_depth(pred: LcaDepthPair, ctx: Compiling, path: KeyPath) -> PairNode:
    return _within(ctx.relations().lca_depth, pred.lca_depth)


def _distance(pred: DistancePair, ctx: Compiling, path: KeyPath) -> PairNode:
    return _within(ctx.relations().distance, pred.distance)


ENTRIES = [
    PairEntry("ancestor", AncestorPair, _ancestor),
    PairEntry("descendant", DescendantPair, _descendant),
    PairEntry("sibling", SiblingPair, _sibling),
    PairEntry("same_class", SameClassPair, _same_class),
    PairEntry("lca_depth", LcaDepthPair, _lca_depth),
    PairEntry("distance", DistancePair, _distance),
]
