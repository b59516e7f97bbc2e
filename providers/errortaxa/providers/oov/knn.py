"""Training-set embedding index for the kNN gate, and chunked top-k (GPU or CPU).

An index is a directory::

    meta.json        {"version", "model_id", "space_id", "model", "dim", "count", "dtype", "num_classes", ...}
    embeddings.npy   float16 (or float32) [N, D] unit vectors, memory-mapped when loaded
    classes.npy      int32 [N] class indices
    files.txt        one image path per line (relative to the source directory where possible)

:func:`build_index` writes one (``errortaxa oov index``); :meth:`TrainIndex.topk` answers queries.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from errortaxa.engine.knowledge.vocabulary import Vocabulary
from errortaxa.providers.oov.config import OOVConfig
from errortaxa.providers.oov.errors import OOVConfigError, TrainIndexError
from errortaxa.providers.oov.images import ImageInput, is_image_file, list_image_folder

log = logging.getLogger(__name__)

INDEX_VERSION = 1


@dataclass
class TrainIndex:
    """Unit-vector embeddings of training images with their classes."""

    embeddings: np.ndarray  # [N, D] float16/float32 (often a read-only memmap)
    classes: np.ndarray  # int32 [N]
    files: list[str]
    meta: dict[str, Any] = field(default_factory=dict)
    _device_cache: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return int(self.classes.shape[0])

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    @property
    def space_id(self) -> str | None:
        v = self.meta.get("space_id")
        return str(v) if v is not None else None

    # -- io -------------------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike[str], *, mmap: bool = True) -> TrainIndex:
        root = Path(path).expanduser()
        meta_file = root / "meta.json"
        if not meta_file.is_file():
            raise TrainIndexError(f"not a training-set index (no meta.json): {root}")
        meta = json.loads(meta_file.read_text())
        if meta.get("version") != INDEX_VERSION:
            raise TrainIndexError(
                f"{root}: index version {meta.get('version')} (expected {INDEX_VERSION}); rebuild it"
            )
        emb = np.load(root / "embeddings.npy", mmap_mode="r" if mmap else None)
        classes = np.load(root / "classes.npy").astype(np.int32, copy=False)
        files_path = root / "files.txt"
        files = files_path.read_text(encoding="utf-8").splitlines() if files_path.is_file() else []
        if emb.ndim != 2 or emb.shape[0] != classes.shape[0]:
            raise TrainIndexError(f"{root}: embeddings {emb.shape} and classes {classes.shape} disagree")
        return cls(emb, classes, files, meta)

    # -- queries --------------------------------------------------------------------------------------
    def _on_device(self, device: torch.device) -> torch.Tensor | None:
        """The whole index on a GPU (once), when it fits in a third of the free memory."""
        key = str(device)
        if key in self._device_cache:
            return self._device_cache[key]
        free, _ = torch.cuda.mem_get_info(device)
        need = len(self) * self.dim * 2
        if need > free // 3:
            return None
        t = torch.empty((len(self), self.dim), dtype=torch.float16, device=device)
        step = 1 << 17
        for s in range(0, len(self), step):
            t[s : s + step] = torch.from_numpy(
                np.asarray(self.embeddings[s : s + step], dtype=np.float16)
            ).to(device)
        self._device_cache[key] = t
        return t

    def topk(
        self,
        queries: np.ndarray,
        k: int,
        *,
        device: torch.device | str = "cpu",
        chunk: int = 32768,
        query_chunk: int = 2048,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Cosine top-k over the index: (similarities float32 [Q, k'], rows int64 [Q, k']), k' = min(k, N).

        The index is scanned in chunks of ``chunk`` rows and a running top-k merged per chunk, so memory
        stays bounded; on a GPU the index is held there in fp16 when it fits, and scores are fp32.
        """
        dev = torch.device(device)
        q_all = np.ascontiguousarray(queries, dtype=np.float32)
        nq = q_all.shape[0]
        kk = min(int(k), len(self))
        sims_out = np.zeros((nq, kk), dtype=np.float32)
        rows_out = np.zeros((nq, kk), dtype=np.int64)
        if nq == 0 or kk == 0:
            return sims_out, rows_out
        if q_all.shape[1] != self.dim:
            raise TrainIndexError(f"query dim {q_all.shape[1]} != index dim {self.dim}")
        resident = self._on_device(dev) if dev.type == "cuda" else None
        for qs in range(0, nq, query_chunk):
            q = torch.from_numpy(q_all[qs : qs + query_chunk]).to(dev)
            best_v = torch.full((q.shape[0], 0), float("-inf"), device=dev)
            best_i = torch.zeros((q.shape[0], 0), dtype=torch.int64, device=dev)
            for cs in range(0, len(self), chunk):
                if resident is not None:
                    block = resident[cs : cs + chunk]
                    sims = (q.to(torch.float16) @ block.T).float()
                else:
                    block_np = np.asarray(self.embeddings[cs : cs + chunk], dtype=np.float32)
                    sims = q @ torch.from_numpy(block_np).to(dev).T
                v, i = torch.topk(sims, min(kk, sims.shape[1]), dim=1)
                cand_v = torch.cat([best_v, v], dim=1)
                cand_i = torch.cat([best_i, i + cs], dim=1)
                # stable merge: sort by (-sim, row) so ties pick the lower row every time
                order = torch.argsort(cand_i, dim=1)
                cand_v, cand_i = torch.gather(cand_v, 1, order), torch.gather(cand_i, 1, order)
                order = torch.argsort(-cand_v, dim=1, stable=True)[:, :kk]
                best_v, best_i = torch.gather(cand_v, 1, order), torch.gather(cand_i, 1, order)
            sims_out[qs : qs + q.shape[0]] = best_v.cpu().numpy()
            rows_out[qs : qs + q.shape[0]] = best_i.cpu().numpy()
        return sims_out, rows_out

    def neighbour_classes(
        self, queries: np.ndarray, k: int, *, device: torch.device | str = "cpu"
    ) -> np.ndarray:
        """Classes of the k nearest training images, int32 [Q, min(k, N)], nearest first."""
        _, rows = self.topk(queries, k, device=device)
        return self.classes[rows]


