"""ReaL labels (Beyer et al. 2020): a JSON array, entry i = the labels of validation image i+1."""

from __future__ import annotations

import json
import os
from pathlib import Path

from errortaxa.engine.inputs.errors import InputError, InputNeedsMore
from errortaxa.engine.inputs.formats.targets import load_targets
from errortaxa.engine.inputs.labels import LabeledImages
from errortaxa.engine.inputs.registry import LABELS, Format, register
from errortaxa.engine.inputs.text import PathLike, describe, range_text, read_text
from errortaxa.engine.inputs.validation import validation_image_name

VAL_LABEL_FILE_NAMES = ("imagenet_val_labels_caffe.txt", "val.txt")


def _find_val_labels(path: Path) -> Path | None:
    for name in VAL_LABEL_FILE_NAMES:
        candidate = path.parent / name
        if candidate.is_file():
            return candidate
    return None


def load_real_json(path: PathLike, val_labels: PathLike | LabeledImages | None = None,
                   num_classes: int = 1000) -> LabeledImages:
    """ReaL labels (Beyer et al. 2020): a JSON list, entry i = the labels of validation image i+1.

    An empty entry means no valid label: the image is skipped (counted in ``skipped``). The
    target is the image's *original* label, from ``val_labels`` (a target list, see
    :func:`load_targets`, or a loaded LabeledImages) or, when None, from
    ``imagenet_val_labels_caffe.txt`` or ``val.txt`` beside ``path``; without one it is an error
    (ReaL sets do not say which label is the original one). Records are 1-based entries.
    """
    if val_labels is None:
        found = _find_val_labels(Path(path))
        if found is None:
            raise InputNeedsMore(path, "ReaL labels need the original validation labels: pass val_labels "
                                 f"or put {' or '.join(VAL_LABEL_FILE_NAMES)} beside it")
        val_labels = found
    originals = val_labels if isinstance(val_labels, LabeledImages) else load_targets(val_labels, num_classes)
    text = read_text(path)
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(path, f"invalid JSON: {error.msg} at line {error.lineno} column {error.colno}") \
            from None
    if type(entries) is not list:
        raise InputError(path, f"must be a JSON array of label lists, got {describe(entries)}")
    images: list[str] = []
    target: list[int] = []
    labels: list[list[int]] = []
    skipped = 0
    original_index = originals.index
    for i, entry in enumerate(entries):
        image = validation_image_name(i)
        where = f"record {i + 1} ({image})"
        if type(entry) is not list:
            raise InputError(path, f"must be an array of class ids, got {describe(entry)}", where=where)
        for j, value in enumerate(entry):
            if type(value) is not int or not 0 <= value < num_classes:
                reason = (f"class id {value} is outside {range_text(num_classes)}" if type(value) is int
                          else f"must be an integer class id, got {describe(value)}")
                raise InputError(path, reason, where=where, field=f"[{j}]")
        if not entry:
            skipped += 1
            continue
        row = original_index.get(image)
        if row is None:
            raise InputError(path, f"no original label for this image in {originals.source}", where=where)
        images.append(image)
        target.append(int(originals.target[row]))
        labels.append(list(dict.fromkeys(entry)))
    return LabeledImages.from_lists(images=images, target=target, labels=labels, skipped=skipped,
                                    source=os.fspath(path))


def _sniff(head: bytes) -> bool:
    return head.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"[")


register(Format("real-json", LABELS, (".json",), "a JSON array of class-id arrays, one per validation image",
                _sniff, lambda path, options: load_real_json(path, options.val_labels, options.num_classes)))
