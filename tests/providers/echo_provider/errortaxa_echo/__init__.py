"""The ``echo`` feature provider: test ``votes_at_least`` holds where the request's per-sample
``votes`` (an input column it declares) reach the rule's ``threshold``; the sample's ``note`` is
the evidence. Without votes sent, its rules are "not evaluated". Its subcommand ``errortaxa echo``
prints its declaration."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from errortaxa.engine import CompiledTaxonomy, FeatureResult, SampleBatch
from errortaxa.engine.features import FeatureProvider, FeatureTestDecl, InputColumn
from errortaxa.engine.providers.factory import ProviderConfigError, ProviderFactory, RequestInputs
from pydantic import BaseModel, ConfigDict, Field


class VotesParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    threshold: int = Field(1, ge=0, description="the fewest votes for the test to hold")


class EchoProvider:
    """Answers ``votes_at_least`` from the votes bound to it (none: every row not evaluated)."""

    name = "echo"

    def __init__(self, votes: np.ndarray | None = None, notes: Any = None) -> None:
        self.votes = votes
        self.notes = notes

    def evaluate(self, test: str, params: Mapping[str, Any], batch: SampleBatch, rows: np.ndarray) -> FeatureResult:
        if self.votes is None:
            return FeatureResult.unknown(int(rows.shape[0]), "no echo votes sent with the request")
        threshold = VotesParams.model_validate(dict(params)).threshold
        votes = self.votes[rows]
        evidence = [{"votes": int(v), "note": None if self.notes is None else self.notes[int(r)]}
                    for v, r in zip(votes.tolist(), rows.tolist(), strict=True)]
        known = np.ones(rows.shape[0], bool)
        return FeatureResult(votes >= threshold, known, [None] * int(rows.shape[0]), evidence)


class EchoFactory(ProviderFactory):
    name = "echo"
    summary = "decides by the votes a request sends (a test provider)"
    tests = (FeatureTestDecl("votes_at_least", "the sample's votes reach the threshold", VotesParams),)
    inputs = (
        InputColumn("votes", "int32", "votes per sample"),
        InputColumn("note", "string", "a note per sample, echoed as evidence"),
    )

    def build(self, config: str | Path, taxonomy: CompiledTaxonomy) -> FeatureProvider:
        text = Path(config).read_text(encoding="utf-8").strip()
        if text and text != "{}":
            raise ProviderConfigError(f"{self.config_option} {config}: the echo provider takes no settings ({{}})")
        return EchoProvider()

    def bind(self, provider: FeatureProvider, inputs: RequestInputs) -> FeatureProvider:
        return EchoProvider(inputs.get("votes"), inputs.get("note"))

    def add_commands(self, subcommands: argparse._SubParsersAction[Any]) -> None:
        p = subcommands.add_parser("echo", help="print the echo provider's declaration (JSON Schema)")
        p.set_defaults(func=lambda args: print(json.dumps(self.declaration.json_schema(), sort_keys=True)) or 0)
