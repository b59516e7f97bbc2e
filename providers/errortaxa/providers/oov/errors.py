"""Errors of the OOV feature provider."""

from __future__ import annotations

from errortaxa.engine.errors import ErrorTaxaError, FailedPrecondition, NotFound
from errortaxa.engine.providers.factory import ProviderConfigError


class OOVError(ErrorTaxaError):
    """The group of the OOV provider's errors (no kind of its own)."""


class OOVConfigError(OOVError, ProviderConfigError):
    """The OOV configuration is invalid (unknown key, bad value)."""


class WeightsNotFoundError(OOVError, NotFound, FileNotFoundError):
    """The configured CLIP weights are not on this machine (ErrorTaxa never downloads them); also a
    FileNotFoundError."""


class TrainIndexError(OOVError, FailedPrecondition):
    """A training-set embedding index is missing, malformed or built with another model."""
