"""Readers: samples (JSONL), label sets (multi-label CSV, ReaL, targets), predictions (.npz), sample lists.

Every reader raises :class:`InputError` with a one-line message that names the file, the record
(the 1-based line number for line-oriented files, the 1-based entry for JSON arrays, the key and
row for .npz files) and the field, e.g. ``in.jsonl record 17: field 'pred': class id 1000 is
outside 0..999``.

Validation images are named ``ILSVRC2012_val_{i+1:08d}.JPEG`` for row ``i`` (file order).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import sys
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache, partial
from itertools import chain
from pathlib import Path
from typing import Any, NoReturn, Protocol

import numpy as np
from errortaxa.engine.gcpause import gc_paused
from errortaxa.engine.outputs import STDIO
from errortaxa.engine.samples import SampleBatch, csr_take

_orjson: Any
try:  # optional accelerator; the standard library is the fallback
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None

__all__ = [
    "NUM_VALIDATION_IMAGES",
    "InputError",
    "LabeledImages",
    "load_label_file",
    "load_multilabel_csv",
    "load_real_json",
    "load_targets",
    "read_jsonl",
    "read_predictions_npz",
    "read_sample_list",
    "validation_image_name",
    "validation_images",
]

NUM_VALIDATION_IMAGES = 50_000
VAL_LABEL_FILE_NAMES = ("imagenet_val_labels_caffe.txt", "val.txt")
PREDICTION_KEYS = ("top1", "pred", "logits", "probs", "probabilities")

PathLike = str | os.PathLike[str]


class InputError(ValueError):
    """A malformed input file; the message is one line naming the file, record and field."""

    def __init__(self, path: PathLike, reason: str, *, record: int | None = None,
                 field: str | None = None, where: str | None = None) -> None:
        self.path = os.fspath(path)
        self.record = record
        self.field = field
        self.reason = reason
        location = self.path
        if where is not None:
            location += f" {where}"
        elif record is not None:
            location += f" record {record}"
        message = f"{location}: " + (f"field '{field}': " if field is not None else "") + reason
        super().__init__(" ".join(message.splitlines()))


def validation_image_name(row: int) -> str:
    """File name of validation image ``row`` (0-based): ``ILSVRC2012_val_{row+1:08d}.JPEG``."""
    return f"ILSVRC2012_val_{row + 1:08d}.JPEG"


@lru_cache(maxsize=2)
def validation_images(count: int = NUM_VALIDATION_IMAGES) -> tuple[str, ...]:
    """The first ``count`` validation file names, in file order."""
    return tuple(validation_image_name(i) for i in range(count))


# ---------------------------------------------------------------------------------------------
# small helpers


class _Missing:
    """Marker type for an absent optional field."""


_MISSING = _Missing()



def _describe(value: Any) -> str:
    """A short JSON-ish description of a value for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {'true' if value else 'false'}"
    if isinstance(value, int):
        return f"integer {_int_text(value)}"
    if isinstance(value, float):
        return f"number {value!r}"
    if isinstance(value, str):
        return f"string {value[:40]!r}" + ("..." if len(value) > 40 else "")
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _int_text(value: int) -> str:
    text = str(value)
    return text if len(text) <= 24 else text[:20] + "..."


def _range_text(num_classes: int) -> str:
    return f"0..{num_classes - 1}"


def _read_text(path: PathLike) -> str:
    """The file (``-``: standard input) as text (UTF-8, BOM dropped), with I/O and decoding errors
    as InputError."""
    try:
        data = sys.stdin.buffer.read() if os.fspath(path) == STDIO else Path(path).read_bytes()
    except OSError as error:
        raise InputError(path, f"cannot read: {error.strerror or error}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise InputError(path, f"not UTF-8 text (byte {error.start})", record=line) from None
    return text[1:] if text.startswith("\ufeff") else text


def _csr(labels: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """CSR offsets int64[N+1] and values int32[M] of label lists."""
    n = len(labels)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, labels), dtype=np.int64, count=n), out=offsets[1:])
    values = np.fromiter(chain.from_iterable(labels), dtype=np.int32, count=int(offsets[-1]))
    return offsets, values


