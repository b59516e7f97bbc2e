"""NumPy ``.npy`` predictions: one array over the 50,000 validation files in order, int[N] top-1
class ids or [N, classes] scores (logits or probabilities; the argmax is the top-1)."""

from __future__ import annotations

import numpy as np
from errortaxa.engine.inputs.errors import InputError
from errortaxa.engine.inputs.predictions import Predictions
from errortaxa.engine.inputs.registry import PREDICTIONS, Format, ReadOptions, register
from errortaxa.engine.inputs.text import binary_source
from errortaxa.engine.inputs.validation import NUM_VALIDATION_IMAGES, validation_images

KEY = "array"  # how errors name the file's one array


def read_npy(path: str, options: ReadOptions | None = None) -> Predictions:
    """The array of an .npy file, row i = validation image i."""
    try:
        scores = np.load(binary_source(path), allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise InputError(path, f"cannot read as .npy: {error}") from None
    if not isinstance(scores, np.ndarray):
        raise InputError(path, "cannot read as .npy: not a single array")
    n = scores.shape[0] if scores.ndim else 0
    if n != NUM_VALIDATION_IMAGES:
        raise InputError(path, f"has {n} rows; the rows of an .npy must be the {NUM_VALIDATION_IMAGES} "
                         "validation images in file order", field=KEY)
    return Predictions(path, "npy", KEY, scores, validation_images())


register(Format("npy", PREDICTIONS, (".npy",), f"a NumPy .npy array, int[{NUM_VALIDATION_IMAGES}] or "
                f"float[{NUM_VALIDATION_IMAGES}, classes] over the validation files in order",
                lambda head: head.startswith(b"\x93NUMPY"), read_npy))
