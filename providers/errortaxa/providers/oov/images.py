"""Images: paths, ImageFolder-style directories or bytes; content hashes; decoding in DataLoader workers."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")

ImageInput = str | os.PathLike[str] | bytes
"""An image: a file path or the encoded bytes of an image file."""


def is_image_file(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def list_image_folder(root: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """ImageFolder layout: ``root/<class>/**/<image>`` -> sorted [(path, class directory name)]."""
    base = Path(root)
    if not base.is_dir():
        raise FileNotFoundError(f"image folder not found: {base}")
    out: list[tuple[str, str]] = []
    for cls_dir in sorted(p for p in base.iterdir() if p.is_dir()):
        for dirpath, dirnames, filenames in os.walk(cls_dir):
            dirnames.sort()
            for name in sorted(filenames):
                if is_image_file(name):
                    out.append((os.path.join(dirpath, name), cls_dir.name))
    return out


def list_images(root: str | os.PathLike[str]) -> list[str]:
    """Every image file under ``root`` (recursively), sorted."""
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        out.extend(os.path.join(dirpath, n) for n in sorted(filenames) if is_image_file(n))
    return out


class ImageResolver:
    """Finds a sample's image file from its name (``ILSVRC2012_val_00003189.JPEG``) under some roots.

    A name that is an existing path is used as is; otherwise ``root/name`` is tried for each root, then
    (built once, lazily) an index of every image file under the roots by base name and by path
    relative to the root, which covers ImageFolder-style trees.
    """

    def __init__(self, roots: Iterable[str | os.PathLike[str]] = ()) -> None:
        self.roots = [Path(r).expanduser() for r in roots]
        self._index: dict[str, str] | None = None
        self._lock = threading.Lock()

    def _build_index(self) -> dict[str, str]:
        index: dict[str, str] = {}
        for root in self.roots:
            if not root.is_dir():
                continue
            for path in list_images(root):
                index.setdefault(os.path.relpath(path, root), path)
                index.setdefault(os.path.basename(path), path)
        return index

    def resolve(self, name: str) -> str | None:
        if os.path.isabs(name) and os.path.isfile(name):
            return name
        for root in self.roots:
            cand = root / name
            if cand.is_file():
                return str(cand)
        if not self.roots:
            return name if os.path.isfile(name) else None
        with self._lock:
            if self._index is None:
                self._index = self._build_index()
        return self._index.get(name) or self._index.get(os.path.basename(name))


def content_hash(data: bytes) -> bytes:
    """16-byte blake2b digest of an image file's bytes (the cache key with the model id)."""
    return hashlib.blake2b(data, digest_size=16).digest()


class HashMemo:
    """Persistent memo of file digests keyed by (path, size, mtime_ns), so reruns do not re-read files."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._mem: dict[tuple[str, int, int], bytes] = {}
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        if path is not None:
            with contextlib.suppress(sqlite3.Error, OSError):
                path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
                db.execute(
                    "CREATE TABLE IF NOT EXISTS h (path TEXT PRIMARY KEY, size INTEGER, "
                    "mtime INTEGER, digest BLOB)"
                )
                db.commit()
                self._db = db

    def get_many(self, keys: Sequence[tuple[str, int, int]]) -> list[bytes | None]:
        out: list[bytes | None] = [self._mem.get(k) for k in keys]
        missing = [i for i, v in enumerate(out) if v is None]
        if missing and self._db is not None:
            with self._lock, contextlib.suppress(sqlite3.Error):
                for start in range(0, len(missing), 500):
                    chunk = missing[start : start + 500]
                    paths = [keys[i][0] for i in chunk]
                    marks = ",".join("?" * len(paths))
                    query = f"SELECT path, size, mtime, digest FROM h WHERE path IN ({marks})"
                    rows = self._db.execute(query, paths).fetchall()
                    found = {r[0]: (int(r[1]), int(r[2]), bytes(r[3])) for r in rows}
                    for i in chunk:
                        p, size, mtime = keys[i]
                        hit = found.get(p)
                        if hit is not None and hit[0] == size and hit[1] == mtime:
                            out[i] = hit[2]
                            self._mem[keys[i]] = hit[2]
        return out

    def put_many(self, items: Sequence[tuple[tuple[str, int, int], bytes]]) -> None:
        for k, d in items:
            self._mem[k] = d
        if items and self._db is not None:
            with self._lock, contextlib.suppress(sqlite3.Error):
                self._db.executemany(
                    "INSERT OR REPLACE INTO h VALUES (?, ?, ?, ?)", [(k[0], k[1], k[2], d) for k, d in items]
                )
                self._db.commit()


def _stat_key(path: str) -> tuple[str, int, int]:
    st = os.stat(path)
    return (os.path.abspath(path), int(st.st_size), int(st.st_mtime_ns))


def _hash_file(path: str) -> bytes:
    with open(path, "rb") as f:
        return content_hash(f.read())


def hash_images(
    items: Sequence[ImageInput], *, memo: HashMemo | None = None, threads: int = 8
) -> list[bytes | None]:
    """Content digests of images (None where a file cannot be read), hashing files on threads."""
    out: list[bytes | None] = [None] * len(items)
    paths: list[tuple[int, tuple[str, int, int]]] = []
    for i, item in enumerate(items):
        if isinstance(item, bytes | bytearray | memoryview):
            out[i] = content_hash(bytes(item))
        else:
            with contextlib.suppress(OSError):
                paths.append((i, _stat_key(os.fspath(item))))
    if not paths:
        return out
    known = memo.get_many([k for _, k in paths]) if memo is not None else [None] * len(paths)
    todo = [(i, k) for (i, k), d in zip(paths, known, strict=True) if d is None]
    for (i, _), d in zip(paths, known, strict=True):
        if d is not None:
            out[i] = d

    def work(job: tuple[int, tuple[str, int, int]]) -> tuple[int, tuple[str, int, int], bytes | None]:
        try:
            return job[0], job[1], _hash_file(job[1][0])
        except OSError:
            return job[0], job[1], None

    fresh: list[tuple[tuple[str, int, int], bytes]] = []
    if todo:
        if len(todo) > 16 and threads > 1:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                results = list(pool.map(work, todo, chunksize=16))
        else:
            results = [work(j) for j in todo]
        for i, key, d in results:
            out[i] = d
            if d is not None:
                fresh.append((key, d))
    if memo is not None and fresh:
        memo.put_many(fresh)
    return out


def open_image(item: ImageInput) -> Any:
    """Decode an image (path or bytes) into an RGB PIL image."""
    from PIL import Image

    if isinstance(item, bytes | bytearray | memoryview):
        img = Image.open(io.BytesIO(bytes(item)))
    else:
        img = Image.open(os.fspath(item))
    img.load()
    return img.convert("RGB")


class DecodeDataset(Dataset[tuple[int, torch.Tensor, str]]):
    """Decodes and preprocesses images in DataLoader workers; a failure gives zeros and its message."""

    def __init__(
        self,
        items: Sequence[ImageInput],
        transform: Callable[[Any], torch.Tensor],
        shape: tuple[int, int, int],
    ) -> None:
        self.items = items
        self.transform = transform
        self.shape = shape

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor, str]:
        try:
            x = self.transform(open_image(self.items[i]))
            if tuple(x.shape) != self.shape:
                raise ValueError(f"preprocessing gave shape {tuple(x.shape)}, expected {self.shape}")
            return i, x, ""
        except Exception as exc:
            return i, torch.zeros(self.shape), f"{type(exc).__name__}: {exc}" or "decode failed"
