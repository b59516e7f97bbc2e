"""The one small interface behind which sample-level features live (OOV, ...); what a provider
accepts is declared in :mod:`errortaxa.engine.features.declarations`.

Class-pair features (WordNet relations, co-occurrence, class mappings) are resolved when a
taxonomy is compiled; features that depend on the image itself come from a FeatureProvider,
which the engine asks only for the rows that reach a rule using it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
from errortaxa.engine.samples import SampleBatch


@dataclass
class FeatureResult:
    """A provider's answer for ``rows``: where the test holds, where it could be evaluated at all,
    why not where it could not, and JSON-able evidence where it holds."""

    holds: np.ndarray  # bool[len(rows)]
    known: np.ndarray  # bool[len(rows)]
    reason: list[str | None]
    evidence: list[Any]

    @classmethod
    def unknown(cls, n: int, reason: str) -> FeatureResult:
        return cls(np.zeros(n, bool), np.zeros(n, bool), [reason] * n, [None] * n)


@runtime_checkable
class FeatureProvider(Protocol):
    """A source of sample-level features, named in rules as ``feature: {provider: NAME, test: ...}``."""

    name: str

    def evaluate(
        self, test: str, params: Mapping[str, Any], batch: SampleBatch, rows: np.ndarray
    ) -> FeatureResult: ...


class UnavailableProvider:
    """Stands in for a provider that cannot run (no extra, no weights, not configured): every row
    is "not evaluated" with ``reason``, and the rest of the taxonomy still classifies."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason

    def evaluate(self, test: str, params: Mapping[str, Any], batch: SampleBatch, rows: np.ndarray) -> FeatureResult:
        return FeatureResult.unknown(int(np.asarray(rows).shape[0]), self.reason)
