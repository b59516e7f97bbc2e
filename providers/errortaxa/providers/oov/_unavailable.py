"""The provider that stands in for ``oov`` where it cannot run (no torch, no weights, no GPU)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from errortaxa.engine.providers import FeatureResult


class UnavailableProvider:
    """Every row "not evaluated", with the reason; the rest of the taxonomy still classifies."""

    name = "oov"
    tests = ("fine_grained_oov",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def evaluate(self, test: str, params: Mapping[str, Any], batch: Any, rows: np.ndarray) -> FeatureResult:
        return FeatureResult.unknown(int(np.asarray(rows).shape[0]), f"OOV not evaluated: {self.reason}")
