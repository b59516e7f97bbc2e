"""NumPy ``.npz`` predictions: top-1 ids or scores, over the validation files or named images."""

from __future__ import annotations

import zipfile
from collections.abc import Sequence

import numpy as np
from errortaxa.engine.inputs.errors import InputError
from errortaxa.engine.inputs.predictions import Predictions
from errortaxa.engine.inputs.registry import PREDICTIONS, Format, ReadOptions, register
from errortaxa.engine.inputs.text import PathLike
from errortaxa.engine.inputs.validation import NUM_VALIDATION_IMAGES, validation_images

PREDICTION_KEYS = ("top1", "pred", "logits", "probs", "probabilities")


def read_npz(path: str, options: ReadOptions | None = None) -> Predictions:
    """The prediction array of an .npz: the first of keys ``top1``, ``pred``, ``logits``,
    ``probs``, ``probabilities`` present, else the only array besides ``images``; int[N] class ids
    or float[N, C] scores. Rows are the 50,000 validation images in file order, unless an
    ``images`` array (str[N]) names them."""
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise InputError(path, f"cannot read as .npz: {error}") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise InputError(path, "cannot read as .npz: not a zip archive of arrays")
    with loaded as arrays:
        keys = [k for k in PREDICTION_KEYS if k in arrays.files]
        others = [k for k in arrays.files if k != "images"]
        if keys:
            key = keys[0]
        elif len(others) == 1:
            key = others[0]
        else:
            raise InputError(path, f"no prediction array: expected one of {', '.join(PREDICTION_KEYS)} or "
                             f"a single array, found {', '.join(arrays.files) or 'none'}")
        scores = _array(path, arrays, key)
        n = scores.shape[0] if scores.ndim else 0
        if "images" in arrays.files:
            return Predictions(path, "npz", key, scores, _image_names(path, _array(path, arrays, "images"), n))
    if n != NUM_VALIDATION_IMAGES:
        raise InputError(path, f"has {n} rows; without an 'images' array the rows must be the "
                         f"{NUM_VALIDATION_IMAGES} validation images in file order", field=key)
    return Predictions(path, "npz", key, scores, validation_images())


def _array(path: PathLike, arrays: np.lib.npyio.NpzFile, key: str) -> np.ndarray:
    try:
        return np.asarray(arrays[key])
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise InputError(path, f"cannot load: {error}", field=key) from None


def _image_names(path: PathLike, array: np.ndarray, n: int) -> Sequence[str]:
    if array.ndim != 1 or array.dtype.kind not in "US":
        raise InputError(path, f"must be a 1-D array of file names, got {array.dtype} {array.shape}",
                         field="images")
    if array.shape[0] != n:
        raise InputError(path, f"has {array.shape[0]} names for {n} prediction rows", field="images")
    names = [str(s) for s in array.tolist()] if array.dtype.kind == "U" else \
        [bytes(s).decode("utf-8", "replace") for s in array.tolist()]
    if len(set(names)) != n:
        seen: set[str] = set()
        for i, name in enumerate(names):
            if name in seen:
                raise InputError(path, f"duplicate image {name!r}", where=f"key 'images' row {i}")
            seen.add(name)
    return names


register(Format("npz", PREDICTIONS, (".npz",), f"a NumPy .npz with one of {', '.join(PREDICTION_KEYS)} "
                "(int[N] or float[N, classes]) and optionally images (str[N])",
                lambda head: head.startswith((b"PK\x03\x04", b"PK\x05\x06")), read_npz))