# ---------------------------------------------------------------------------------------------
# JSONL samples


def read_jsonl(path: PathLike, num_classes: int = 1000) -> SampleBatch:
    """Read samples, one JSON object a line (blank lines skipped); ``-`` reads standard input.

    Fields: ``target`` (int), ``labels`` ([int], may be empty), ``pred`` (int), ``image`` (file
    name; may be omitted when ``id`` is given), optional ``id`` (str or int, kept as str),
    ``problematic`` (bool, default false), ``wrong_labels`` ([int], checked, then dropped).
    Other fields are ignored. Booleans are not integers. ``batch.images`` is None when no record
    has an image ("" where one lacks it); ``batch.ids`` is None when no record has an id (the image
    name where one lacks it).
    """
    text = _read_text(path)
    with gc_paused():
        records = _parse_lines_fast(text)
        batch = _batch_fast(records, num_classes) if records is not None else None
        if batch is None:
            batch = _read_jsonl_checked(path, text, num_classes)
    return batch


def _parse_lines_fast(text: str) -> list[Any] | None:
    """Parse one JSON value a line; None when anything is irregular (the checked path reports it)."""
    if _orjson is not None:
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        loads = _orjson.loads
        try:
            return [loads(line) for line in lines]
        except _orjson.JSONDecodeError:
            return None
    scan = _SCAN
    out: list[Any] = []
    append = out.append
    pos, end, n = 0, 0, len(text)
    try:
        while pos < n:
            value, end = scan(text, pos)
            append(value)
            if end < n and text[end] != "\n":
                return None
            pos = end + 1
    except (StopIteration, ValueError, RecursionError):
        return None
    # A value spanning several lines would leave more newlines than records.
    if len(out) != text.count("\n") + (0 if not text or text.endswith("\n") else 1):
        return None
    return out


_DECODER: Any = json.JSONDecoder()
_SCAN: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # the C scanner, no whitespace skipping


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
            checker.fail(None, f"must be a JSON object, got {_describe(record)}")
        ident = record.get("id", _MISSING)
        if ident is not _MISSING and (type(ident) not in (str, int) or ident == ""):
            checker.fail("id", f"must be a non-empty string or an integer, got {_describe(ident)}")
        image = record.get("image", _MISSING)
        if image is _MISSING:
            if ident is _MISSING:
                checker.fail("image", "missing (a record needs 'image' or 'id')")
        elif type(image) is not str or not image:
            checker.fail("image", f"must be a non-empty string, got {_describe(image)}")
        target.append(checker.class_id(record, "target"))
        labels.append(checker.class_list(record, "labels", required=True))
        pred.append(checker.class_id(record, "pred"))
        flag = record.get("problematic", False)
        if type(flag) is not bool:
            checker.fail("problematic", f"must be true or false, got {_describe(flag)}")
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
            self.fail(field, f"must be an integer class id, got {_describe(value)}")
        if not 0 <= value < self.num_classes:
            self.fail(field, f"class id {_int_text(value)} is outside {_range_text(self.num_classes)}")
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
            self.fail(field, f"must be an array of class ids, got {_describe(values)}")
        return [self.check_id(v, f"{field}[{j}]") for j, v in enumerate(values)]


# ---------------------------------------------------------------------------------------------
# label sets


