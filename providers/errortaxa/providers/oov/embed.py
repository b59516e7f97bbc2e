"""Image embeddings through the cache: hash, look up, decode + preprocess the misses in DataLoader
workers, encode them in batches, store them."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from errortaxa.providers.oov.cache import EmbeddingCache
from errortaxa.providers.oov.images import DecodeDataset, HashMemo, ImageInput, hash_images
from errortaxa.providers.oov.model import ClipEncoder
from torch.utils.data import DataLoader


def default_workers() -> int:
    return max(0, min(8, (os.cpu_count() or 1) - 1))


@dataclass
class EmbedStats:
    images: int = 0
    cache_hits: int = 0
    encoded: int = 0
    failed: int = 0
    seconds_hash: float = 0.0
    seconds_encode: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {
            "images": self.images,
            "cache_hits": self.cache_hits,
            "encoded": self.encoded,
            "failed": self.failed,
            "seconds_hash": round(self.seconds_hash, 4),
            "seconds_encode": round(self.seconds_encode, 4),
        }


@dataclass
class EmbedResult:
    vectors: np.ndarray  # float32 [n, D]; zeros where not ok
    ok: np.ndarray  # bool [n]
    errors: list[str | None]  # why an image has no embedding
    stats: EmbedStats


class ImageEmbedder:
    """Embeds images with one CLIP model, serving repeats from the on-disk cache."""

    def __init__(
        self,
        encoder: ClipEncoder,
        *,
        cache: EmbeddingCache | None = None,
        memo: HashMemo | None = None,
        batch_size: int | None = None,
        num_workers: int | None = None,
    ) -> None:
        self.encoder = encoder
        self.cache = cache
        self.memo = memo
        self.batch_size = batch_size or encoder.config.batch_size
        nw = encoder.config.num_workers if num_workers is None else num_workers
        self.num_workers = default_workers() if nw is None else nw

    @classmethod
    def from_encoder(cls, encoder: ClipEncoder) -> ImageEmbedder:
        root = encoder.config.resolved_cache_dir()
        cache = EmbeddingCache(root, encoder.model_id, dim=encoder.embed_dim) if root is not None else None
        memo = HashMemo(root / "file-hashes.sqlite") if root is not None else None
        return cls(encoder, cache=cache, memo=memo)

    def encode_items(self, items: Sequence[ImageInput]) -> tuple[np.ndarray, list[str | None]]:
        """Decode + preprocess in workers and encode: float32 [n, D] and an error per failed item."""
        n = len(items)
        out = np.zeros((n, self.encoder.embed_dim), dtype=np.float32)
        errors: list[str | None] = [None] * n
        if n == 0:
            return out, errors
        self.encoder.load()
        ds = DecodeDataset(items, self.encoder.transform, self.encoder.input_shape)
        workers = self.num_workers if n > self.batch_size else min(self.num_workers, 1 if n > 8 else 0)
        loader = DataLoader(
            ds,
            batch_size=self.batch_size,
            shuffle=False,
            num_workers=workers,
            pin_memory=self.encoder.device.type == "cuda",
            persistent_workers=False,
            prefetch_factor=4 if workers else None,
        )
        for idx, pixels, errs in loader:
            feats = self.encoder.encode_pixels(pixels).cpu().numpy()
            idx_np = idx.numpy()
            out[idx_np] = feats
            for j, e in zip(idx_np.tolist(), errs, strict=True):
                if e:
                    errors[j] = e
                    out[j] = 0.0
        return out, errors

    def embed(self, items: Sequence[ImageInput]) -> EmbedResult:
        """Embeddings of images (paths or bytes), from the cache where possible."""
        n = len(items)
        stats = EmbedStats(images=n)
        t0 = time.perf_counter()
        digests = hash_images(items, memo=self.memo)
        stats.seconds_hash = time.perf_counter() - t0
        vectors = np.zeros((n, self.encoder.embed_dim), dtype=np.float32)
        ok = np.zeros(n, dtype=bool)
        errors: list[str | None] = [None if d is not None else "cannot read image file" for d in digests]
        have = [i for i, d in enumerate(digests) if d is not None]
        if self.cache is not None and have:
            found, vecs = self.cache.get([digests[i] for i in have])  # type: ignore[misc]
            idx = np.asarray(have, dtype=np.int64)
            if found.any():
                vectors[idx[found]] = vecs[found]
                ok[idx[found]] = True
            stats.cache_hits = int(found.sum())
        # encode each distinct missing digest once
        first: dict[bytes, int] = {}
        dupes: list[tuple[int, int]] = []
        for i in have:
            if ok[i]:
                continue
            d = digests[i]
            assert d is not None
            if d in first:
                dupes.append((i, first[d]))
            else:
                first[d] = i
        todo = list(first.values())
        if todo:
            t1 = time.perf_counter()
            vecs, errs = self.encode_items([items[i] for i in todo])
            stats.seconds_encode = time.perf_counter() - t1
            good = [j for j, e in enumerate(errs) if e is None]
            for j, i in enumerate(todo):
                if errs[j] is None:
                    vectors[i] = vecs[j]
                    ok[i] = True
                else:
                    errors[i] = f"cannot decode image: {errs[j]}"
            stats.encoded = len(good)
            if self.cache is not None and good:
                self.cache.put([digests[todo[j]] for j in good], vecs[good])  # type: ignore[misc]
        for i, src in dupes:
            vectors[i], ok[i], errors[i] = vectors[src], ok[src], errors[src]
        stats.failed = int((~ok).sum())
        for i in range(n):
            if ok[i]:
                errors[i] = None
        return EmbedResult(vectors, ok, errors, stats)


def set_deterministic() -> None:
    """Deterministic kernels where it costs little (no TF32 in fp32 matmuls, no cuDNN autotuning)."""
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
