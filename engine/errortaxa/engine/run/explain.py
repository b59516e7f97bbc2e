"""Explain one sample: every rule of every axis, how it fared and why, from one evaluation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from errortaxa.engine.compile.compiler import CompiledTaxonomy
from errortaxa.engine.features import FeatureProvider, FeatureResult
from errortaxa.engine.predicates.base import Node, Outcome
from errortaxa.engine.results.decisions import Decisions
from errortaxa.engine.run.evaluate import evaluate
from errortaxa.engine.samples import SampleBatch


@dataclass
class RuleTrace:
    """How one rule fared on one sample."""

    axis: str
    rule: str
    value: str
    result: str  # "holds" | "fails" | "not evaluated" | "not reached"
    detail: str
    evidence: Any = None


@dataclass
class Explanation:
    """The traces of every rule, and the decisions (of the one sample) they come from."""

    traces: list[RuleTrace]
    decisions: Decisions

    def __repr__(self) -> str:
        """The taxonomy (name, version, hash), the decision and the number of traces."""
        t = self.decisions.taxonomy
        decided = {name: axis.values[v] if (v := int(axis.value[0])) >= 0 else None
                   for name, axis in self.decisions.axes.items()}
        return (f"Explanation(taxonomy={t.name!r}, version={t.version!r}, content_hash={t.content_hash!r}, "
                f"decision={decided}, traces={len(self.traces)})")

    def record(self) -> dict[str, Any]:
        """The sample's output record."""
        return self.decisions.record(0)


class _Rows:
    """A provider asked about rows of a one-sample slice, answering for the row it came from."""

    def __init__(self, provider: FeatureProvider, batch: SampleBatch, index: int) -> None:
        self.name = provider.name
        self._provider = provider
        self._batch = batch
        self._index = index

    def evaluate(self, test: str, params: Mapping[str, Any], batch: SampleBatch, rows: np.ndarray) -> FeatureResult:
        return self._provider.evaluate(test, params, self._batch, np.full(rows.shape[0], self._index, np.int64))


def explain(taxonomy: CompiledTaxonomy, batch: SampleBatch, index: int,
            providers: Mapping[str, FeatureProvider] | None = None, *, validate: bool = True) -> Explanation:
    """Every rule of every axis tried on sample ``index`` of ``batch``, with why it held or failed.
    Only that sample is evaluated, once; providers are asked about its row of ``batch``."""
    if validate:
        batch.validate(len(taxonomy.vocabulary))
    if not 0 <= index < len(batch):
        raise IndexError(f"sample {index} is outside 0..{len(batch) - 1}")
    one = batch.take(np.array([index], dtype=np.int64))
    asked = {name: _Rows(p, batch, index) for name, p in (providers or {}).items()}
    trace: dict[int, Outcome] = {}
    decisions = evaluate(taxonomy, one, asked, validate=False, trace=trace)
    traces: list[RuleTrace] = []
    for axis in taxonomy.axes.values():
        decided = decisions.axes[axis.name]
        for rule in axis.rules:
            value = axis.values[rule.value].id
            out = trace.get(id(rule.node))
            if out is None:
                traces.append(RuleTrace(axis.name, rule.id, value, "not reached", "an earlier rule decided"))
            elif out.true[0]:
                traces.append(RuleTrace(axis.name, rule.id, value, "holds", _why(taxonomy, rule.node, trace),
                                        decisions.rule_evidence(decided, 0)))
            elif out.false[0]:
                traces.append(RuleTrace(axis.name, rule.id, value, "fails", _why(taxonomy, rule.node, trace)))
            else:
                reason = decisions.reasons[int(out.reason[0])] if out.reason is not None and out.reason[0] >= 0 \
                    else "not evaluated"
                traces.append(RuleTrace(axis.name, rule.id, value, "not evaluated", reason))
    return Explanation(traces, decisions)


def _why(taxonomy: CompiledTaxonomy, node: Node, trace: dict[int, Outcome]) -> str:
    """A one-line account of each part of a rule's predicate, as it was evaluated."""
    words = []
    for part in node.parts() if node.lists_parts else [node]:
        out = trace.get(id(part))
        if out is None or out.true.shape[0] == 0:
            words.append(f"{part.describe()}: not reached")
            continue
        state = "true" if out.true[0] else "false" if out.false[0] else "not evaluated"
        text = f"{part.describe()}: {state}"
        if out.witness[0] >= 0:
            text += f" (with {taxonomy.class_label(int(out.witness[0]))})"
        words.append(text)
    return "; ".join(words)
