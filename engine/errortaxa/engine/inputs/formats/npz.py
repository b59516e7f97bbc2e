"""NumPy ``.npz`` predictions: top-1 ids or scores, over the validation files or named images."""

from __future__ import annotations

import zipfile
from collections.abc import Sequence

import numpy as np
from errortaxa.engine.inputs.classes import class_ids
from errortaxa.engine.inputs.errors import InputError
from errortaxa.engine.inputs.predictions import Predictions
from errortaxa.engine.inputs.registry import PREDICTIONS, Format, ReadOptions, register
from errortaxa.engine.inputs.text import PathLike, binary_source, zip_first_name
from errortaxa.engine.inputs.validation import NUM_VALIDATION_IMAGES, validation_images

PREDICTION_KEYS = ("top1", "pred", "logits", "probs", "probabilities")


def read_npz(path: str, options: ReadOptions) -> Predictions:
    """The prediction array of an .npz: the first of keys ``top1``, ``pred``, ``logits``,
    ``probs``, ``probabilities`` present (or the one named by ``--columns pred=KEY`` /
    ``scores=KEY``; ``image=KEY`` names the images array); int[N] class ids or float[N, C]
    scores. Rows are the 50,000 validation images in file order, unless an ``images`` array
    (str[N]) names them. An archive without any of these keys is refused, whatever it holds."""
    try:
        loaded = np.load(binary_source(path), allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise InputError(path, f"cannot read as .npz: {error}") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise InputError(path, "cannot read as .npz: not a zip archive of arrays")
    given = options.columns.pred or options.columns.scores
    image_key = options.columns.image or "images"
    with loaded as arrays:
        expected = [given] if given is not None else list(PREDICTION_KEYS)
        key = next((k for k in expected if k in arrays.files), None)
        if key is None:
            raise InputError(path, f"no prediction array: expected {'one of ' * (len(expected) > 1)}"
                             f"{', '.join(expected)}, found "
                             f"{', '.join(arrays.files) or 'none'} (name another with --columns pred=NAME)")
        scores = _array(path, arrays, key)
        if scores.dtype.kind in "US" and scores.ndim == 1:
            scores = class_ids(path, scores.tolist(), options.classes, lambda row: f"key '{key}' row {row}")
        n = scores.shape[0] if scores.ndim else 0
        if image_key in arrays.files:
            return Predictions(path, "npz", key, scores,
                               _image_names(path, _array(path, arrays, image_key), n, image_key))
    if n != NUM_VALIDATION_IMAGES:
        raise InputError(path, f"has {n} rows; without an 'images' array the rows must be the "
                         f"{NUM_VALIDATION_IMAGES} validation images in file order", field=key)
    return Predictions(path, "npz", key, scores, validation_images())


def _array(path: PathLike, arrays: np.lib.npyio.NpzFile, key: str) -> np.ndarray:
    try:
        return np.asarray(arrays[key])
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise InputError(path, f"cannot load: {error}", field=key) from None


def _image_names(path: PathLike, array: np.ndarray, n: int, key: str) -> Sequence[str]:
    if array.ndim != 1 or array.dtype.kind not in "US":
        raise InputError(path, f"must be a 1-D array of file names, got {array.dtype} {array.shape}",
                         field=key)
    if array.shape[0] != n:
        raise InputError(path, f"has {array.shape[0]} names for {n} prediction rows", field=key)
    names = [str(s) for s in array.tolist()] if array.dtype.kind == "U" else \
        [bytes(s).decode("utf-8", "replace") for s in array.tolist()]
    if len(set(names)) != n:
        seen: set[str] = set()
        for i, name in enumerate(names):
            if name in seen:
                raise InputError(path, f"duplicate image {name!r}", where=f"key '{key}' row {i}")
            seen.add(name)
    return names


def _sniff(head: bytes) -> bool:
    name = zip_first_name(head)
    return head.startswith(b"PK\x05\x06") if name is None else name.endswith(b".npy")


register(Format("npz", PREDICTIONS, (".npz",), f"a NumPy .npz with one of {', '.join(PREDICTION_KEYS)} "
                "(int[N] or float[N, classes]) and optionally images (str[N])",
                _sniff, read_npz))
