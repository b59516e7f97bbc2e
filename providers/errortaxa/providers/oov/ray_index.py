"""Embedding a large image set as a Ray Data job across a cluster's GPUs (``--ray ADDRESS``).

``errortaxa oov index TRAIN_DIR --out INDEX --ray ADDRESS`` lists the training set in the driver
(the same ordered (path, class) listing as the single-process :func:`~errortaxa.providers.oov.knn.build_index`),
makes a ``ray.data`` dataset of (row, path) blocks and maps it with an actor pool: each actor builds
the encoder once from the same OOV config (one GPU per actor when the cluster has GPUs, CPUs
otherwise) and reads, preprocesses (DataLoader workers inside the actor) and embeds its batches. The
driver streams the results into the memory-mapped ``embeddings.npy`` at their rows, so it never holds
the embeddings, and writes the same index directory as the single-process path.

``errortaxa oov embed IMAGES --ray ADDRESS`` fills the image-embedding cache the same way (the cache
directory must then be on a file system every node sees; appends are locked, see docs/OOV.md).

Ray is an optional extra (``pip install 'errortaxa[ray]'``) and imported only here, when a job runs.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from errortaxa.engine.cluster import import_ray, init_ray
from errortaxa.providers.oov.config import OOVConfig
from errortaxa.providers.oov.errors import OOVConfigError
from errortaxa.providers.oov.images import ImageInput
from errortaxa.providers.oov.knn import IndexWriter, TrainIndex, check_index_dtype, encoder_meta, training_set


@dataclass(frozen=True)
class RayPlan:
    """How the job uses the cluster: actors, resources per actor, images per call."""

    actors: int
    gpus_per_actor: float
    cpus_per_actor: float
    batch_size: int
    config: OOVConfig  # the config each actor builds its encoder from (device resolved for the actor)

    def as_dict(self) -> dict[str, Any]:
        return {"actors": self.actors, "gpus_per_actor": self.gpus_per_actor,
                "cpus_per_actor": self.cpus_per_actor, "batch_size": self.batch_size}


def plan(config: OOVConfig, resources: Mapping[str, float], *, actors: int | None = None,
         batch_size: int | None = None, cpus_per_actor: float | None = None) -> RayPlan:
    """Defaults from the cluster's resources: with GPUs (and ``device`` not ``cpu``) one actor per GPU,
    each with ``num_gpus=1`` and a share of the CPUs (at most 8) for decoding; without GPUs actors of
    up to 4 CPUs each. ``batch_size`` (images per call) defaults to 8 model batches."""
    gpus = float(resources.get("GPU", 0.0))
    cpus = max(1.0, float(resources.get("CPU", 1.0)))
    use_gpu = gpus >= 1 and config.device != "cpu"
    if not use_gpu and config.device.startswith("cuda"):
        raise OOVConfigError(f"oov.device is {config.device!r} but the Ray cluster has no GPU")
    if use_gpu:
        n = actors or max(1, int(gpus))
        per_cpu = cpus_per_actor or float(max(1, min(8, int(cpus // n))))
    else:
        per_cpu = cpus_per_actor or float(min(4, int(cpus)))
        n = actors or max(1, int(cpus // per_cpu))
    if n < 1 or per_cpu <= 0:
        raise OOVConfigError("a Ray job needs at least one actor and a positive number of CPUs per actor")
    workers = config.num_workers if config.num_workers is not None else max(0, math.ceil(per_cpu) - 1)
    device = "cuda" if use_gpu else "cpu"
    precision = config.precision if config.precision != "auto" else "bf16" if use_gpu else "fp32"
    actor_config = config.replace(device=device, precision=precision, num_workers=workers, require_gpu=False)
    return RayPlan(n, 1.0 if use_gpu else 0.0, per_cpu, batch_size or 8 * config.batch_size, actor_config)


class _EmbedActor:
    """One encoder per actor. Index mode: the embedding of each row (float32, or the index dtype) and
    its error. Cache mode: embeds through the on-disk cache and reports what it did."""

    def __init__(self, config: OOVConfig, fill_cache: bool = False, dtype: str = "float32") -> None:
        from errortaxa.providers.oov.embed import ImageEmbedder, set_deterministic
        from errortaxa.providers.oov.model import ClipEncoder

        set_deterministic()
        encoder = ClipEncoder(config)
        self.embedder = (ImageEmbedder.from_encoder(encoder) if fill_cache
                         else ImageEmbedder(encoder, cache=None, memo=None))
        self.fill_cache = fill_cache
        self.dtype = dtype

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        items = [str(p) for p in batch["path"]]
        if not self.fill_cache:
            vecs, errs = self.embedder.encode_items(items)
            return {"row": batch["row"], "embedding": vecs.astype(self.dtype),
                    "error": np.array([e or "" for e in errs], dtype=object)}
        result = self.embedder.embed(items)
        # per-call counts ride on the batch's first row (zeros elsewhere), so summing the column adds up
        hits = np.zeros(len(items), np.int64)
        encoded = np.zeros(len(items), np.int64)
        if items:
            hits[0], encoded[0] = result.stats.cache_hits, result.stats.encoded
        return {"row": batch["row"], "error": np.array([e or "" for e in result.errors], dtype=object),
                "cache_hits": hits, "encoded": encoded}


def _describe(run_plan: RayPlan) -> dict[str, Any]:
    """The encoder's identity as the actors will have it, computed here without loading the model:
    the model id depends on the weights, preprocessing and precision, not on the device."""
    from errortaxa.providers.oov.model import ClipEncoder

    return {**encoder_meta(ClipEncoder(run_plan.config.replace(device="cpu"))), "device": run_plan.config.device}


def _run(ray: Any, items: Sequence[str], run_plan: RayPlan, *, fill_cache: bool, dtype: str,
         progress: bool) -> Any:
    """The mapped dataset (lazy): (row, path) blocks through the actor pool."""
    import pyarrow as pa

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = progress
    n = len(items)
    # blocks of a few calls each, and at least a few blocks per actor, so the pool stays busy
    rows_per_block = max(1, min(4 * run_plan.batch_size, math.ceil(n / (4 * run_plan.actors))))
    paths = pa.array([os.path.abspath(p) for p in items], pa.string())
    blocks = [pa.table({"row": pa.array(np.arange(s, min(s + rows_per_block, n), dtype=np.int64)),
                        "path": paths[s : s + rows_per_block]}) for s in range(0, n, rows_per_block)]
    return ray.data.from_arrow(blocks).map_batches(
        _EmbedActor,
        fn_constructor_kwargs={"config": run_plan.config, "fill_cache": fill_cache, "dtype": dtype},
        batch_size=run_plan.batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=run_plan.actors),
        num_gpus=run_plan.gpus_per_actor or None,
        num_cpus=run_plan.cpus_per_actor,
    )


def _ray() -> Any:
    return import_ray(data=True)


def _start(address: str, config: OOVConfig | Mapping[str, Any] | None, **plan_args: Any
           ) -> tuple[Any, bool, RayPlan, dict[str, Any]]:
    ray = _ray()
    cfg = config if isinstance(config, OOVConfig) else OOVConfig.from_mapping(config)
    started = init_ray(address)
    try:
        run_plan = plan(cfg, ray.cluster_resources(), **plan_args)
        meta = _describe(run_plan)
    except BaseException:
        if started:
            ray.shutdown()
        raise
    return ray, started, run_plan, meta


def build_index_ray(
    images: str | os.PathLike[str] | Sequence[tuple[ImageInput, int]],
    out: str | os.PathLike[str],
    *,
    config: OOVConfig | Mapping[str, Any] | None = None,
    address: str = "local",
    labels: str | os.PathLike[str] | None = None,
    vocab: Any | None = None,
    class_names: str = "auto",
    limit_per_class: int | None = None,
    dtype: str = "float16",
    actors: int | None = None,
    batch_size: int | None = None,
    cpus_per_actor: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> TrainIndex:
    """:func:`~errortaxa.providers.oov.knn.build_index` as a Ray Data job on the cluster at ``address``
    (``"local"``: a local instance). Same listing, same order, same files and metadata; the metadata
    adds ``ray`` (the plan). ``actors``, ``batch_size`` (images per call) and ``cpus_per_actor``
    override the defaults of :func:`plan`. Image paths must be readable on every node."""
    _ray()  # a missing extra is reported before listing a million files
    check_index_dtype(dtype)
    train = training_set(images, labels=labels, vocab=vocab, class_names=class_names,
                         limit_per_class=limit_per_class)
    paths = [os.fspath(p) for p in train.items if not isinstance(p, bytes)]
    if len(paths) != len(train.items):
        raise OOVConfigError("a Ray index job reads image files: give paths, not bytes")
    n = len(train.items)
    ray, started, run_plan, meta = _start(address, config, actors=actors, batch_size=batch_size,
                                          cpus_per_actor=cpus_per_actor)
    try:
        writer = IndexWriter(out, n, int(meta["dim"]), dtype)
        t0 = time.perf_counter()
        done = 0
        dataset = _run(ray, paths, run_plan, fill_cache=False, dtype=dtype,
                       progress=progress is not None)
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            rows = np.asarray(batch["row"], dtype=np.int64)
            writer.put(rows, np.asarray(batch["embedding"]), [str(e) or None for e in batch["error"]],
                       train.names)
            done += len(rows)
            if progress is not None:
                progress(done, n)
        seconds = time.perf_counter() - t0
    finally:
        if started:
            ray.shutdown()
    return writer.finish(train.classes, train.names, {**meta, "source": train.source, "seconds": round(seconds, 3),
                                                      "ray": run_plan.as_dict()})


def embed_cache_ray(
    items: Sequence[str | os.PathLike[str]],
    *,
    config: OOVConfig | Mapping[str, Any] | None = None,
    address: str = "local",
    actors: int | None = None,
    batch_size: int | None = None,
    cpus_per_actor: float | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Fill the image-embedding cache (``errortaxa oov embed --ray``) with an actor pool; the cache
    directory must be shared by the nodes. Returns the model id and counts (images, cache_hits,
    encoded, failed) and the first few failures."""
    _ray()
    cfg = config if isinstance(config, OOVConfig) else OOVConfig.from_mapping(config)
    if cfg.resolved_cache_dir() is None:
        raise OOVConfigError("filling the embedding cache needs a cache directory (cache_dir is 'none')")
    ray, started, run_plan, meta = _start(address, cfg, actors=actors, batch_size=batch_size,
                                          cpus_per_actor=cpus_per_actor)
    counts = {"images": len(items), "cache_hits": 0, "encoded": 0, "failed": 0}
    failures: list[str] = []
    try:
        if items:
            dataset = _run(ray, [os.fspath(p) for p in items], run_plan, fill_cache=True, dtype="float32",
                           progress=progress)
            for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                counts["cache_hits"] += int(np.sum(batch["cache_hits"]))
                counts["encoded"] += int(np.sum(batch["encoded"]))
                for row, error in zip(batch["row"].tolist(), batch["error"], strict=True):
                    if error:
                        counts["failed"] += 1
                        if len(failures) < 10:
                            failures.append(f"{os.fspath(items[int(row)])}: {error}")
    finally:
        if started:
            ray.shutdown()
    return {"model_id": meta["model_id"], **counts, "failures": failures, "ray": run_plan.as_dict()}


__all__ = ["RayPlan", "build_index_ray", "embed_cache_ray", "plan"]
