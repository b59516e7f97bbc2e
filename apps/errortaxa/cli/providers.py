"""The feature providers of ``classify`` and ``study``: each registered factory contributes its
config option (``--oov-config FILE``, ...); the providers whose option is given are built, strictly
(a bad config or a provider that cannot run here ends in one line, exit status 2)."""

from __future__ import annotations

import argparse

from errortaxa.engine import CompiledTaxonomy, FeatureProvider
from errortaxa.engine.providers import registry


def add_provider_options(parser: argparse.ArgumentParser, what: str = "") -> None:
    """One ``--NAME-config FILE`` option per registered provider."""
    for factory in registry.factories():
        parser.add_argument(factory.config_option, dest=factory.config_key, metavar="FILE",
                            help=f"config file of the '{factory.name}' feature provider: {factory.summary}{what}")


def provider_configs(args: argparse.Namespace) -> dict[str, str]:
    """``{provider name: config file}`` of the provider options given."""
    return {f.name: path for f in registry.factories() if (path := getattr(args, f.config_key, None)) is not None}


def providers_from(args: argparse.Namespace, taxonomy: CompiledTaxonomy) -> dict[str, FeatureProvider]:
    """The providers of the options given, built for ``taxonomy``."""
    return registry.build_all(provider_configs(args), taxonomy)