# -- building -----------------------------------------------------------------------------------------


def _class_lookup(vocab: Any | None) -> dict[str, int] | None:
    if vocab is None:
        return None
    wnids = getattr(vocab, "wnids", vocab)
    return {str(w): i for i, w in enumerate(wnids)}


def collect_training_images(
    images: str | os.PathLike[str],
    *,
    labels: str | os.PathLike[str] | None = None,
    vocab: Any | None = None,
    class_names: str = "auto",
    limit_per_class: int | None = None,
) -> tuple[list[str], np.ndarray]:
    """(paths, int32 classes) of a training set.

    * ``labels`` given: a text file of ``relative/path CLASS_INDEX`` lines (caffe style), paths under
      ``images``;
    * otherwise ``images`` is ImageFolder-style, ``images/<class>/...``: class directories named by
      wnid map through the vocabulary (ImageNet-1k by default) with ``class_names="wnid"``; with
      ``"sorted"`` the classes are the directories' sorted positions; ``"auto"`` picks wnid when every
      directory is a wnid of the vocabulary, else sorted. ``"int"``: directories named by class index.
    """
    root = Path(images).expanduser()
    if labels is not None:
        paths: list[str] = []
        cls: list[int] = []
        for line in Path(labels).read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            rel, _, c = line.rpartition(" ")
            if not rel:
                rel, _, c = line.rpartition("\t")
            paths.append(str(root / rel))
            cls.append(int(c))
        return paths, np.asarray(cls, dtype=np.int32)
    pairs = list_image_folder(root)
    if not pairs:
        raise FileNotFoundError(f"no images in class directories under {root}")
    dirs = sorted({c for _, c in pairs})
    mode = class_names
    lookup: dict[str, int] | None = None
    if mode in ("auto", "wnid"):
        lookup = _class_lookup(vocab if vocab is not None else Vocabulary.imagenet())
        if lookup is None or not all(d in lookup for d in dirs):
            if mode == "wnid":
                bad = [d for d in dirs if lookup is None or d not in lookup][:5]
                raise OOVConfigError(f"class directories are not wnids of the vocabulary: {bad}")
            mode = "sorted"
        else:
            mode = "wnid"
    if mode == "wnid":
        assert lookup is not None
        mapping = {d: lookup[d] for d in dirs}
    elif mode == "sorted":
        mapping = {d: i for i, d in enumerate(dirs)}
    elif mode == "int":
        mapping = {d: int(d) for d in dirs}
    else:
        raise OOVConfigError(f"class_names must be auto, wnid, sorted or int, not {class_names!r}")
    if limit_per_class is not None:
        counts: dict[str, int] = {}
        kept = []
        for p, c in pairs:
            if counts.get(c, 0) < limit_per_class:
                counts[c] = counts.get(c, 0) + 1
                kept.append((p, c))
        pairs = kept
    return [p for p, _ in pairs], np.asarray([mapping[c] for _, c in pairs], dtype=np.int32)