@dataclass(frozen=True, eq=False)
class LabeledImages:
    """Images with their original target and set of correct labels (CSR), in a fixed order.

    ``skipped`` counts the images of the source left out for lack of any valid label.
    """

    images: list[str]
    target: np.ndarray  # int32[N]
    label_offsets: np.ndarray  # int64[N+1]
    label_values: np.ndarray  # int32[M]
    problematic: np.ndarray  # bool[N]
    skipped: int = 0
    source: str = ""

    def __post_init__(self) -> None:
        n = len(self.images)
        if (self.target.shape, self.problematic.shape, self.label_offsets.shape) != ((n,), (n,), (n + 1,)):
            raise ValueError(f"LabeledImages: columns disagree with {n} images")

    @classmethod
    def from_lists(cls, *, images: Sequence[str], target: Sequence[int], labels: Sequence[Sequence[int]],
                   problematic: Sequence[bool] | None = None, skipped: int = 0,
                   source: str = "") -> LabeledImages:
        """Build from Python lists."""
        offsets, values = _csr(labels)
        return cls(
            images=list(images), target=np.asarray(target, dtype=np.int32), label_offsets=offsets,
            label_values=values,
            problematic=np.zeros(len(images), dtype=bool) if problematic is None
            else np.asarray(problematic, dtype=bool),
            skipped=skipped, source=source,
        )

    def __len__(self) -> int:
        return len(self.images)

    @cached_property
    def _index(self) -> dict[str, int]:
        return {image: i for i, image in enumerate(self.images)}

    def index_of(self, image: str) -> int:
        """Row of ``image``; KeyError when it has no labels here."""
        try:
            return self._index[image]
        except KeyError:
            raise KeyError(f"{image!r} has no labels in {self.source or 'this label set'}") from None

    def indices_of(self, images: Iterable[str]) -> np.ndarray:
        """Rows (int64) of ``images``, -1 for those without labels."""
        get = self._index.get
        return np.fromiter((get(image, -1) for image in images), dtype=np.int64)

    def labels_of(self, i: int) -> list[int]:
        """The label set of row i."""
        return self.label_values[self.label_offsets[i] : self.label_offsets[i + 1]].tolist()

    def take(self, rows: Sequence[int] | np.ndarray) -> LabeledImages:
        """The rows ``rows`` (indices, or a boolean mask), in that order."""
        index = np.asarray(rows)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        index = index.astype(np.int64, copy=False)
        offsets, values = csr_take(self.label_offsets, self.label_values, index)
        return LabeledImages(
            images=[self.images[i] for i in index.tolist()], target=self.target[index],
            label_offsets=offsets, label_values=values, problematic=self.problematic[index],
            skipped=self.skipped, source=self.source,
        )

    def to_batch(self, pred: Sequence[int] | np.ndarray) -> SampleBatch:
        """A SampleBatch of all rows with the given top-1 predictions."""
        return SampleBatch.from_arrays(
            target=self.target, pred=np.asarray(pred), label_offsets=self.label_offsets,
            label_values=self.label_values, problematic=self.problematic, images=self.images,
        )


def _parse_class(text: str, path: PathLike, record: int, field: str, num_classes: int) -> int:
    token = text.strip()
    if not (token.isascii() and token.isdigit()):
        raise InputError(path, f"{token[:40]!r} is not a class id", record=record, field=field)
    value = int(token)
    if value >= num_classes:
        raise InputError(path, f"class id {value} is outside {_range_text(num_classes)}",
                         record=record, field=field)
    return value


def _parse_class_list(text: str, path: PathLike, record: int, field: str, num_classes: int) -> list[int]:
    body = text.strip()
    if body.startswith("[") and body.endswith("]"):
        body = body[1:-1].strip()
    if not body:
        return []
    return [_parse_class(token, path, record, field, num_classes) for token in body.split(",")]


_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no", ""})


def load_multilabel_csv(path: PathLike, num_classes: int = 1000) -> LabeledImages:
    """The expert multi-label CSV (TFDS ``imagenet2012_multilabel`` export).

    Columns used: ``id`` (file name), ``original_label`` (target), ``proposed_labels`` +
    ``unclear_multi_labels`` (the label set, duplicates dropped, order kept; lists are "1, 2"
    strings, possibly empty), ``is_problematic``. Records are 1-based CSV line numbers.
    """
    text = _read_text(path)
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
            target.append(_parse_class(row[c_target], path, line, "original_label", num_classes))
            label_list = _parse_class_list(row[c_proposed], path, line, "proposed_labels", num_classes)
            label_list += _parse_class_list(row[c_unclear], path, line, "unclear_multi_labels", num_classes)
            labels.append(list(dict.fromkeys(label_list)))
            problematic.append(flag in _TRUE)
    except csv.Error as error:
        raise InputError(path, f"invalid CSV: {error}", record=reader.line_num) from None
    return LabeledImages.from_lists(images=images, target=target, labels=labels, problematic=problematic,
                                    source=os.fspath(path))


