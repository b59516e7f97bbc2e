"""timm's inference JSON (``inference.py --results-format json`` / ``json-split``): an object
keyed by file name (``{"a.JPEG": {"index": [542, ...], "label": [...], "prob": [...]}}``), or
pandas' split layout (``{"columns": ["filename", "index_0", ...], "data": [[...], ...]}``); with or
without ``--results-separate-col``. The top-1 is the first of the top-k (``index``, else ``label``
names); see :mod:`errortaxa.engine.inputs.tables`."""

from __future__ import annotations

import json
import re
from typing import Any

from errortaxa.engine.inputs.errors import InputError
from errortaxa.engine.inputs.predictions import Predictions
from errortaxa.engine.inputs.registry import PREDICTIONS, Format, ReadOptions, register
from errortaxa.engine.inputs.tables import Table, table_predictions
from errortaxa.engine.inputs.text import describe, read_text

_KEYED = re.compile(rb'\{\s*"(?:[^"\\]|\\.)*"\s*:\s*\{')
_SPLIT = re.compile(rb'\{\s*"columns"\s*:\s*\[')


def _load(path: str) -> Any:
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as error:
        raise InputError(path, f"invalid JSON: {error.msg} at line {error.lineno} column {error.colno}") from None


def read_keyed(path: str, options: ReadOptions) -> Predictions:
    """An object keyed by file name, each value an object of columns."""
    data = _load(path)
    if type(data) is not dict:
        raise InputError(path, f"must be a JSON object keyed by file name, got {describe(data)}")
    names: list[str] = []
    columns: dict[str, list[Any]] = {}
    for row, (image, record) in enumerate(data.items()):
        if type(record) is not dict:
            raise InputError(path, f"must be an object of columns, got {describe(record)}", where=f"key {image!r}")
        if row == 0:
            columns = {key: [] for key in record}
        if record.keys() != columns.keys():
            raise InputError(path, f"has keys {', '.join(record)[:80]}, the first entry {', '.join(columns)[:80]}",
                             where=f"key {image!r}")
        for key, value in record.items():
            columns[key].append(value)
        names.append(image)
    return table_predictions(path, "timm-json", Table(columns, len(names), image_names=names), options.columns,
                             options.classes)


def read_split(path: str, options: ReadOptions) -> Predictions:
    """pandas' split layout: ``columns``, ``data`` (rows) and optionally ``index`` (file names)."""
    data = _load(path)
    if type(data) is not dict or type(data.get("columns")) is not list or type(data.get("data")) is not list:
        raise InputError(path, "must be a JSON object with 'columns' and 'data' arrays")
    header = data["columns"]
    if not all(type(name) is str for name in header) or len(set(header)) != len(header):
        raise InputError(path, "must be distinct column names", field="columns")
    columns: dict[str, list[Any]] = {name: [] for name in header}
    for row, values in enumerate(data["data"]):
        if type(values) is not list or len(values) != len(header):
            raise InputError(path, f"must be an array of {len(header)} values, got {describe(values)}",
                             where=f"data row {row + 1}")
        for name, value in zip(header, values, strict=True):
            columns[name].append(value)
    index = data.get("index")
    names = index if type(index) is list and "filename" not in columns else None
    return table_predictions(path, "timm-json-split", Table(columns, len(data["data"]), image_names=names),
                             options.columns, options.classes)


def _sniff_keyed(head: bytes) -> bool:
    return _KEYED.match(head.removeprefix(b"\xef\xbb\xbf").lstrip()) is not None


def _sniff_split(head: bytes) -> bool:
    return _SPLIT.match(head.removeprefix(b"\xef\xbb\xbf").lstrip()) is not None


register(Format("timm-json", PREDICTIONS, (".json",), "timm's inference JSON: an object keyed by file name of "
                "{index, label, prob} objects", _sniff_keyed, read_keyed))
register(Format("timm-json-split", PREDICTIONS, (".json",), "timm's json-split: an object with columns "
                "(filename, index_0, ...) and data arrays", _sniff_split, read_split))
