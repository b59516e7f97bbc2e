"""The factory interface of a feature provider: everything the applications (CLI, studies, Ray
tasks, the gRPC server) need to build, configure and transport one, without knowing which.

A factory is found by its provider name in the registry (:mod:`errortaxa.engine.providers.registry`).
It declares what the provider accepts (its tests with their parameters, the per-request inputs it
reads: :attr:`ProviderFactory.declaration`), builds a provider from a config file for a compiled
taxonomy, says whether it can run here, binds a built provider to the per-sample inputs a gRPC
request carries (checked against the declaration first: :func:`check_inputs`), and contributes its
command-line option (``--NAME-config FILE`` on classify, study and serve) and subcommands.
"""

from __future__ import annotations

import argparse
from abc import ABC, abstractmethod
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from errortaxa.engine.compile.compiler import CompiledTaxonomy
from errortaxa.engine.errors import ErrorTaxaError, FailedPrecondition, InvalidInput
from errortaxa.engine.features import FeatureProvider, FeatureTestDecl, InputColumn, ProviderDeclaration


class ProviderError(ErrorTaxaError):
    """The group of a feature provider's errors (no kind of its own): it cannot be built or used as
    asked; the message is one line."""


class ProviderConfigError(ProviderError, InvalidInput):
    """A provider's config file is malformed (the message names the file and the setting)."""


class ProviderUnavailable(ProviderError, FailedPrecondition):
    """A provider cannot run here (its extra is not installed, no weights, no GPU): the reason."""


class ProviderInputError(ProviderError, InvalidInput):
    """A per-request input of a provider is wrong: ``input`` names it (a declared column),
    ``reason_code`` is a reason such as ``EMBEDDING_DIM``, ``index`` the first bad sample."""

    def __init__(self, input: str, message: str, *, code: str, index: int | None = None) -> None:
        super().__init__(f"{input} {message}")
        self.input = input
        self.reason_code = code
        self.index = index


#: one column of a request's provider inputs: float32 / int32 arrays ([N] or [N, W]), bytes or str lists
Column = np.ndarray | Sequence[bytes] | Sequence[str]


@dataclass(frozen=True)
class RequestInputs:
    """The per-sample inputs one request of ``samples`` samples sends for one provider: its declared
    columns by name (:class:`~errortaxa.engine.features.InputColumn`), each one entry (value or
    row) per sample, checked against the declaration by :func:`check_inputs`."""

    samples: int
    columns: Mapping[str, Column] = field(default_factory=dict)

    @property
    def sent(self) -> frozenset[str]:
        """The names of the columns the request carries."""
        return frozenset(self.columns)

    def get(self, name: str) -> Any:
        """Column ``name``, or None when it is not sent."""
        return self.columns.get(name)


def check_inputs(declaration: ProviderDeclaration, inputs: RequestInputs, *, num_classes: int) -> None:
    """ProviderInputError unless every column of ``inputs`` is declared by the provider and has its
    dtype, one entry per sample, its width, finite values (``finite``) and class ids inside the
    vocabulary (``class_ids``; negative: padding)."""
    n = inputs.samples
    for name, column in inputs.columns.items():
        spec = declaration.input(name)
        if spec is None:
            known = ", ".join(c.name for c in declaration.inputs) or "none"
            raise ProviderInputError(name, f"is not an input of provider '{declaration.name}' (inputs: {known})",
                                     code="UNKNOWN_INPUT")
        if spec.dtype in ("bytes", "string"):
            kind = bytes if spec.dtype == "bytes" else str
            if isinstance(column, np.ndarray) or not all(isinstance(v, kind) for v in column):
                raise ProviderInputError(name, f"must hold {spec.dtype} values", code="WRONG_DTYPE")
            got = len(column)
        else:
            if not isinstance(column, np.ndarray) or column.dtype != np.dtype(spec.dtype):
                raise ProviderInputError(name, f"must hold {spec.dtype} values", code="WRONG_DTYPE")
            if column.ndim != (1 if spec.width is None else 2) or (spec.width and column.shape[1] != spec.width):
                raise ProviderInputError(name, f"is shaped {list(column.shape)}; declared {spec.shape}",
                                         code="BAD_SHAPE")
            got = column.shape[0]
        if got != n:
            raise ProviderInputError(name, f"has {got} entries for {n} samples", code="LENGTH_MISMATCH",
                                     index=min(got, n))
        if n and spec.finite and isinstance(column, np.ndarray):
            bad = ~np.isfinite(column).reshape(n, -1).all(axis=1)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise ProviderInputError(name, f"row {i} holds NaN or infinity", code="NOT_FINITE", index=i)
        if n and spec.class_ids and isinstance(column, np.ndarray):
            bad = (column >= num_classes).reshape(n, -1).any(axis=1)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise ProviderInputError(name, f"row {i} holds a class id outside 0..{num_classes - 1}",
                                         code="CLASS_OUT_OF_RANGE", index=i)


class ProviderFactory(ABC):
    """Builds, configures and transports the feature provider ``name``; subclass it and register
    it (see :mod:`errortaxa.engine.providers.registry`). Only :meth:`build` is required."""

    #: the provider name rules use: ``feature: {provider: NAME, test: ...}``
    name: str = ""
    #: one line for ``--help``
    summary: str = ""
    #: the tests the provider answers, each with its parameters' model
    tests: tuple[FeatureTestDecl, ...] = ()
    #: the per-request input columns :meth:`bind` reads (empty: the provider takes none)
    inputs: tuple[InputColumn, ...] = ()

    @property
    def declaration(self) -> ProviderDeclaration:
        """What the provider accepts, as the compiler and the server check it."""
        return ProviderDeclaration(self.name, self.summary, tuple(self.tests), tuple(self.inputs))

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
        """``provider`` (from :meth:`build`) answering from one request's per-sample ``inputs``
        (declared columns only, already checked by :func:`check_inputs`); ProviderInputError for an
        input it cannot use (e.g. a width this provider's model does not have). Default: unused."""
        return provider

    def add_commands(self, subcommands: argparse._SubParsersAction[Any]) -> None:
        """Add this provider's subcommands to the ``errortaxa`` command (default: none). A command's
        ``func(args) -> int`` runs it; ProviderError and FileNotFoundError end in one line, status 2."""
        return None
