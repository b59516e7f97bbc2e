"""A plain target list: one class id a line, or ``file label`` lines (caffe ``val.txt``)."""

from __future__ import annotations

import os

from errortaxa.engine.inputs.errors import InputError
from errortaxa.engine.inputs.labels import LabeledImages
from errortaxa.engine.inputs.registry import LABELS, Format, register
from errortaxa.engine.inputs.text import PathLike, first_line, parse_class, read_text
from errortaxa.engine.inputs.validation import validation_image_name


def load_targets(path: PathLike, num_classes: int = 1000) -> LabeledImages:
    """A plain target list: one class id a line (row i = validation image i+1), or ``file label``
    lines (the caffe ``val.txt`` format). Labels are ``{target}``; blank and ``#`` lines skipped.
    """
    text = read_text(path)
    images: list[str] = []
    target: list[int] = []
    named: bool | None = None
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if named is None:
            named = len(fields) == 2
        if len(fields) != (2 if named else 1):
            expected = "'file label'" if named else "one class id"
            raise InputError(path, f"expected {expected} like the first record, got {len(fields)} fields",
                             record=number)
        if named:
            image = fields[0]
            if image in seen:
                raise InputError(path, f"duplicate image {image!r} (first at record {seen[image]})",
                                 record=number, field="image")
            seen[image] = number
        else:
            image = validation_image_name(len(images))
        images.append(image)
        target.append(parse_class(fields[-1], path, number, "label", num_classes))
    return LabeledImages.from_lists(images=images, target=target, labels=[[t] for t in target],
                                    source=os.fspath(path))


def _sniff(head: bytes) -> bool:
    fields = first_line(head).split()
    return len(fields) in (1, 2) and fields[-1].isdigit()


register(Format("targets", LABELS, (".txt",), "one class id a line, or 'file label' lines", _sniff,
                lambda path, options: load_targets(path, options.num_classes)))
