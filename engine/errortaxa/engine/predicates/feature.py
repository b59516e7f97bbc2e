"""feature: a test answered by a feature provider (e.g. OOV); not evaluated where the provider
gives no answer or none is configured. Where it holds, the provider's evidence is the record's
``feature``. Compiled against the installed providers' declarations: an unknown test or parameter
is an error, a provider that is not installed a warning (an error where the compiler is told so)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from errortaxa.engine.features import check_feature
from errortaxa.engine.language.fields import Identifier, Strict
from errortaxa.engine.language.problems import KeyPath
from errortaxa.engine.predicates.base import Compiling, Context, Node, Outcome, SampleEntry
from pydantic import Field


class FeatureArgs(Strict):
    provider: Identifier
    test: Identifier
    params: dict[str, int | float | str | bool] = Field(default_factory=dict)


class FeatureTest(Strict):
    feature: FeatureArgs


@dataclass
class FeatureNode(Node):
    provider: str
    test: str
    params: dict[str, Any]

    def eval(self, ctx: Context, rows: np.ndarray) -> Outcome:
        n = rows.shape[0]
        provider = ctx.providers.get(self.provider)
        if provider is None:
            return Outcome.unknown(n, ctx.reason_code(f"no '{self.provider}' feature provider is configured"))
        result = provider.evaluate(self.test, self.params, ctx.batch, rows)
        true = result.holds & result.known
        reason = np.full(n, -1, np.int16)
        for i in np.flatnonzero(~result.known).tolist():
            reason[i] = ctx.reason_code(result.reason[i] or f"{self.provider} gave no result")
        evidence = {i: {"feature": result.evidence[i]} for i in np.flatnonzero(true).tolist()}
        return Outcome(true, ~result.holds & result.known, np.full(n, -1, np.int32), None, reason, evidence)

    def describe(self) -> str:
        return f"feature {self.provider}.{self.test}"

    def can_be_unknown(self) -> bool:
        return True


def _compile(pred: FeatureTest, ctx: Compiling, path: KeyPath) -> Node:
    ctx.providers_needed.add(pred.feature.provider)
    if ctx.declarations is not None:
        args = pred.feature
        for problem in check_feature(args.provider, args.test, args.params, ctx.declarations):
            where: KeyPath = (*path, "feature", *problem.key)
            if problem.provider_missing and ctx.missing_provider == "warning":
                ctx.warn(where, problem.message)
            else:
                ctx.error(where, problem.message)
    return FeatureNode(pred.feature.provider, pred.feature.test, dict(pred.feature.params))


ENTRIES = [SampleEntry("feature", FeatureTest, _compile)]
