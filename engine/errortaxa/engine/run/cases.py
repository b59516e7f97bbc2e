"""Check the expected cases written beside a taxonomy's rules."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from errortaxa.engine.compile.compiler import CompiledTaxonomy
from errortaxa.engine.features import FeatureProvider
from errortaxa.engine.run.evaluate import evaluate
from errortaxa.engine.samples import SampleBatch


@dataclass
class CaseResult:
    """One expected case: did the taxonomy give what it expects?"""

    name: str
    file: str
    line: int | None
    passed: bool
    expected: dict[str, str]
    got: dict[str, str | None]
    # why the case could not be checked here: the outcome differs from the expected one, and a rule
    # it reached that was not evaluated (a missing optional sample list, no OOV provider) would
    # have given the expected value
    not_checked: str | None = None


def run_cases(taxonomy: CompiledTaxonomy, providers: Mapping[str, FeatureProvider] | None = None
              ) -> list[CaseResult]:
    """Evaluate the expected cases written beside the rules."""
    cases = taxonomy.document.cases
    if not cases:
        return []
    ref = taxonomy.class_ref
    batch = SampleBatch.from_lists(
        target=[ref(c.sample.target) for c in cases], pred=[ref(c.sample.pred) for c in cases],
        labels=[[ref(x) for x in c.sample.labels] for c in cases],
        problematic=[c.sample.problematic for c in cases],
        images=[c.sample.image or "" for c in cases],
    )
    decisions = evaluate(taxonomy, batch, providers)
    results = []
    for i, case in enumerate(cases):
        got: dict[str, str | None] = {}
        for name, ax in decisions.axes.items():
            got[name] = ax.values[ax.value[i]] if ax.value[i] >= 0 else None
            rule = ax.rules[ax.rule[i]] if ax.rule[i] >= 0 else None
            got[f"{name}_rule"] = rule
            if name == taxonomy.primary_axis:
                got["rule"] = rule
        wrong = {k: v for k, v in case.expect.items() if got.get(k) != v}
        file, line = taxonomy.loaded.locate(("cases", i))
        # a rule that was not evaluated and would have given an expected value leaves the case open
        skipped = [s for ax in decisions.axes.values() for s in decisions.evidence(ax, i).get("not_evaluated", [])]
        skipped_rules = {s["rule"] for s in skipped}
        could_give = skipped_rules | {axis.values[rule.value].id for axis in taxonomy.axes.values()
                                      for rule in axis.rules if rule.id in skipped_rules}
        open_case = bool(wrong) and all(v in could_give for v in wrong.values())
        not_checked = "; ".join(f"{s['rule']}: {s['reason']}" for s in skipped) if open_case else None
        results.append(CaseResult(case.name or f"case {i}", file, line, not wrong, case.expect, got, not_checked))
    return results
