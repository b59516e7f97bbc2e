"""Class co-occurrence counts (the spurious-correlation table of the reference method).

The committed table ``data/real_cooccurrence.npz`` is built by ``scripts/build_cooccurrence.py``
from the ReaL labels (Beyer et al. 2020, Apache-2.0) of the 30,000 ImageNet validation images
outside the multi-label set, each image's original label added to its ReaL set. Entry ``[a, b]``
is the number of those images whose label set holds both ``a`` and ``b``.

File layout (``np.load(..., allow_pickle=False)``): ``pairs`` uint16[P, 2] with ``a < b``,
``counts`` int32[P] (> 0), ``class_counts`` int32[C] (images whose set holds the class),
``num_classes`` int64 scalar, ``provenance`` a JSON string (sources, license, method, date).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_COOCCURRENCE: Path = Path(__file__).resolve().parent / "data" / "real_cooccurrence.npz"


def load_cooccurrence(path: str | os.PathLike[str] = DEFAULT_COOCCURRENCE) -> np.ndarray:
    """Dense symmetric co-occurrence counts int32[C, C] with a zero diagonal."""
    with np.load(path, allow_pickle=False) as table:
        pairs = np.asarray(table["pairs"])
        counts = np.asarray(table["counts"])
        num_classes = int(table["num_classes"])
    if pairs.ndim != 2 or pairs.shape[1] != 2 or counts.shape != (pairs.shape[0],):
        raise ValueError(f"{os.fspath(path)}: 'pairs' must be [P, 2] and 'counts' [P]")
    a = pairs[:, 0].astype(np.intp)
    b = pairs[:, 1].astype(np.intp)
    if pairs.size and (a.min() < 0 or b.max() >= num_classes or np.any(a >= b) or counts.min() <= 0):
        raise ValueError(f"{os.fspath(path)}: pairs must satisfy 0 <= a < b < {num_classes} with counts > 0")
    dense = np.zeros((num_classes, num_classes), dtype=np.int32)
    dense[a, b] = counts
    dense[b, a] = counts
    return dense


def load_class_counts(path: str | os.PathLike[str] = DEFAULT_COOCCURRENCE) -> np.ndarray:
    """int32[C]: for each class, the number of counted images whose label set holds it."""
    with np.load(path, allow_pickle=False) as table:
        return np.asarray(table["class_counts"], dtype=np.int32)


def cooccurrence_provenance(path: str | os.PathLike[str] = DEFAULT_COOCCURRENCE) -> dict[str, Any]:
    """The table's provenance record (sources with sha256, license, method, date, statistics)."""
    with np.load(path, allow_pickle=False) as table:
        record: dict[str, Any] = json.loads(str(table["provenance"]))
    return record