@dataclass
class TrainingSet:
    """A training set to index, in index order: the images, their classes and the names written to
    ``files.txt`` (paths relative to the source directory where possible)."""

    items: list[ImageInput]
    classes: np.ndarray  # int32 [n]
    names: list[str]
    source: str


def training_set(
    images: str | os.PathLike[str] | Sequence[tuple[ImageInput, int]],
    *,
    labels: str | os.PathLike[str] | None = None,
    vocab: Any | None = None,
    class_names: str = "auto",
    limit_per_class: int | None = None,
) -> TrainingSet:
    """The ordered (image, class) listing that :func:`build_index` (and the Ray job) index."""
    if isinstance(images, str | os.PathLike):
        paths, classes = collect_training_images(
            images, labels=labels, vocab=vocab, class_names=class_names, limit_per_class=limit_per_class
        )
        root = str(Path(images).expanduser())
        return TrainingSet(list(paths), classes, [os.path.relpath(p, root) for p in paths], root)
    pairs = list(images)
    names = [os.fspath(p) if not isinstance(p, bytes) else f"<bytes {i}>" for i, (p, _) in enumerate(pairs)]
    classes = np.asarray([int(c) for _, c in pairs], dtype=np.int32)
    return TrainingSet([p for p, _ in pairs], classes, names, "<pairs>")


def encoder_meta(encoder: Any) -> dict[str, Any]:
    """The index metadata that describes the model (and where it ran)."""
    return {
        "model_id": encoder.model_id,
        "space_id": encoder.space_id,
        "model": encoder.name,
        "weights": encoder.weights.description,
        "dim": encoder.embed_dim,
        "precision": encoder.precision,
        "device": str(encoder.device),
    }


def check_index_dtype(dtype: str) -> None:
    if dtype not in ("float16", "float32"):
        raise OOVConfigError("index dtype must be float16 or float32")


