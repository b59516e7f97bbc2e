"""The factory of the ``oov`` provider (entry point ``oov`` of the group ``errortaxa.providers``):
``--oov-config FILE`` builds it, the request's embeddings, kNN classes and image bytes bind it, and
it adds the ``errortaxa oov`` subcommands. Importing this module is cheap (no torch)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Hashable
from pathlib import Path
from typing import Any

from errortaxa.engine.compile.compiler import CompiledTaxonomy
from errortaxa.engine.features import FeatureProvider
from errortaxa.engine.knowledge.wordnet import WordNet
from errortaxa.engine.providers.factory import ProviderFactory, ProviderUnavailable, RequestInputs
from errortaxa.providers.oov.config import OOVConfig, read_config_file
from errortaxa.providers.oov.declaration import INPUTS, TESTS
from errortaxa.providers.oov.errors import OOVConfigError, OOVError
from errortaxa.providers.oov.extra import missing


class OOVFactory(ProviderFactory):
    """Builds :class:`~errortaxa.providers.oov.provider.OOVProvider` from an OOV config file (docs/OOV.md)."""

    name = "oov"
    summary = "open-world (CLIP) out-of-vocabulary test fine_grained_oov (docs/OOV.md)"
    tests = TESTS
    inputs = INPUTS

    def unavailable(self) -> str | None:
        return missing()

    def build(self, config: str | Path, taxonomy: CompiledTaxonomy) -> FeatureProvider:
        """The provider over ``taxonomy``'s superclasses and vocabulary; the model and index are shared
        by every provider built from the same settings in this process (``shared_model``). Errors
        name the option and the file."""
        where = f"{self.config_option} {os.fspath(config)}"
        try:
            cfg = OOVConfig.from_mapping(read_config_file(config))
        except OOVConfigError as exc:
            raise OOVConfigError(f"{where}: {exc}") from None
        try:
            from errortaxa.providers.oov.provider import OOVProvider, shared_model

            encoder, index = shared_model(cfg)
            return OOVProvider(cfg, same_superclass=taxonomy.same_superclass, wordnet=WordNet.load(),
                               vocab=taxonomy.vocabulary, encoder=encoder, index=index)
        except OOVConfigError as exc:
            raise OOVConfigError(f"{where}: {exc}") from None
        except (OOVError, FileNotFoundError, ImportError) as exc:
            raise ProviderUnavailable(f"{where}: {exc}") from None

    def taxonomy_key(self, taxonomy: CompiledTaxonomy) -> Hashable:
        """The provider reads the vocabulary and the superclasses (gate and proposals)."""
        return tuple(taxonomy.vocabulary.wnids), taxonomy.same_superclass.tobytes()

    def bind(self, provider: FeatureProvider, inputs: RequestInputs) -> FeatureProvider:
        from errortaxa.providers.oov.request import BoundOOV, OovColumns

        dim = int(provider.encoder.embed_dim)  # type: ignore[attr-defined]
        return BoundOOV(provider, OovColumns.of(inputs, dim))

    def add_commands(self, subcommands: argparse._SubParsersAction[Any]) -> None:
        from errortaxa.providers.oov.cli import register

        register(subcommands)
