"""CSV (or tab-separated) tables with a header: predictions (image, pred) or (image, logits...),
timm's inference CSV in both layouts, and label sets (image, label); see
:mod:`errortaxa.engine.inputs.tables` for how the columns are found."""

from __future__ import annotations

import csv
import io

from errortaxa.engine.inputs.errors import InputError
from errortaxa.engine.inputs.labels import LabeledImages
from errortaxa.engine.inputs.predictions import Predictions
from errortaxa.engine.inputs.registry import LABELS, PREDICTIONS, Format, ReadOptions, register
from errortaxa.engine.inputs.tables import IMAGE_COLUMNS, Table, table_labels, table_predictions
from errortaxa.engine.inputs.text import first_line, read_text

SUFFIXES = (".csv", ".tsv")


def read_table(path: str) -> Table:
    """The columns of a CSV file (cells as text); records are 1-based lines."""
    text = read_text(path)
    line = first_line(text[:4096].encode())
    delimiter = "\t" if b"\t" in line and b"," not in line else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [name.strip() for name in next(reader)]
        columns: list[list[str]] = [[] for _ in header]
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != len(header):
                raise InputError(path, f"has {len(row)} fields, the header has {len(header)}", record=reader.line_num)
            for column, cell in zip(columns, row, strict=True):
                column.append(cell)
    except StopIteration:
        raise InputError(path, "empty file (expected a CSV header)") from None
    except csv.Error as error:
        raise InputError(path, f"invalid CSV: {error}", record=reader.line_num) from None
    named = dict(zip(header, columns, strict=True))
    if len(named) != len(header):
        duplicate = next(name for name in header if header.count(name) > 1)
        raise InputError(path, f"column {duplicate!r} appears twice in the header", record=1)
    return Table(named, len(columns[0]) if columns else 0, text=True)


def _predictions(path: str, options: ReadOptions) -> Predictions:
    return table_predictions(path, "csv", read_table(path), options.columns, options.classes)


def _labels(path: str, options: ReadOptions) -> LabeledImages:
    return table_labels(path, read_table(path), options.columns, options.classes)


def _header(head: bytes) -> list[bytes] | None:
    """The header's column names of a CSV head (None: not CSV-like text)."""
    line = first_line(head)
    if b"\0" in head or not (b"," in line or b"\t" in line) or line.startswith((b"{", b"[")):
        return None
    delimiter = b"\t" if b"\t" in line and b"," not in line else b","
    return [name.strip().strip(b'"') for name in line.split(delimiter)]


def _sniff(head: bytes) -> bool:
    """A header that names an image column by a usual name (other names: by the suffix, ``--columns``)."""
    header = _header(head)
    return header is not None and any(name.decode("utf-8", "replace") in IMAGE_COLUMNS for name in header)


register(Format("csv", PREDICTIONS, SUFFIXES, "a CSV table with a header: an image column and class ids or names "
                "(pred, timm's index / label) or scores (logits, one column per class)", _sniff, _predictions))
register(Format("csv", LABELS, SUFFIXES, "a CSV table with a header: image and target (label) columns, "
                "optionally labels", lambda head: _sniff(head) and b"proposed_labels" not in first_line(head),
                _labels))
