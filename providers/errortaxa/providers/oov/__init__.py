"""errortaxa.providers.oov: the ``oov`` feature provider (fine-grained out-of-vocabulary errors, REFERENCE.md step 6).

Importing this package is cheap: the proposal generator and the configuration need neither torch nor
open_clip; the factory, model, caches, index and provider are imported on first use
(``errortaxa.providers.oov.OOVProvider``). The applications reach the provider through its factory
(:class:`~errortaxa.providers.oov.factory.OOVFactory`, entry point ``oov``), never through this package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from errortaxa.providers.oov.config import OOVConfig, default_cache_dir
from errortaxa.providers.oov.errors import OOVConfigError, OOVError, TrainIndexError, WeightsNotFoundError
from errortaxa.providers.oov.proposals import (
    META_LABELS,
    Proposal,
    ProposalGenerator,
    generate,
    generate_many,
    proposals_json,
)

if TYPE_CHECKING:
    from errortaxa.providers.oov.cache import EmbeddingCache
    from errortaxa.providers.oov.embed import ImageEmbedder
    from errortaxa.providers.oov.factory import OOVFactory
    from errortaxa.providers.oov.knn import TrainIndex, build_index
    from errortaxa.providers.oov.model import ClipEncoder
    from errortaxa.providers.oov.provider import OOVProvider

_LAZY = {
    "EmbeddingCache": ".cache",
    "ImageEmbedder": ".embed",
    "OOVFactory": ".factory",
    "TrainIndex": ".knn",
    "build_index": ".knn",
    "ClipEncoder": ".model",
    "OOVProvider": ".provider",
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
    "ImageEmbedder",
    "OOVConfig",
    "OOVConfigError",
    "OOVError",
    "OOVFactory",
    "OOVProvider",
    "Proposal",
    "ProposalGenerator",
    "TrainIndex",
    "TrainIndexError",
    "WeightsNotFoundError",
    "build_index",
    "default_cache_dir",
    "generate",
    "generate_many",
    "proposals_json",
]
