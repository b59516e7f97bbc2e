"""The validation images: found only under the --images folder, thumbnails cached.

An image is served only when its name is one of the study's images; its file is looked up as
``DIR/NAME`` (a flat ``val/``) or ``DIR/WNID/NAME`` (class folders, by the image's target class).
A name that would leave the folder (``..``, an absolute path, a symbolic link that points out of
it) is not found; a known image whose file is missing gets the placeholder (status 200).
Thumbnails (JPEG, at most 256 px) are kept in a least-recently-used cache bounded in bytes.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

THUMB_SIZE = 256
CACHE_BYTES = 64 << 20  # thumbnails kept in memory (about 8 KB each: some 8,000)


class ImageFolder:
    """The images of a study under ``root`` (None: every image is the placeholder)."""

    def __init__(self, root: Path | None, known: Callable[[str], str | None], cache_bytes: int = CACHE_BYTES) -> None:
        """``known(name)``: the class folder (WNID) of a study image, None for a name that is not one."""
        self.root = root.resolve() if root is not None else None
        self.known = known
        self.cache_bytes = cache_bytes
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self._placeholder: dict[int, bytes] = {}

    def path(self, name: str) -> Path | None:
        """The file of study image ``name`` under the root (None: unknown name, or no such file in it).

        Raises KeyError for a name that is not a study image or leaves the folder."""
        wnid = self.known(name)
        if wnid is None or not _plain(name):
            raise KeyError(name)
        if self.root is None:
            return None
        for candidate in (self.root / name, self.root / wnid / name):
            if not candidate.exists():  # follows links: a dangling one is a missing file
                continue
            real = candidate.resolve()
            if not real.is_relative_to(self.root) or not real.is_file():
                raise KeyError(name)  # a link (or a folder) out of the images folder
            return real
        return None

    def thumbnail(self, name: str) -> bytes:
        """A JPEG of at most 256 px (the placeholder for a known image without a file); KeyError
        for a name that is not served."""
        with self._lock:
            hit = self._cache.get(name)
            if hit is not None:
                self._cache.move_to_end(name)
                return hit
        path = self.path(name)
        data = self.placeholder(THUMB_SIZE) if path is None else _thumbnail(path) or self.placeholder(THUMB_SIZE)
        with self._lock:
            if name not in self._cache and len(data) <= self.cache_bytes:
                self._cache[name] = data
                self._size += len(data)
                while self._size > self.cache_bytes:
                    _, old = self._cache.popitem(last=False)
                    self._size -= len(old)
        return data

    def full(self, name: str) -> bytes:
        """The image itself as a JPEG (re-encoded when its file is another format; placeholder when missing)."""
        path = self.path(name)
        if path is None:
            return self.placeholder(512)
        data = path.read_bytes()
        if data[:3] == b"\xff\xd8\xff":
            return data
        from PIL import Image

        try:
            with Image.open(io.BytesIO(data)) as image:
                return _jpeg(image.convert("RGB"))
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            return self.placeholder(512)

    def placeholder(self, size: int) -> bytes:
        """A grey JPEG standing in for a missing image."""
        if size not in self._placeholder:
            from PIL import Image, ImageDraw

            image = Image.new("RGB", (size, size * 3 // 4), (200, 200, 200))
            draw = ImageDraw.Draw(image)
            draw.line((0, 0, image.width, image.height), fill=(160, 160, 160), width=2)
            draw.line((0, image.height, image.width, 0), fill=(160, 160, 160), width=2)
            draw.text((8, 8), "image not found", fill=(90, 90, 90))
            self._placeholder[size] = _jpeg(image)
        return self._placeholder[size]

    def cached(self) -> tuple[int, int]:
        """(thumbnails, bytes) in the cache."""
        with self._lock:
            return len(self._cache), self._size


def _plain(name: str) -> bool:
    """A relative name without ``..``, empty or control parts (study images may sit in a class
    folder, e.g. ImageNet-A's WNID/FILE.jpg)."""
    if not name or name.startswith(("/", "\\")) or "\\" in name or any(ord(ch) < 32 for ch in name):
        return False
    return all(part not in ("", ".", "..") for part in name.split("/"))


def _thumbnail(path: Path) -> bytes | None:
    """The thumbnail of an image file (None: not a readable image)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.draft("RGB", (THUMB_SIZE, THUMB_SIZE))  # JPEG: decode at 1/2, 1/4 or 1/8 scale
            small = image.convert("RGB")
            small.thumbnail((THUMB_SIZE, THUMB_SIZE), Image.Resampling.BILINEAR, reducing_gap=2.0)
            return _jpeg(small)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def _jpeg(image: object) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)  # type: ignore[attr-defined]
    return out.getvalue()