def load_targets(path: PathLike, num_classes: int = 1000) -> LabeledImages:
    """A plain target list: one class id a line (row i = validation image i+1), or ``file label``
    lines (the caffe ``val.txt`` format). Labels are ``{target}``; blank and ``#`` lines skipped.
    """
    text = _read_text(path)
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
        target.append(_parse_class(fields[-1], path, number, "label", num_classes))
    return LabeledImages.from_lists(images=images, target=target, labels=[[t] for t in target],
                                    source=os.fspath(path))


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
            raise InputError(path, "ReaL labels need the original validation labels: pass val_labels "
                             f"or put {' or '.join(VAL_LABEL_FILE_NAMES)} beside it")
        val_labels = found
    originals = val_labels if isinstance(val_labels, LabeledImages) else load_targets(val_labels, num_classes)
    text = _read_text(path)
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(path, f"invalid JSON: {error.msg} at line {error.lineno} column {error.colno}") \
            from None
    if type(entries) is not list:
        raise InputError(path, f"must be a JSON array of label lists, got {_describe(entries)}")
    images: list[str] = []
    target: list[int] = []
    labels: list[list[int]] = []
    skipped = 0
    original_index = originals._index
    for i, entry in enumerate(entries):
        image = validation_image_name(i)
        where = f"record {i + 1} ({image})"
        if type(entry) is not list:
            raise InputError(path, f"must be an array of class ids, got {_describe(entry)}", where=where)
        for j, value in enumerate(entry):
            if type(value) is not int or not 0 <= value < num_classes:
                reason = (f"class id {value} is outside {_range_text(num_classes)}" if type(value) is int
                          else f"must be an integer class id, got {_describe(value)}")
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


def load_label_file(path: PathLike, *, val_labels: PathLike | LabeledImages | None = None,
                    num_classes: int = 1000) -> LabeledImages:
    """Load a label set by suffix (.csv multi-label, .json ReaL) or, otherwise, by content."""
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return load_multilabel_csv(path, num_classes)
    if suffix == ".json":
        return load_real_json(path, val_labels, num_classes)
    head = _read_text(path)[:4096].lstrip()
    if head.startswith("["):
        return load_real_json(path, val_labels, num_classes)
    first_line = head.split("\n", 1)[0]
    if "," in first_line and "proposed_labels" in first_line:
        return load_multilabel_csv(path, num_classes)
    return load_targets(path, num_classes)


# ---------------------------------------------------------------------------------------------
# predictions


def read_npz_scores(path: PathLike) -> tuple[str, np.ndarray, Sequence[str]]:
    """The prediction array of an .npz (its key and the array, top-1 ids or scores) and the image
    name of each row (``validation_images()`` itself when the rows are the validation files)."""
    with _open_npz(path) as arrays:
        keys = [k for k in PREDICTION_KEYS if k in arrays]
        others = [k for k in arrays if k != "images"]
        if keys:
            key = keys[0]
        elif len(others) == 1:
            key = others[0]
        else:
            raise InputError(path, f"no prediction array: expected one of {', '.join(PREDICTION_KEYS)} or "
                             f"a single array, found {', '.join(arrays) or 'none'}")
        scores = _array(path, arrays, key)
        n = scores.shape[0] if scores.ndim else 0
        if "images" in arrays:
            return key, scores, _image_names(path, _array(path, arrays, "images"), n)
    if n != NUM_VALIDATION_IMAGES:
        raise InputError(path, f"has {n} rows; without an 'images' array the rows must be the "
                         f"{NUM_VALIDATION_IMAGES} validation images in file order", field=key)
    return key, scores, validation_images()


def read_predictions_npz(path: PathLike, labels: LabeledImages,
                         num_classes: int = 1000) -> tuple[SampleBatch, int]:
    """Top-1 predictions from an .npz, joined with ``labels``.

    The prediction array is the first of keys ``top1``, ``pred``, ``logits``, ``probs``,
    ``probabilities`` present, else the only array besides ``images``: int[N] class ids, or
    float[N, num_classes] scores (argmax). Rows are the 50,000 validation images in file order,
    unless an ``images`` array (str[N]) names them. Returns the batch of the rows whose image has
    labels (in file order) and the number of rows skipped for lack of labels.
    """
    key, scores, names = read_npz_scores(path)
    pred = top1(path, key, scores, names, num_classes)
    n = len(names)
    rows = labels.indices_of(names)
    keep = rows >= 0
    return labels.take(rows[keep]).to_batch(pred[keep]), int(n - np.count_nonzero(keep))


