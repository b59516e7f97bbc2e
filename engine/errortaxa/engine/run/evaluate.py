"""Evaluate a compiled taxonomy on a batch: per axis, the first rule that holds decides."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from errortaxa.engine.compile.compiler import CompiledTaxonomy
from errortaxa.engine.features import FeatureProvider
from errortaxa.engine.predicates.base import Context, Outcome
from errortaxa.engine.results.decisions import AxisDecisions, Decisions, bitset_width
from errortaxa.engine.samples import SampleBatch


def evaluate(taxonomy: CompiledTaxonomy, batch: SampleBatch,
             providers: Mapping[str, FeatureProvider] | None = None, *, validate: bool = True,
             trace: dict[int, Outcome] | None = None) -> Decisions:
    """Classify a whole batch: per axis, the first rule that holds gives each sample its value.
    ``trace``: record every node's outcome there by node id (see :mod:`errortaxa.engine.run.explain`)."""
    if validate:
        batch.validate(len(taxonomy.vocabulary))
    ctx = Context(batch, providers or {}, trace)
    result: dict[str, AxisDecisions] = {}
    n = len(batch)
    for axis in taxonomy.axes.values():
        value = np.full(n, -1, np.int16)
        rule_of = np.full(n, -1, np.int16)
        witness = np.full(n, -1, np.int32)
        source = np.full(n, -1, np.int16) if axis.tracks_sources else None
        skipped = np.zeros((n, bitset_width(len(axis.rules))), np.uint8)
        reason_codes: dict[int, np.ndarray] = {}
        evidence: dict[int, dict[str, Any]] = {}
        remaining = np.arange(n, dtype=np.int64)
        for r, rule in enumerate(axis.rules):
            if remaining.shape[0] == 0:
                break
            out = ctx.eval(rule.node, remaining)
            unknown = ~(out.true | out.false)
            if unknown.any():
                rows = remaining[unknown]
                skipped[rows, r >> 3] |= np.uint8(1 << (r & 7))
                if out.reason is not None:
                    codes = reason_codes.setdefault(r, np.full(n, -1, np.int16))
                    codes[rows] = out.reason[unknown]
            hit = remaining[out.true]
            value[hit] = rule.value
            rule_of[hit] = r
            witness[hit] = out.witness[out.true]
            if source is not None and out.source is not None:
                source[hit] = out.source[out.true]
            for pos, ev in out.evidence.items():
                evidence[int(remaining[pos])] = ev
            remaining = remaining[~out.true]
        result[axis.name] = AxisDecisions(
            axis=axis.name, values=axis.value_ids, rules=axis.rule_ids, value=value, rule=rule_of,
            witness=witness, source=source, not_evaluated=skipped, evidence=evidence, reason_codes=reason_codes,
        )
    return Decisions(taxonomy, batch, result, list(ctx.reasons))
