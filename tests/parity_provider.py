"""A third-party feature provider, ``parity``, as another distribution would ship it: a factory that
the registry finds (registered in-process, or through an ``errortaxa.providers`` entry point), built
from a config file, bound to a request's kNN classes, with a subcommand. Nothing above the
providers layer knows it."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from errortaxa.engine import CompiledTaxonomy, FeatureResult, SampleBatch
from errortaxa.engine.features import FeatureProvider, FeatureTestDecl, InputColumn
from errortaxa.engine.providers.factory import (
    ProviderConfigError,
    ProviderFactory,
    ProviderInputError,
    RequestInputs,
)
from pydantic import BaseModel, ConfigDict


class ParityProvider:
    """Test ``even``: the prediction (or, when the request sent them, the sample's first kNN class) is a
    multiple of ``modulus``; class 7 cannot be evaluated."""

    name = "parity"

    def __init__(self, modulus: int, knn: np.ndarray | None = None) -> None:
        self.modulus = modulus
        self.knn = knn

    def evaluate(self, test: str, params: Mapping[str, Any], batch: SampleBatch, rows: np.ndarray) -> FeatureResult:
        value = batch.pred[rows] if self.knn is None else self.knn[rows, 0]
        known = value != 7
        return FeatureResult(holds=value % self.modulus == 0, known=known,
                             reason=[None if k else "seven is unknowable" for k in known.tolist()],
                             evidence=[{"value": int(v), "from": "pred" if self.knn is None else "knn"}
                                       for v in value.tolist()])


class ParityParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ParityFactory(ProviderFactory):
    name = "parity"
    summary = "even predictions (a test provider)"
    tests = (FeatureTestDecl("even", "the prediction (or the first kNN class sent) is a multiple of the modulus",
                             ParityParams),)
    inputs = (InputColumn("knn_classes", "int32", "classes of the nearest training images", width=0,
                          class_ids=True),)

    def build(self, config: str | Path, taxonomy: CompiledTaxonomy) -> FeatureProvider:
        settings = yaml.safe_load(Path(config).read_text(encoding="utf-8")) or {}
        modulus = settings.get("modulus") if isinstance(settings, dict) else None
        if not isinstance(modulus, int) or modulus < 1:
            raise ProviderConfigError(f"{self.config_option} {config}: modulus must be a positive integer")
        return ParityProvider(modulus)

    def bind(self, provider: FeatureProvider, inputs: RequestInputs) -> FeatureProvider:
        knn = inputs.get("knn_classes")
        assert isinstance(provider, ParityProvider) and knn is not None
        if knn.shape[1] < 2:
            raise ProviderInputError("knn_classes", "has one column; parity wants two", code="NO_COLUMNS")
        return ParityProvider(provider.modulus, knn)

    def add_commands(self, subcommands: argparse._SubParsersAction[Any]) -> None:
        p = subcommands.add_parser("parity", help="is a class id even")
        p.add_argument("value", type=int)
        p.set_defaults(func=lambda args: print("even" if args.value % 2 == 0 else "odd") or 0)


class NeedsExtraFactory(ParityFactory):
    """A provider whose dependencies are not installed here."""

    name = "needs_extra"

    def unavailable(self) -> str | None:
        return "needs the needs_extra extra: pip install 'errortaxa[needs_extra]'"
