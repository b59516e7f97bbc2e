"""JSONL samples: one JSON object a line with the image, its target, label set and prediction.

The format is registered twice: as predictions that carry their own labels (classify, study, diff)
and as a label set (the server's datasets; the predictions are ignored). As predictions, records
without ``target`` and ``labels`` (``{"image": "a.JPEG", "pred": 5}``, ``pred`` a class id or
name) are predictions alone, joined with a label set (``--labels``).
"""

from __future__ import annotations

import json
from itertools import chain
from typing import Any, NoReturn

import numpy as np
import orjson
from errortaxa.engine.gcpause import gc_paused
from errortaxa.engine.inputs.classes import class_ids
from errortaxa.engine.inputs.errors import InputError
from errortaxa.engine.inputs.labels import LabeledImages
from errortaxa.engine.inputs.predictions import Predictions
from errortaxa.engine.inputs.registry import LABELS, PREDICTIONS, Format, ReadOptions, register
from errortaxa.engine.inputs.text import PathLike, describe, first_line, int_text, range_text, read_text
from errortaxa.engine.samples import SampleBatch

EXPECTS = "JSON objects with target, labels and pred (or image and pred), one a line"


class _Missing:
    """Marker type for an absent optional field."""


_MISSING = _Missing()


def _sniff(head: bytes) -> bool:
    line = first_line(head)
    return line.startswith(b"{") and line != b"{"  # a pretty-printed JSON object starts with "{" alone


def _predictions(path: str, options: ReadOptions) -> Predictions:
    text = read_text(path)
    lines = [(number, line) for number, line in enumerate(text.split("\n"), 1) if line.strip(" \t\r")]
    try:
        first = json.loads(lines[0][1]) if lines else None
    except ValueError:
        first = None
    if type(first) is dict and "target" not in first and "labels" not in first:
        return _image_predictions(path, lines, options)
    batch = _samples(path, text, options.num_classes)
    return Predictions(path, "jsonl", "pred", batch.pred, batch.images, samples=batch)


def _image_predictions(path: str, lines: list[tuple[int, str]], options: ReadOptions) -> Predictions:
    """Records of image and pred alone (the first record has neither target nor labels)."""
    images: list[str] = []
    preds: list[Any] = []
    seen: dict[str, int] = {}
    for number, line in lines:
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as error:
            raise InputError(path, f"invalid JSON: {error}", record=number) from None
        checker = _RecordChecker(path, number, options.num_classes)
        if type(record) is not dict:
            checker.fail(None, f"must be a JSON object, got {describe(record)}")
        for field in ("target", "labels"):
            if field in record:
                checker.fail(field, f"record {lines[0][0]} has no target or labels: give every record target and "
                                    "labels, or none (predictions joined with --labels)")
        image = record.get("image", _MISSING)
        if type(image) is not str or not image:
            checker.fail("image", "missing" if image is _MISSING else f"must be a non-empty string, got "
                                                                      f"{describe(image)}")
        if image in seen:
            checker.fail("image", f"duplicate image {image!r} (first at record {seen[image]})")
        seen[image] = number
        if "pred" not in record:
            checker.fail("pred", "missing")
        images.append(image)
        preds.append(record["pred"])
    numbers = [number for number, _ in lines]
    pred = class_ids(path, preds, options.classes, lambda row: f"record {numbers[row]}", "pred")
    return Predictions(path, "jsonl", "pred", pred, images)


def _labels(path: str, options: ReadOptions) -> LabeledImages:
    return LabeledImages.from_batch(read_jsonl(path, options.num_classes), source=path)


register(Format("jsonl", PREDICTIONS, (".jsonl",), EXPECTS, _sniff, _predictions, carries_labels=True))
register(Format("jsonl", LABELS, (".jsonl",), EXPECTS, _sniff, _labels))


