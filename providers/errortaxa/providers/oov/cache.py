"""On-disk, memory-mapped embedding cache keyed by (content digest, model id).

Layout: ``<root>/<namespace>/<model id>/`` with ``meta.json`` (dim, dtype, version), ``vectors.f32``
(row-major float32 [N, dim], memory-mapped for reads) and ``keys.bin`` (16-byte digests, one per row).
Writers append under an exclusive ``flock``: vectors first, then keys, so a key on disk always has
its vector; a crashed writer's partial tail is cut off by the next writer. Readers pick up rows other
processes appended when they look a key up. A different model id is a different directory, and a
changed image is a different digest, so stale embeddings are never served.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from errortaxa.engine.outputs import write_text

CACHE_VERSION = 1
KEY_BYTES = 16


class EmbeddingCache:
    """Append-only digest -> float32 vector store for one model id."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        model_id: str,
        *,
        namespace: str = "images",
        dim: int | None = None,
    ) -> None:
        self.dir = Path(root) / namespace / model_id
        self.model_id = model_id
        self.dim = dim
        self._index: dict[bytes, int] = {}
        self._keys_read = 0  # bytes of keys.bin already indexed
        self._mmap: np.memmap | None = None
        self._mapped_rows = 0
        self._mutex = threading.RLock()  # threads of one process (a server) share the in-memory index
        self._read_meta()

    # -- files --------------------------------------------------------------------------------------
    @property
    def _keys(self) -> Path:
        return self.dir / "keys.bin"

    @property
    def _vectors(self) -> Path:
        return self.dir / "vectors.f32"

    @property
    def _meta(self) -> Path:
        return self.dir / "meta.json"

    def _read_meta(self) -> None:
        if not self._meta.is_file():
            return
        try:
            meta = json.loads(self._meta.read_text())
        except (OSError, ValueError):
            meta = {}
        if meta.get("version") != CACHE_VERSION or meta.get("model_id") != self.model_id or "dim" not in meta:
            self._reset_files()
            return
        if self.dim is not None and int(meta["dim"]) != self.dim:
            self._reset_files()
            return
        self.dim = int(meta["dim"])

    def _reset_files(self) -> None:
        with self._locked():
            for p in (self._keys, self._vectors, self._meta):
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
        self._index.clear()
        self._keys_read = 0
        self._mmap = None
        self._mapped_rows = 0

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / ".lock", "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def _committed_rows(self) -> int:
        if self.dim is None:
            return 0
        try:
            nk = self._keys.stat().st_size // KEY_BYTES
            nv = self._vectors.stat().st_size // (4 * self.dim)
        except FileNotFoundError:
            return 0
        return min(nk, nv)

    def refresh(self) -> None:
        """Index keys that were appended (by this or another process) since the last look."""
        with self._mutex:
            self._refresh()

    def _refresh(self) -> None:
        if self.dim is None:
            self._read_meta()
            if self.dim is None:
                return
        rows = self._committed_rows()
        end = rows * KEY_BYTES
        if end <= self._keys_read:
            return
        with open(self._keys, "rb") as f:
            f.seek(self._keys_read)
            blob = f.read(end - self._keys_read)
        start_row = self._keys_read // KEY_BYTES
        for j in range(len(blob) // KEY_BYTES):
            self._index.setdefault(blob[j * KEY_BYTES : (j + 1) * KEY_BYTES], start_row + j)
        self._keys_read = start_row * KEY_BYTES + (len(blob) // KEY_BYTES) * KEY_BYTES

    def __len__(self) -> int:
        self.refresh()
        return len(self._index)

    def __contains__(self, digest: bytes) -> bool:
        self.refresh()
        return digest in self._index

    # -- reads --------------------------------------------------------------------------------------
    def lookup(self, digests: Sequence[bytes | None]) -> np.ndarray:
        """Row of each digest in the store, -1 where absent."""
        self.refresh()
        return np.fromiter(
            (self._index.get(d, -1) if d is not None else -1 for d in digests),
            dtype=np.int64,
            count=len(digests),
        )

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        """float32 [len(rows), dim] copies of stored rows (rows must come from :meth:`lookup`)."""
        if self.dim is None:
            raise KeyError("the embedding cache is empty")
        rows = np.asarray(rows, dtype=np.int64)
        need = int(rows.max()) + 1 if rows.size else 0
        with self._mutex:
            if self._mmap is None or need > self._mapped_rows:
                n = self._committed_rows()
                self._mmap = np.memmap(self._vectors, dtype=np.float32, mode="r", shape=(n, self.dim))
                self._mapped_rows = n
            mm = self._mmap
        return np.asarray(mm[rows], dtype=np.float32)

    def get(self, digests: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """(found bool[n], vectors float32[n, dim] with zeros where not found)."""
        rows = self.lookup(digests)
        found = rows >= 0
        out = np.zeros((len(digests), self.dim or 0), dtype=np.float32)
        if found.any():
            out[found] = self.vectors(rows[found])
        return found, out

    # -- writes -------------------------------------------------------------------------------------
    def put(self, digests: Sequence[bytes], vectors: np.ndarray) -> None:
        """Append vectors for digests that are not stored yet."""
        vecs = np.ascontiguousarray(vectors, dtype=np.float32)
        if vecs.ndim != 2 or vecs.shape[0] != len(digests):
            raise ValueError(f"vectors shape {vecs.shape} does not match {len(digests)} digests")
        if any(len(d) != KEY_BYTES for d in digests):
            raise ValueError(f"digests must be {KEY_BYTES} bytes")
        if self.dim is None:
            self.dim = int(vecs.shape[1])
        elif vecs.shape[1] != self.dim:
            raise ValueError(f"vectors have dim {vecs.shape[1]}, the cache holds dim {self.dim}")
        with self._mutex, self._locked():
            if not self._meta.is_file():
                write_text(self._meta, json.dumps(
                    {"version": CACHE_VERSION, "model_id": self.model_id, "dim": self.dim, "dtype": "float32"}
                ))
            self.refresh()
            keep: list[int] = []
            seen: set[bytes] = set()
            for i, d in enumerate(digests):
                if d not in self._index and d not in seen:
                    seen.add(d)
                    keep.append(i)
            if not keep:
                return
            rows = self._committed_rows()
            # cut a crashed writer's partial tail, then append vectors before keys
            with open(self._vectors, "ab") as f:
                f.truncate(rows * 4 * self.dim)
                f.write(vecs[keep].tobytes())
                f.flush()
                os.fsync(f.fileno())
            with open(self._keys, "ab") as f:
                f.truncate(rows * KEY_BYTES)
                f.write(b"".join(digests[i] for i in keep))
                f.flush()
            self.refresh()
