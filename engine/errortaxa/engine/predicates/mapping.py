"""in_mapping (class pair): the (prediction, other) pair is accepted by a class_mapping resource."""

from __future__ import annotations

import numpy as np
from errortaxa.engine.language.fields import Identifier, Strict
from errortaxa.engine.language.problems import KeyPath
from errortaxa.engine.predicates.base import Compiling, PairEntry, PairNode


class InMappingPair(Strict):
    in_mapping: Identifier


def _compile(pred: InMappingPair, ctx: Compiling, path: KeyPath) -> PairNode:
    if pred.in_mapping not in ctx.mappings:
        ctx.error((*path, "in_mapping"), f"no class_mapping resource named '{pred.in_mapping}'")
        return PairNode(np.zeros((ctx.num_classes, ctx.num_classes), bool))
    return PairNode(ctx.mappings[pred.in_mapping])


ENTRIES = [PairEntry("in_mapping", InMappingPair, _compile)]