class IndexWriter:
    """Writes an index directory: embeddings go, at their rows and in any order, into a memory-mapped
    temporary file; :meth:`finish` drops the rows that failed and writes the other files."""

    def __init__(self, out: str | os.PathLike[str], count: int, dim: int, dtype: str = "float16") -> None:
        check_index_dtype(dtype)
        if count == 0:
            raise OOVConfigError("no training images to index")
        self.out = Path(out).expanduser()
        self.out.mkdir(parents=True, exist_ok=True)
        self.dtype = dtype
        self.dim = dim
        self._tmp = self.out / "embeddings.tmp.npy"
        self.emb = np.lib.format.open_memmap(self._tmp, mode="w+", dtype=np.dtype(dtype), shape=(count, dim))
        self.ok = np.zeros(count, dtype=bool)

    def put(self, rows: slice | np.ndarray, vectors: np.ndarray, errors: Sequence[str | None],
            names: Sequence[str]) -> None:
        """Embeddings of ``rows`` (a slice or row indices); ``errors[j]`` set: row j is skipped."""
        self.emb[rows] = vectors.astype(self.dtype, copy=False)
        self.ok[rows] = [not e for e in errors]
        if any(errors):
            index = np.arange(rows.start or 0, rows.stop) if isinstance(rows, slice) else rows
            for j, e in enumerate(errors):
                if e:
                    log.warning("skipping %s: %s", names[int(index[j])], e)

    def finish(self, classes: np.ndarray, names: Sequence[str], meta: Mapping[str, Any]) -> TrainIndex:
        """Write ``embeddings.npy`` (the rows that worked), ``classes.npy``, ``files.txt``, ``meta.json``."""
        n = len(self.ok)
        self.emb.flush()
        keep = np.flatnonzero(self.ok)
        if keep.size == 0:
            del self.emb
            self._tmp.unlink()
            raise OOVConfigError(f"none of the {n} training images could be read and decoded ({names[0]}, ...)")
        if keep.size == n:
            del self.emb
            os.replace(self._tmp, self.out / "embeddings.npy")
        else:
            final = np.lib.format.open_memmap(
                self.out / "embeddings.npy", mode="w+", dtype=np.dtype(self.dtype), shape=(int(keep.size), self.dim)
            )
            for s in range(0, keep.size, 1 << 16):
                final[s : s + (1 << 16)] = self.emb[keep[s : s + (1 << 16)]]
            final.flush()
            del final, self.emb
            self._tmp.unlink()
        np.save(self.out / "classes.npy", classes[keep])
        (self.out / "files.txt").write_text("".join(names[i] + "\n" for i in keep.tolist()), encoding="utf-8")
        full = {
            "version": INDEX_VERSION,
            **meta,
            "dim": self.dim,
            "count": int(keep.size),
            "skipped": int(n - keep.size),
            "dtype": self.dtype,
            "num_classes": int(classes.max()) + 1 if classes.size else 0,
        }
        (self.out / "meta.json").write_text(json.dumps(full, indent=1, sort_keys=True))
        return TrainIndex.load(self.out)


def build_index(
    images: str | os.PathLike[str] | Sequence[tuple[ImageInput, int]],
    out: str | os.PathLike[str],
    *,
    config: OOVConfig | Mapping[str, Any] | None = None,
    encoder: Any | None = None,
    labels: str | os.PathLike[str] | None = None,
    vocab: Any | None = None,
    class_names: str = "auto",
    limit_per_class: int | None = None,
    dtype: str = "float16",
    block: int = 8192,
    progress: Callable[[int, int], None] | None = None,
) -> TrainIndex:
    """Embed a training set with its classes and write the index directory ``out``.

    ``images``: an ImageFolder-style directory (or a directory plus ``labels``), or a sequence of
    (path-or-bytes, class) pairs. The model comes from ``encoder`` (a :class:`ClipEncoder`) or
    ``config``. Images are decoded in DataLoader workers and embedded in batches, ``block`` images at a
    time, straight into a memory-mapped ``embeddings.npy`` (so 1.28M images need no RAM for the
    index); unreadable images are skipped and counted. Returns the loaded index.
    (:func:`errortaxa.providers.oov.ray_index.build_index_ray` does the same as a Ray Data job.)
    """
    from errortaxa.providers.oov.embed import ImageEmbedder, set_deterministic
    from errortaxa.providers.oov.model import ClipEncoder

    check_index_dtype(dtype)
    if encoder is None:
        cfg = config if isinstance(config, OOVConfig) else OOVConfig.from_mapping(config)
        encoder = ClipEncoder(cfg)
    set_deterministic()
    train = training_set(images, labels=labels, vocab=vocab, class_names=class_names,
                         limit_per_class=limit_per_class)
    n = len(train.items)
    writer = IndexWriter(out, n, encoder.embed_dim, dtype)
    embedder = ImageEmbedder(encoder, cache=None, memo=None)
    t0 = time.perf_counter()
    for start in range(0, n, block):
        vecs, errs = embedder.encode_items(train.items[start : start + block])
        writer.put(slice(start, start + len(vecs)), vecs, errs, train.names)
        if progress is not None:
            progress(min(start + block, n), n)
    seconds = time.perf_counter() - t0
    return writer.finish(train.classes, train.names,
                         {**encoder_meta(encoder), "source": train.source, "seconds": round(seconds, 3)})


__all__ = [
    "IndexWriter",
    "TrainIndex",
    "TrainingSet",
    "build_index",
    "check_index_dtype",
    "collect_training_images",
    "encoder_meta",
    "is_image_file",
    "training_set",
]
