"""The factory interface of a feature provider: everything the applications (CLI, studies, Ray
tasks, the gRPC server) need to build, configure and transport one, without knowing which.

A factory is found by its provider name in the registry (:mod:`errortaxa.engine.providers.registry`).
It builds a provider from a config file for a compiled taxonomy, says whether it can run here,
binds a built provider to the per-sample inputs a gRPC request carries, and contributes its
command-line option (``--NAME-config FILE`` on classify, study and serve) and subcommands.
"""

from __future__ import annotations

import argparse
from abc import ABC, abstractmethod
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from errortaxa.engine.compile.compiler import CompiledTaxonomy
from errortaxa.engine.errors import ErrorTaxaError, FailedPrecondition, InvalidInput
from errortaxa.engine.providers.feature import FeatureProvider


class ProviderError(ErrorTaxaError):
    """The group of a feature provider's errors (no kind of its own): it cannot be built or used as
    asked; the message is one line."""


class ProviderConfigError(ProviderError, InvalidInput):
    """A provider's config file is malformed (the message names the file and the setting)."""


class ProviderUnavailable(ProviderError, FailedPrecondition):
    """A provider cannot run here (its extra is not installed, no weights, no GPU): the reason."""


class ProviderInputError(ProviderError, InvalidInput):
    """A per-request input of a provider is wrong: ``input`` names it (a :class:`RequestInputs`
    field), ``reason_code`` is a reason such as ``EMBEDDING_DIM``, ``index`` the first bad sample."""

    def __init__(self, input: str, message: str, *, code: str, index: int | None = None) -> None:
        super().__init__(f"{input} {message}")
        self.input = input
        self.reason_code = code
        self.index = index


@dataclass(frozen=True)
class RequestInputs:
    """Per-sample inputs sent with one request of ``samples`` samples for the providers (the wire's
    ``oov`` message), each None when not sent, else one entry per sample, checked for shape: ``embeddings``
    float32[N, D] (finite; a zero row: none for that sample), ``knn_classes`` int32[N, k] (class
    ids, negative: padding), ``image_bytes`` N encoded images (empty: none for that sample)."""

    samples: int
    embeddings: np.ndarray | None = None
    knn_classes: np.ndarray | None = None
    image_bytes: Sequence[bytes] | None = None

    @property
    def sent(self) -> frozenset[str]:
        """The names of the inputs the request carries."""
        return frozenset(k for k in ("embeddings", "knn_classes", "image_bytes") if getattr(self, k) is not None)


class ProviderFactory(ABC):
    """Builds, configures and transports the feature provider ``name``; subclass it and register
    it (see :mod:`errortaxa.engine.providers.registry`). Only :meth:`build` is required."""

    #: the provider name rules use: ``feature: {provider: NAME, test: ...}``
    name: str = ""
    #: one line for ``--help``
    summary: str = ""
    #: the :class:`RequestInputs` fields :meth:`bind` uses (empty: the provider takes none)
    request_inputs: frozenset[str] = frozenset()

    @property
    def config_option(self) -> str:
        """The command-line option naming the config file (classify, study, serve)."""
        return f"--{self.name}-config"

    @property
    def config_key(self) -> str:
        """The same as a setting: the server's config-file key, ``ERRORTAXA_<KEY>`` and the argparse dest."""
        return f"{self.name}_config"

    def unavailable(self) -> str | None:
        """Why the provider cannot run here (e.g. ``needs the oov extra: pip install 'errortaxa[oov]'``),
        or None when it can. Cheap: it imports nothing heavy."""
        return None

    @abstractmethod
    def build(self, config: str | Path, taxonomy: CompiledTaxonomy) -> FeatureProvider:
        """The provider for ``taxonomy`` from its config file. Raises ProviderConfigError for a malformed
        config, ProviderUnavailable where it cannot run here, FileNotFoundError for a missing file."""

    def taxonomy_key(self, taxonomy: CompiledTaxonomy) -> Hashable:
        """What of ``taxonomy`` a built provider depends on: two taxonomies with equal keys may share
        one provider (default: the content hash, so none share)."""
        return taxonomy.content_hash

    def bind(self, provider: FeatureProvider, inputs: RequestInputs) -> FeatureProvider:
        """``provider`` (from :meth:`build`) answering from one request's per-sample ``inputs``;
        ProviderInputError for an input it cannot use. Default: the inputs are not used."""
        return provider

    def add_commands(self, subcommands: argparse._SubParsersAction[Any]) -> None:
        """Add this provider's subcommands to the ``errortaxa`` command (default: none). A command's
        ``func(args) -> int`` runs it; ProviderError and FileNotFoundError end in one line, status 2."""
        return None
