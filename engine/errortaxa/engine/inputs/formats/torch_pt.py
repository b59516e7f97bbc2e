"""torch ``.pt`` / ``.pth`` predictions (the ``torch`` extra), loaded with
``torch.load(weights_only=True)`` (no code runs): a tensor [N, classes] of scores or [N] of top-1
ids over the 50,000 validation files in order, or a dict with ``images`` (file names) and one of
``top1``, ``pred``, ``logits``, ``probs``, ``probabilities`` (a tensor, or a list of ids or class
names). ``--columns image=KEY,pred=KEY`` (or ``scores=KEY``) names other keys."""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np
from errortaxa.engine.errors import MissingExtra
from errortaxa.engine.inputs.classes import class_ids
from errortaxa.engine.inputs.errors import InputError
from errortaxa.engine.inputs.formats.npz import PREDICTION_KEYS
from errortaxa.engine.inputs.predictions import Predictions
from errortaxa.engine.inputs.registry import PREDICTIONS, Format, ReadOptions, register
from errortaxa.engine.inputs.text import PathLike, binary_source, describe, zip_first_name
from errortaxa.engine.inputs.validation import NUM_VALIDATION_IMAGES, validation_images

TENSOR = "tensor"  # how errors name a file's one tensor
_LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"  # torch's pickle format (before zip files)


def read_pt(path: str, options: ReadOptions) -> Predictions:
    """The predictions of a torch file (see the module docstring)."""
    try:
        import torch
    except ImportError:
        raise MissingExtra(path, "torch") from None
    try:
        loaded = torch.load(binary_source(path), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, OSError, EOFError, ValueError, zipfile.BadZipFile) as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        raise InputError(path, f"cannot read as a torch file (weights only): {reason}") from None
    if isinstance(loaded, torch.Tensor):
        return _in_validation_order(path, TENSOR, _numpy(torch, loaded))
    if not isinstance(loaded, Mapping):
        raise InputError(path, f"must be a tensor [N, classes] or a dict with images and one of "
                         f"{', '.join(PREDICTION_KEYS)}, got {type(loaded).__name__}")
    columns = options.columns
    given = columns.pred or columns.scores
    keys = [given] if given is not None else [k for k in PREDICTION_KEYS if k in loaded]
    if not keys or keys[0] not in loaded:
        raise InputError(path, f"no prediction key: expected one of {', '.join(keys or PREDICTION_KEYS)}, found "
                         f"{', '.join(map(str, loaded)) or 'none'}")
    key = keys[0]
    value = loaded[key]
    if isinstance(value, torch.Tensor):
        scores = _numpy(torch, value)
    elif isinstance(value, list | tuple):
        scores = class_ids(path, list(value), options.classes, lambda row: f"key '{key}' row {row}")
    else:
        raise InputError(path, f"must be a tensor or a list of class ids or names, got {describe(value)}", field=key)
    image_key = columns.image or "images"
    if image_key not in loaded:
        return _in_validation_order(path, key, scores)
    n = scores.shape[0] if scores.ndim else 0
    return Predictions(path, "torch", key, scores, _names(path, loaded[image_key], image_key, n))


def _numpy(torch: Any, tensor: Any) -> np.ndarray:
    if tensor.is_floating_point() and tensor.dtype not in (torch.float16, torch.float32, torch.float64):
        tensor = tensor.float()  # bfloat16 and the float8 kinds have no numpy type
    return np.asarray(tensor.detach().cpu().numpy())


def _in_validation_order(path: str, key: str, scores: np.ndarray) -> Predictions:
    n = scores.shape[0] if scores.ndim else 0
    if n != NUM_VALIDATION_IMAGES:
        raise InputError(path, f"has {n} rows; without 'images' the rows must be the {NUM_VALIDATION_IMAGES} "
                         "validation images in file order", field=key)
    return Predictions(path, "torch", key, scores, validation_images())


def _names(path: PathLike, value: Any, key: str, n: int) -> list[str]:
    if not isinstance(value, list | tuple) or not all(isinstance(name, str) and name for name in value):
        raise InputError(path, f"must be a list of file names, got {describe(value)}", field=key)
    if len(value) != n:
        raise InputError(path, f"has {len(value)} names for {n} prediction rows", field=key)
    seen: set[str] = set()
    for row, name in enumerate(value):
        if name in seen:
            raise InputError(path, f"duplicate image {name!r}", where=f"key '{key}' row {row}")
        seen.add(name)
    return list(value)


def _sniff(head: bytes) -> bool:
    name = zip_first_name(head)
    return head.startswith(_LEGACY_MAGIC) if name is None else name.endswith(b"data.pkl")


register(Format("torch", PREDICTIONS, (".pt", ".pth"), f"a torch.save file: a tensor [{NUM_VALIDATION_IMAGES}, "
                "classes] over the validation files in order, or a dict with images and "
                f"{' / '.join(PREDICTION_KEYS)}", _sniff, read_pt))
