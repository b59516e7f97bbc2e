"""The engine's FeatureResult, or a local stand-in of the same shape until the engine has it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

try:  # the engine's contract (docs/ARCHITECTURE.md, "Feature providers")
    from errortaxa.engine.providers import FeatureResult
except ImportError:  # pragma: no cover - until errortaxa.engine.providers lands

    @dataclass
    class FeatureResult:  # type: ignore[no-redef]
        """Per-row result of a feature test: holds, known, reason (if not known), evidence."""

        holds: np.ndarray
        known: np.ndarray
        reason: list[str | None]
        evidence: list[Any]


__all__ = ["FeatureResult"]
