"""A plain list of predicted classes, as many labs write them: one class id or class name a line,
row i = validation image i (``ILSVRC2012_val_{i+1:08d}.JPEG``; at most the 50,000 validation
images). Blank and ``#`` lines are skipped. Where a command reads labels, a list of class ids is a
target list (the ``targets`` label-set format) instead."""

from __future__ import annotations

import re

import numpy as np
from errortaxa.engine.inputs.classes import class_ids
from errortaxa.engine.inputs.errors import InputError
from errortaxa.engine.inputs.predictions import Predictions
from errortaxa.engine.inputs.registry import PREDICTIONS, Format, ReadOptions, register
from errortaxa.engine.inputs.text import first_line, read_text
from errortaxa.engine.inputs.validation import NUM_VALIDATION_IMAGES, validation_images

KEY = "class"  # how errors name a row's one value
_ID = re.compile(rb"[0-9]+|n[0-9]{8}")


def read_class_list(path: str, options: ReadOptions) -> Predictions:
    """The predicted class of each row; errors name the record (the 1-based line)."""
    values: list[int | str] = []
    records: list[int] = []
    for number, raw in enumerate(read_text(path).split("\n"), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        values.append(int(line) if line.isascii() and line.isdigit() else line)
        records.append(number)
    if len(values) > NUM_VALIDATION_IMAGES:
        raise InputError(path, f"has {len(values)} rows; a class list's rows are validation images (at most "
                         f"{NUM_VALIDATION_IMAGES})", record=records[NUM_VALIDATION_IMAGES])
    ids = class_ids(path, values, options.classes, lambda row: f"record {records[row]}")
    images = validation_images() if len(values) == NUM_VALIDATION_IMAGES else validation_images(len(values))
    return Predictions(path, "class-list", KEY, ids.astype(np.int64), images)


def _sniff(head: bytes) -> bool:
    """A first line that is one class id or WordNet id (class names are recognised by the suffix)."""
    return _ID.fullmatch(first_line(head)) is not None


register(Format("class-list", PREDICTIONS, (".txt",), "one class id or class name a line, row i = validation "
                "image i", _sniff, read_class_list))