@contextlib.contextmanager
def _open_npz(path: PathLike) -> Iterator[dict[str, Callable[[], np.ndarray]]]:
    """Loaders of the .npz members by key (a plain .npy counts as one array ``arr_0``)."""
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise InputError(path, f"cannot read as .npz: {error}") from None
    if isinstance(loaded, np.ndarray):
        array = loaded
        yield {"arr_0": lambda: array}
        return
    with loaded:
        yield {name: partial(loaded.__getitem__, name) for name in loaded.files}


def _array(path: PathLike, arrays: dict[str, Callable[[], np.ndarray]], key: str) -> np.ndarray:
    try:
        return np.asarray(arrays[key]())
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise InputError(path, f"cannot load: {error}", field=key) from None


def _image_names(path: PathLike, array: np.ndarray, n: int) -> list[str]:
    if array.ndim != 1 or array.dtype.kind not in "US":
        raise InputError(path, f"must be a 1-D array of file names, got {array.dtype} {array.shape}",
                         field="images")
    if array.shape[0] != n:
        raise InputError(path, f"has {array.shape[0]} names for {n} prediction rows", field="images")
    names = [str(s) for s in array.tolist()] if array.dtype.kind == "U" else \
        [bytes(s).decode("utf-8", "replace") for s in array.tolist()]
    if len(set(names)) != n:
        seen: set[str] = set()
        for i, name in enumerate(names):
            if name in seen:
                raise InputError(path, f"duplicate image {name!r}", where=f"key 'images' row {i}")
            seen.add(name)
    return names


class RowNames(Protocol):
    """Anything that gives the image name of a row (for error messages)."""

    def __getitem__(self, row: int, /) -> str: ...


def top1(path: PathLike, key: str, scores: np.ndarray, names: RowNames, num_classes: int) -> np.ndarray:
    """Top-1 class ids from ids or [N, num_classes] scores; errors name the key, row and image."""
    def fail(row: int, reason: str) -> NoReturn:
        raise InputError(path, reason, where=f"key '{key}' row {row} ({names[row]})")

    kind = scores.dtype.kind
    if scores.ndim == 1:
        if kind not in "iu":
            raise InputError(path, f"1-D predictions must be integer class ids, not {scores.dtype}",
                             field=key)
        bad = np.flatnonzero((scores < 0) | (scores >= num_classes))
        if bad.size:
            fail(int(bad[0]), f"class id {int(scores[bad[0]])} is outside {_range_text(num_classes)}")
        return scores.astype(np.int32)
    if scores.ndim == 2:
        if kind not in "fiu":
            raise InputError(path, f"scores must be numbers, got {scores.dtype}", field=key)
        if scores.shape[1] != num_classes:
            raise InputError(path, f"scores must be [N, {num_classes}], got {list(scores.shape)}", field=key)
        if kind == "f":
            finite = np.isfinite(scores).all(axis=1) if scores.size else np.ones(0, dtype=bool)
            if not finite.all():
                fail(int(np.argmin(finite)), "scores hold NaN or infinity")
        return np.argmax(scores, axis=1).astype(np.int32)
    raise InputError(path, f"must be int[N] or float[N, {num_classes}], got shape {list(scores.shape)}",
                     field=key)


# ---------------------------------------------------------------------------------------------
# sample lists


def read_sample_list(path: PathLike) -> frozenset[str]:
    """Image file names, one a line; blank lines and ``#`` comments (whole or trailing) skipped."""
    names: set[str] = set()
    for number, raw in enumerate(_read_text(path).split("\n"), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) != 1:
            raise InputError(path, f"expected one image file name, got {len(fields)} fields", record=number)
        names.add(fields[0])
    return frozenset(names)
