"""errortaxa.providers.oov: the ``oov`` feature provider (fine-grained out-of-vocabulary errors, REFERENCE.md step 6).

Importing this package is cheap: the proposal generator and the configuration need neither torch nor
open_clip; the model, caches, index and provider are imported on first use (``errortaxa.providers.oov.OOVProvider``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from errortaxa.providers.oov.config import OOVConfig, default_cache_dir, provider_from_config
from errortaxa.providers.oov.errors import OOVConfigError, OOVError, WeightsNotFoundError
from errortaxa.providers.oov.proposals import (
    META_LABELS,
    Proposal,
    ProposalGenerator,
    generate,
    generate_many,
    proposals_json,
)

if TYPE_CHECKING:
    from errortaxa.engine.providers import FeatureResult
    from errortaxa.providers.oov._unavailable import UnavailableProvider
    from errortaxa.providers.oov.cache import EmbeddingCache
    from errortaxa.providers.oov.embed import ImageEmbedder
    from errortaxa.providers.oov.knn import TrainIndex, build_index
    from errortaxa.providers.oov.model import ClipEncoder
    from errortaxa.providers.oov.provider import OOVProvider, load_provider, same_superclass_matrix

_LAZY = {
    "FeatureResult": "errortaxa.engine.providers",
    "EmbeddingCache": ".cache",
    "ImageEmbedder": ".embed",
    "TrainIndex": ".knn",
    "build_index": ".knn",
    "ClipEncoder": ".model",
    "OOVProvider": ".provider",
    "UnavailableProvider": "._unavailable",
    "load_provider": ".provider",
    "same_superclass_matrix": ".provider",
}


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'errortaxa.providers.oov' has no attribute {name!r}")
    return getattr(importlib.import_module(mod, __name__), name)


__all__ = [
    "META_LABELS",
    "ClipEncoder",
    "EmbeddingCache",
    "FeatureResult",
    "ImageEmbedder",
    "OOVConfig",
    "OOVConfigError",
    "OOVError",
    "OOVProvider",
    "Proposal",
    "ProposalGenerator",
    "TrainIndex",
    "UnavailableProvider",
    "WeightsNotFoundError",
    "build_index",
    "default_cache_dir",
    "generate",
    "generate_many",
    "load_provider",
    "proposals_json",
    "provider_from_config",
    "same_superclass_matrix",
]
