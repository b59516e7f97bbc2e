"""The ImageNet validation files: row ``i`` (file order) is ``ILSVRC2012_val_{i+1:08d}.JPEG``."""

from __future__ import annotations

from functools import lru_cache

NUM_VALIDATION_IMAGES = 50_000


def validation_image_name(row: int) -> str:
    """File name of validation image ``row`` (0-based): ``ILSVRC2012_val_{row+1:08d}.JPEG``."""
    return f"ILSVRC2012_val_{row + 1:08d}.JPEG"


@lru_cache(maxsize=2)
def validation_images(count: int = NUM_VALIDATION_IMAGES) -> tuple[str, ...]:
    """The first ``count`` validation file names, in file order (the same tuple on each call)."""
    return tuple(validation_image_name(i) for i in range(count))
