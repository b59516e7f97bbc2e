"""A model's figures that need more than its top-1 on the study images.

* ``top1_val``: top-1 accuracy on all 50,000 ImageNet validation images (the reference's
  ``top1_val_acc``), from a prediction file that covers them and the original labels
  (``--val-labels``, e.g. a caffe-style ``val.txt``).
* ``top1_subset``: top-1 accuracy on the study images of the prediction restricted to a class
  subset (ImageNet-A's 200 classes: the reference's ``top1_val_acc_subset_200``); it needs scores
  (logits), not top-1 ids.

Both are fractions in [0, 1], each with its 95% Clopper-Pearson interval (``_lo`` / ``_hi``); a
model whose file does not allow one has none (NaN in the table).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from errortaxa.engine.inputs import NUM_VALIDATION_IMAGES, InputError, LabeledImages, ReadOptions, read_predictions

PathLike = str | os.PathLike[str]
_VAL = re.compile(r"ILSVRC2012_val_(\d{8})(?:\.JPEG)?$")


def validation_targets(labels: LabeledImages) -> np.ndarray:
    """int32[50000]: the original label of validation image i (-1 where ``labels`` has none)."""
    out = np.full(NUM_VALIDATION_IMAGES, -1, np.int32)
    for i, name in enumerate(labels.images):
        m = _VAL.search(name)
        if m is None or not 1 <= int(m.group(1)) <= NUM_VALIDATION_IMAGES:
            raise InputError(labels.source or "val labels", f"{name!r} is not a validation image name",
                             record=i + 1)
        out[int(m.group(1)) - 1] = labels.target[i]
    if (out < 0).any():
        missing = int(np.argmax(out < 0))
        raise InputError(labels.source or "val labels", f"no label for validation image {missing + 1}: all "
                         f"{NUM_VALIDATION_IMAGES} are needed for top-1 on the validation set")
    return out


@dataclass(frozen=True)
class ExtraScores:
    """What :func:`read_with_scores` needs besides the study images."""

    val_targets: np.ndarray | None = None  # int32[50000] original labels
    subset: np.ndarray | None = None  # int[K] class subset (ImageNet-A's 200)


def read_with_scores(path: PathLike, rows_of: dict[str, int], study_target: np.ndarray,
                     extra: ExtraScores, options: ReadOptions | None = None) -> tuple[np.ndarray, dict[str, float]]:
    """A model's top-1 on every study image (int32[N], -1 where the file has none) and its extra
    figures (see the module doc). ``rows_of``: study row of an image name."""
    options = options or ReadOptions()
    num_classes = options.num_classes
    predictions = read_predictions(path, options)
    if predictions.images is None:
        raise InputError(path, f"{predictions.format} predictions need image names to join with the study images")
    pred = predictions.top1(num_classes)
    names = predictions.images
    rows = np.fromiter((rows_of.get(n, -1) for n in names), np.int64, len(names))
    keep = rows >= 0
    out = np.full(study_target.shape[0], -1, np.int32)
    out[rows[keep]] = pred[keep]
    extras: dict[str, float] = {}
    if extra.val_targets is not None:
        index = np.arange(NUM_VALIDATION_IMAGES) if predictions.validation_order else _val_index(names)
        if index is not None:
            _share(extras, "top1_val", int(np.count_nonzero(pred[index] == extra.val_targets)), index.shape[0])
    scores = predictions.scores
    if extra.subset is not None and scores.ndim == 2 and keep.any():
        sub = np.asarray(extra.subset, np.int64)
        restricted = sub[np.argmax(scores[keep][:, sub], axis=1)]
        _share(extras, "top1_subset", int(np.count_nonzero(restricted == study_target[rows[keep]])),
               int(restricted.shape[0]))
    return out, extras


def _share(extras: dict[str, float], name: str, k: int, n: int) -> None:
    """``name`` = k / n with its 95% Clopper-Pearson interval (``name_lo``, ``name_hi``)."""
    from errortaxa.study.stats import clopper_pearson

    lo, hi = clopper_pearson(k, n)
    extras[name], extras[f"{name}_lo"], extras[f"{name}_hi"] = k / n, float(lo), float(hi)


def _val_index(names: Sequence[str]) -> np.ndarray | None:
    """Row of each of the 50,000 validation images in the file, or None unless all are there."""
    index = np.full(NUM_VALIDATION_IMAGES, -1, np.int64)
    for row, name in enumerate(names):
        m = _VAL.search(str(name))
        if m and 1 <= int(m.group(1)) <= NUM_VALIDATION_IMAGES:
            index[int(m.group(1)) - 1] = row
    return None if (index < 0).any() else index