def read_jsonl(path: PathLike, num_classes: int = 1000) -> SampleBatch:
    """Read samples, one JSON object a line (blank lines skipped).

    Fields: ``target`` (int), ``labels`` ([int], may be empty), ``pred`` (int), ``image`` (file
    name; may be omitted when ``id`` is given), optional ``id`` (str or int, kept as str),
    ``problematic`` (bool, default false), ``wrong_labels`` ([int], checked, then dropped).
    Other fields are ignored. Booleans are not integers. ``batch.images`` is None when no record
    has an image ("" where one lacks it); ``batch.ids`` is None when no record has an id (the image
    name where one lacks it).
    """
    return _samples(path, read_text(path), num_classes)


def _samples(path: PathLike, text: str, num_classes: int) -> SampleBatch:
    with gc_paused():
        records = _parse_lines_fast(text)
        batch = _batch_fast(records, num_classes) if records is not None else None
        if batch is None:
            batch = _read_jsonl_checked(path, text, num_classes)
    return batch


def _parse_lines_fast(text: str) -> list[Any] | None:
    """Parse one JSON value a line; None when any line is not JSON (the checked path reports it)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    loads = orjson.loads
    try:
        return [loads(line) for line in lines]
    except orjson.JSONDecodeError:
        return None


def _batch_fast(records: list[Any], num_classes: int) -> SampleBatch | None:
    """Column-wise checks of well-formed records; None when any check fails."""
    if not set(map(type, records)) <= {dict}:
        return None
    try:
        target = [r["target"] for r in records]
        pred = [r["pred"] for r in records]
        labels = [r["labels"] for r in records]
    except KeyError:
        return None
    if not (set(map(type, target)) <= {int} and set(map(type, pred)) <= {int}
            and set(map(type, labels)) <= {list}):
        return None
    flat = list(chain.from_iterable(labels))
    if not set(map(type, flat)) <= {int}:
        return None
    images = [r.get("image", _MISSING) for r in records]
    ids = [r.get("id", _MISSING) for r in records]
    problematic = [r.get("problematic", False) for r in records]
    image_types, id_types = set(map(type, images)), set(map(type, ids))
    if not (image_types <= {str, _Missing} and id_types <= {str, int, _Missing}
            and set(map(type, problematic)) <= {bool}):
        return None
    if (str in image_types and "" in images) or (str in id_types and "" in ids):
        return None
    if _Missing in image_types and (_Missing in id_types or not id_types) and any(
            im is _MISSING and i is _MISSING for im, i in zip(images, ids, strict=True)):
        return None
    wrong = [r.get("wrong_labels", _MISSING) for r in records]
    wrong_types = set(map(type, wrong))
    if wrong_types - {_Missing}:
        if not wrong_types <= {list, _Missing}:
            return None
        wrong_flat = list(chain.from_iterable(w for w in wrong if w is not _MISSING))
        if not set(map(type, wrong_flat)) <= {int} or _out_of_range(_ints(wrong_flat), num_classes):
            return None
    try:
        columns = _ints(target), _ints(pred), _ints(flat)
    except OverflowError:
        return None
    if any(_out_of_range(column, num_classes) for column in columns):
        return None
    return _build_batch(*columns, labels, problematic, images, ids,
                        all_images=_Missing not in image_types, any_id=id_types != {_Missing})


def _ints(values: list[int]) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def _out_of_range(values: np.ndarray, num_classes: int) -> bool:
    return bool(values.size) and (int(values.min()) < 0 or int(values.max()) >= num_classes)


def _build_batch(target: np.ndarray, pred: np.ndarray, flat: np.ndarray, labels: list[list[int]],
                 problematic: list[bool], images: list[Any], ids: list[Any], *,
                 all_images: bool, any_id: bool) -> SampleBatch:
    n = len(labels)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, labels), dtype=np.int64, count=n), out=offsets[1:])
    image_column: list[str] | None = images
    if not all_images:
        has_image = [im is not _MISSING for im in images]
        image_column = None if not any(has_image) else [
            im if ok else "" for im, ok in zip(images, has_image, strict=True)]
    id_column = None if not any_id else [
        im if i is _MISSING else str(i) for i, im in zip(ids, images, strict=True)]
    return SampleBatch.from_arrays(
        target=target, pred=pred, label_offsets=offsets, label_values=flat,
        problematic=np.array(problematic, dtype=bool), images=image_column, ids=id_column,
    )


def _read_jsonl_checked(path: PathLike, text: str, num_classes: int) -> SampleBatch:
    """Record by record, raising InputError at the first problem (the slow, exact path).

    Always the standard library parser: arbitrary-size integers and stable error messages.
    """
    loads = json.loads
    decode_errors: tuple[type[Exception], ...] = (ValueError, RecursionError)
    target: list[int] = []
    pred: list[int] = []
    labels: list[list[int]] = []
    problematic: list[bool] = []
    images: list[Any] = []
    ids: list[Any] = []
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip(" \t\r"):
            continue
        try:
            record = loads(line)
        except decode_errors as error:
            reason = error.msg if isinstance(error, json.JSONDecodeError) else str(error)
            column = f" at column {error.colno}" if isinstance(error, json.JSONDecodeError) else ""
            raise InputError(path, f"invalid JSON: {reason}{column}", record=number) from None
        checker = _RecordChecker(path, number, num_classes)
        if type(record) is not dict:
            checker.fail(None, f"must be a JSON object, got {describe(record)}")
        ident = record.get("id", _MISSING)
        if ident is not _MISSING and (type(ident) not in (str, int) or ident == ""):
            checker.fail("id", f"must be a non-empty string or an integer, got {describe(ident)}")
        image = record.get("image", _MISSING)
        if image is _MISSING:
            if ident is _MISSING:
                checker.fail("image", "missing (a record needs 'image' or 'id')")
        elif type(image) is not str or not image:
            checker.fail("image", f"must be a non-empty string, got {describe(image)}")
        target.append(checker.class_id(record, "target"))
        labels.append(checker.class_list(record, "labels", required=True))
        pred.append(checker.class_id(record, "pred"))
        flag = record.get("problematic", False)
        if type(flag) is not bool:
            checker.fail("problematic", f"must be true or false, got {describe(flag)}")
        problematic.append(flag)
        checker.class_list(record, "wrong_labels", required=False)
        images.append(image)
        ids.append(ident)
    return _build_batch(_ints(target), _ints(pred), _ints(list(chain.from_iterable(labels))), labels,
                        problematic, images, ids, all_images=_MISSING not in images,
                        any_id=any(i is not _MISSING for i in ids))


class _RecordChecker:
    """Field checks for one JSONL record."""

    def __init__(self, path: PathLike, record: int, num_classes: int) -> None:
        self.path, self.record, self.num_classes = path, record, num_classes

    def fail(self, field: str | None, reason: str) -> NoReturn:
        raise InputError(self.path, reason, record=self.record, field=field)

    def check_id(self, value: Any, field: str) -> int:
        if type(value) is not int:
            self.fail(field, f"must be an integer class id, got {describe(value)}")
        if not 0 <= value < self.num_classes:
            self.fail(field, f"class id {int_text(value)} is outside {range_text(self.num_classes)}")
        return int(value)

    def class_id(self, record: dict[str, Any], field: str) -> int:
        if field not in record:
            self.fail(field, "missing")
        return self.check_id(record[field], field)

    def class_list(self, record: dict[str, Any], field: str, *, required: bool) -> list[int]:
        if field not in record:
            if required:
                self.fail(field, "missing")
            return []
        values = record[field]
        if type(values) is not list:
            self.fail(field, f"must be an array of class ids, got {describe(values)}")
        return [self.check_id(v, f"{field}[{j}]") for j, v in enumerate(values)]
