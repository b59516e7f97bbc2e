"""Errors of the OOV feature provider."""

from __future__ import annotations

from errortaxa.engine.providers.factory import ProviderConfigError


class OOVError(Exception):
    """Base class of the OOV provider's errors."""


class OOVConfigError(OOVError, ProviderConfigError):
    """The OOV configuration is invalid (unknown key, bad value)."""


class WeightsNotFoundError(OOVError, FileNotFoundError):
    """The configured CLIP weights are not on this machine (ErrorTaxa never downloads them)."""


class TrainIndexError(OOVError):
    """A training-set embedding index is missing, malformed or built with another model."""
