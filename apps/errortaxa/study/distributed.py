"""Scale-out of studies on Ray (an optional extra: ``pip install 'errortaxa[ray]'``).

Models are split into contiguous chunks; each Ray task builds its own ImageSetClassifier for the
shared image set (put once in the object store), reads and tabulates its chunk, and returns the
per-model counts. The driver concatenates the chunks in order, so the table equals the
single-process one.

With an OOV config (``oov_config``, a path readable on every node), each task builds its own ``oov``
provider from it (``errortaxa.providers.oov.config.provider_from_config``); the tasks share the image and
prompt embeddings through the config's on-disk cache (appends are locked), so an image is embedded
once for the whole study wherever its first (image, class) pair is decided.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

from errortaxa.engine import CompiledTaxonomy
from errortaxa.engine.errors import FailedPrecondition
from errortaxa.study.study import (
    ImageSet,
    ModelFile,
    OOVUnavailable,
    _Accumulator,
    _Tabulator,
    load_oov_providers,
    read_model,
)


def _chunk(taxonomy: CompiledTaxonomy, images: ImageSet, models: Sequence[ModelFile],
           image_list: Sequence[str] | None, pairs: bool = False, oov_config: str | None = None) -> _Accumulator:
    """One task: tabulate ``models`` (with the ``oov`` provider built here from ``oov_config``)."""
    providers = None
    if oov_config is not None:
        try:
            providers = load_oov_providers(oov_config, taxonomy)
        except OOVUnavailable as error:
            import socket

            raise OOVUnavailable(f"on Ray worker {socket.gethostname()}: {error}") from None
    tab = _Tabulator(taxonomy, images, image_list, pairs=pairs, providers=providers)
    acc = _Accumulator()
    for model in models:
        tab.add(acc, model.name, read_model(model.path, images, len(taxonomy.vocabulary)))
    if pairs:
        acc.pair_counts()  # sparse before it travels
    return acc


class RayNotInstalled(FailedPrecondition):
    """The optional ``ray`` extra is not installed."""


def import_ray(data: bool = False) -> Any:
    """The ``ray`` module (and ``ray.data`` with ``data``), or :class:`RayNotInstalled` with the fix."""
    try:
        import ray

        if data:
            import ray.data
    except ImportError as exc:
        raise RayNotInstalled(f"Ray is not installed ({exc}); pip install 'errortaxa[ray]'") from None
    return ray


def init_ray(address: str) -> bool:
    """Connect to ``address`` (``"local"``: start a local instance without dashboard or usage
    statistics). Returns whether this call started Ray (the caller then shuts it down)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray = import_ray()
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if address == "local":
        ray.init(**kwargs)
    else:
        ray.init(address=address, **kwargs)
    return True


def run_on_ray(taxonomy: CompiledTaxonomy, images: ImageSet, models: Sequence[ModelFile],
               image_list: Sequence[str] | None, address: str, *, chunks: int | None = None,
               progress: bool | None = None, pairs: bool = False, oov_config: str | None = None) -> _Accumulator:
    """The accumulated per-model counts of ``models``, computed as Ray tasks (each building its
    ``oov`` provider from ``oov_config`` when given)."""
    from tqdm import tqdm

    started = init_ray(address)
    ray = import_ray()
    try:
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        n = max(1, min(len(models), chunks or 2 * cpus))
        bounds = [round(k * len(models) / n) for k in range(n + 1)]
        task = ray.remote(num_cpus=1)(_chunk)
        tax_ref, img_ref = ray.put(taxonomy), ray.put(images)
        refs = [task.remote(tax_ref, img_ref, list(models[a:b]), image_list, pairs, oov_config)
                for a, b in pairwise(bounds) if b > a]
        order = {ref: k for k, ref in enumerate(refs)}
        results: dict[int, _Accumulator] = {}
        pending = list(refs)
        with tqdm(total=len(models), desc="models (ray)", unit="model",
                  disable=None if progress is None else not progress) as bar:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    try:
                        acc = ray.get(ref)
                    except OOVUnavailable as error:  # Ray's task error is also an instance of the cause
                        cause = getattr(error, "cause", error)
                        raise OOVUnavailable(str(cause)) from None
                    results[order[ref]] = acc
                    bar.update(len(acc.models))
        out = _Accumulator()
        for k in range(len(refs)):
            out.extend(results[k])
        return out
    finally:
        if started:
            ray.shutdown()
