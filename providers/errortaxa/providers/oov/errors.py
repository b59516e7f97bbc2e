"""Errors of the OOV feature provider."""

from __future__ import annotations


class OOVError(Exception):
    """Base class of the OOV provider's errors."""


class OOVConfigError(OOVError, ValueError):
    """The OOV configuration is invalid (unknown key, bad value)."""


class WeightsNotFoundError(OOVError, FileNotFoundError):
    """The configured CLIP weights are not on this machine (ErrorTaxa never downloads them)."""


class IndexError_(OOVError):
    """A training-set embedding index is missing, malformed or built with another model."""
