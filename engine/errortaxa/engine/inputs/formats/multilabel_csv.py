"""The expert multi-label CSV (Shankar et al. 2020; the TFDS ``imagenet2012_multilabel`` export)."""

from __future__ import annotations

import csv
import io
import os

from errortaxa.engine.inputs.errors import InputError
from errortaxa.engine.inputs.labels import LabeledImages
from errortaxa.engine.inputs.registry import LABELS, Format, register
from errortaxa.engine.inputs.text import PathLike, first_line, parse_class, parse_class_list, read_text

_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no", ""})


def load_multilabel_csv(path: PathLike, num_classes: int = 1000) -> LabeledImages:
    """The expert multi-label CSV (TFDS ``imagenet2012_multilabel`` export).

    Columns used: ``id`` (file name), ``original_label`` (target), ``proposed_labels`` +
    ``unclear_multi_labels`` (the label set, duplicates dropped, order kept; lists are "1, 2"
    strings, possibly empty), ``is_problematic``. Records are 1-based CSV line numbers.
    """
    text = read_text(path)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise InputError(path, "empty file (expected a CSV header)") from None
    except csv.Error as error:
        raise InputError(path, f"invalid CSV: {error}", record=1) from None
    columns = {name.strip(): j for j, name in enumerate(header)}
    needed = ("id", "original_label", "proposed_labels", "unclear_multi_labels", "is_problematic")
    for name in needed:
        if name not in columns:
            raise InputError(path, f"missing column (header has {', '.join(columns)[:120]})",
                             record=1, field=name)
    c_id, c_target, c_proposed, c_unclear, c_problematic = (columns[name] for name in needed)
    images: list[str] = []
    target: list[int] = []
    labels: list[list[int]] = []
    problematic: list[bool] = []
    seen: dict[str, int] = {}
    try:
        for row in reader:
            line = reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != len(header):
                raise InputError(path, f"has {len(row)} fields, the header has {len(header)}", record=line)
            image = row[c_id].strip()
            if not image:
                raise InputError(path, "empty image file name", record=line, field="id")
            if image in seen:
                raise InputError(path, f"duplicate image {image!r} (first at record {seen[image]})",
                                 record=line, field="id")
            seen[image] = line
            flag = row[c_problematic].strip().lower()
            if flag not in _TRUE and flag not in _FALSE:
                raise InputError(path, f"{flag[:40]!r} is not True or False", record=line,
                                 field="is_problematic")
            images.append(image)
            target.append(parse_class(row[c_target], path, line, "original_label", num_classes))
            label_list = parse_class_list(row[c_proposed], path, line, "proposed_labels", num_classes)
            label_list += parse_class_list(row[c_unclear], path, line, "unclear_multi_labels", num_classes)
            labels.append(list(dict.fromkeys(label_list)))
            problematic.append(flag in _TRUE)
    except csv.Error as error:
        raise InputError(path, f"invalid CSV: {error}", record=reader.line_num) from None
    return LabeledImages.from_lists(images=images, target=target, labels=labels, problematic=problematic,
                                    source=os.fspath(path))


def _sniff(head: bytes) -> bool:
    line = first_line(head)
    return b"," in line and b"proposed_labels" in line


register(Format("multilabel-csv", LABELS, (".csv",), "a CSV with id, original_label, proposed_labels, "
                "unclear_multi_labels and is_problematic columns", _sniff,
                lambda path, options: load_multilabel_csv(path, options.num_classes)))
