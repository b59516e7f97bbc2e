"""ImageNet-X's multi-factor annotations of the validation images, read from the installed
``imagenet-x`` package's data files (located, not imported: its code is not run)."""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import orjson
from errortaxa.engine.providers.annotations import AnnotationTable
from errortaxa.engine.providers.factory import ProviderConfigError, ProviderUnavailable

FACTORS = ("pose", "background", "pattern", "color", "smaller", "shape", "partial_view", "subcategory",
           "texture", "larger", "darker", "object_blocking", "person_blocking", "style", "brighter",
           "multiple_objects")
"""The 16 factors of ImageNet-X, in the package's order."""
ANNOTATION_FILE = "imagenet_x_val_multi_factor.jsonl"
SOURCE = ("ImageNet-X (Idrissi et al. 2022, 'ImageNet-X: Understanding Model Mistakes with Factor of Variation "
          "Annotations'), the imagenet-x package's multi-factor annotations of the validation images; "
          "CC BY-NC 4.0 (the wheel's LICENSE file)")
MISSING = "needs the factors extra: pip install 'errortaxa[factors]' (the imagenet-x package)"


def package_file() -> Path | None:
    """The installed package's multi-factor annotation file, or None when it is not installed."""
    spec = importlib.util.find_spec("imagenet_x")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "annotations" / ANNOTATION_FILE
    return path if path.is_file() else None


def installed_table() -> AnnotationTable:
    """The installed package's annotations; ProviderUnavailable when it is not installed."""
    path = package_file()
    if path is None:
        raise ProviderUnavailable(MISSING)
    return read_annotations(path)


@lru_cache(maxsize=4)
def read_annotations(path: str | os.PathLike[str]) -> AnnotationTable:
    """An annotation file in the package's format: JSON lines of ``file_name`` and 0/1 per factor.
    ProviderConfigError naming the line and field for anything else."""
    images: list[str] = []
    rows: list[list[int]] = []
    try:
        stream = open(path, encoding="utf-8")
    except OSError as error:
        raise ProviderConfigError(f"{path}: cannot read: {error.strerror or error}") from None
    with stream:
        for line_no, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as error:
                raise ProviderConfigError(f"{path}, line {line_no}: not JSON: {error}") from None
            if not isinstance(record, dict) or not isinstance(record.get("file_name"), str):
                raise ProviderConfigError(f"{path}, line {line_no}: file_name: missing or not a string")
            flags = []
            for factor in FACTORS:
                value = record.get(factor)
                if value not in (0, 1) or isinstance(value, float):
                    raise ProviderConfigError(f"{path}, line {line_no}: {factor}: expected 0 or 1, got {value!r}")
                flags.append(int(value))
            images.append(Path(record["file_name"]).name)
            rows.append(flags)
    if len(set(images)) != len(images):
        raise ProviderConfigError(f"{path}: an image is annotated twice")
    values = np.array(rows, dtype=bool).reshape(len(rows), len(FACTORS))
    return AnnotationTable(provider="imagenet_x", images=images, columns=list(FACTORS), values=values,
                           source=f"{SOURCE}: {path}")
