"""Tables of predictions or labels (CSV, parquet, timm's JSON), whatever their container.

A container reader (a format module) gives a :class:`Table`: its columns by name, in file order.
:func:`table_predictions` and :func:`table_labels` find the columns by the names in
:class:`Columns` (``--columns image=file,pred=top1``) or, for those not given, by their usual names:

* image: the first of :data:`IMAGE_COLUMNS` present;
* predictions: a column of :data:`PRED_COLUMNS` (class ids or names; a top-k list counts by its
  first entry), timm's layout (image column ``filename`` with ``index`` / ``index_0`` /
  ``label`` / ``label_0``: its top-1), a column of :data:`SCORE_COLUMNS` (a list of scores a row,
  or numbered columns ``logits_0`` .. ``logits_999``), else every other column when there are as
  many as classes (image, logit, logit, ...);
* a label set's target: the first of :data:`TARGET_COLUMNS`; its label set: ``labels`` (a list a
  row; default: the target alone); ``problematic`` / ``is_problematic`` (default false).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, NoReturn

import numpy as np
from errortaxa.engine.errors import InvalidInput
from errortaxa.engine.inputs.classes import class_ids
from errortaxa.engine.inputs.errors import InputError
from errortaxa.engine.inputs.labels import LabeledImages
from errortaxa.engine.inputs.predictions import Predictions
from errortaxa.engine.inputs.text import PathLike
from errortaxa.engine.knowledge.vocabulary import Vocabulary

IMAGE_COLUMNS = ("image", "filename", "file_name", "file", "path", "image_id", "id")
PRED_COLUMNS = ("pred", "prediction", "predicted", "top1", "pred_label", "predicted_label")
TIMM_COLUMNS = ("index", "index_0", "label", "label_0")
SCORE_COLUMNS = ("logits", "probs", "probabilities", "scores")
TARGET_COLUMNS = ("label", "target", "original_label", "class", "true_label")
LABELS_COLUMNS = ("labels",)
PROBLEMATIC_COLUMNS = ("problematic", "is_problematic")
_QUOTED = re.compile(r"""'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)\"""")
_INT = re.compile(r"[+-]?\d+")


@dataclass(frozen=True)
class Columns:
    """Column names of a table; None: found by their usual names (see the module docstring).
    ``pred`` holds class ids or names, ``scores`` a score list a row or the prefix of numbered
    score columns; also the array names of an ``.npz`` and the keys of a torch dict."""

    image: str | None = None
    pred: str | None = None
    scores: str | None = None
    target: str | None = None
    labels: str | None = None

    @classmethod
    def parse(cls, text: str) -> Columns:
        """``"image=file,pred=top1"`` (the ``--columns`` option); unknown keys are an error."""
        known = [f.name for f in fields(cls)]
        given: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            key, sep, value = item.partition("=")
            key, value = key.strip(), value.strip()
            if not sep or key not in known or not value:
                raise InvalidInput(f"--columns: {item!r} is not KEY=COLUMN with KEY one of {', '.join(known)}")
            given[key] = value
        return cls(**given)


@dataclass(frozen=True)
class Table:
    """Columns by name in file order, each a sequence of one value a row (a 2-D array: a list a
    row). ``text``: the values are CSV cells still to parse (``542``, ``[542 433]``, ``['a' 'b']``)."""

    columns: Mapping[str, Sequence[Any]]
    rows: int
    text: bool = False
    image_names: Sequence[str] | None = None  # names from outside the columns (timm's JSON keys)


def table_predictions(path: str, fmt: str, table: Table, columns: Columns, vocabulary: Vocabulary) -> Predictions:
    """The predictions of a table: the image column and the top-1 or scores of each row."""
    images, image_column = _images(path, table, columns)
    key, scores = _prediction(path, table, columns, vocabulary, image_column, images)
    return Predictions(path, fmt, key, scores, images)


def table_labels(path: str, table: Table, columns: Columns, vocabulary: Vocabulary) -> LabeledImages:
    """The label set of a table: image, target, optional label set and problematic flag."""
    images, _ = _images(path, table, columns)
    target_column = _pick(path, table, columns.target, TARGET_COLUMNS, "target",
                          "the target class (id or name)")
    target = class_ids(path, _firsts(path, table, target_column), vocabulary, _row(images), target_column)
    labels_column = columns.labels or next((c for c in LABELS_COLUMNS if c in table.columns), None)
    if labels_column is None:
        labels = [[int(t)] for t in target.tolist()]
    else:
        if labels_column not in table.columns:
            _no_column(path, table, labels_column)
        lists = [_list(path, value, table.text, labels_column, row)
                 for row, value in enumerate(table.columns[labels_column])]
        flat = class_ids(path, [v for values in lists for v in values], vocabulary,
                         lambda _: "label sets", labels_column)
        ends = np.cumsum([len(values) for values in lists]).tolist()
        labels = [flat[a:b].tolist() for a, b in zip([0, *ends[:-1]], ends, strict=True)]
    problematic_column = next((c for c in PROBLEMATIC_COLUMNS if c in table.columns), None)
    problematic = None if problematic_column is None else [
        _flag(path, value, problematic_column, row) for row, value in enumerate(table.columns[problematic_column])]
    return LabeledImages.from_lists(images=images, target=target.tolist(), labels=labels, problematic=problematic,
                                    source=path)


def _no_column(path: PathLike, table: Table, name: str) -> NoReturn:
    raise InputError(path, f"no column {name!r} (columns: {_header(table)})")


def _header(table: Table) -> str:
    text = ", ".join(table.columns)
    return text if len(text) <= 160 else text[:157] + "..."


def _pick(path: PathLike, table: Table, given: str | None, usual: Sequence[str], role: str, what: str) -> str:
    if given is not None:
        if given not in table.columns:
            _no_column(path, table, given)
        return given
    found = next((c for c in usual if c in table.columns), None)
    if found is None:
        raise InputError(path, f"no {role} column: expected {what} in one of {', '.join(usual)} "
                         f"(or --columns {role}=NAME); columns: {_header(table)}")
    return found


def _row(images: Sequence[str]) -> Any:
    return lambda row: f"row {row + 1} ({images[row]})"


def _images(path: PathLike, table: Table, columns: Columns) -> tuple[list[str], str | None]:
    if table.image_names is not None and columns.image is None:
        values: Sequence[Any] = table.image_names
        column = None
    else:
        column = _pick(path, table, columns.image, IMAGE_COLUMNS, "image", "the image file names")
        values = table.columns[column]
    images: list[str] = []
    seen: dict[str, int] = {}
    for row, value in enumerate(values):
        if not isinstance(value, str) or not value:
            raise InputError(path, f"must be a non-empty file name, got {str(value)[:40]!r}", where=f"row {row + 1}",
                             field=column or "image")
        if value in seen:
            raise InputError(path, f"duplicate image {value!r} (first at row {seen[value] + 1})",
                             where=f"row {row + 1}", field=column or "image")
        seen[value] = row
        images.append(value)
    return images, column


def _prediction(path: str, table: Table, columns: Columns, vocabulary: Vocabulary, image_column: str | None,
                images: list[str]) -> tuple[str, np.ndarray]:
    """(column, int[N] class ids or float[N, C] scores) of a table's predictions."""
    names = table.columns
    if columns.pred is not None:
        if columns.pred not in names:
            _no_column(path, table, columns.pred)
        return columns.pred, _ids(path, table, columns.pred, vocabulary, images)
    if columns.scores is not None:
        if columns.scores not in names and f"{columns.scores}_0" not in names:
            _no_column(path, table, columns.scores)
        return columns.scores, _scores(path, table, columns.scores)
    for name in PRED_COLUMNS:
        if name in names:
            return name, _ids(path, table, name, vocabulary, images)
    if image_column in ("filename", None):  # timm's inference script: its top-1 is the first of its top-k
        for name in TIMM_COLUMNS:
            if name in names:
                return name, _ids(path, table, name, vocabulary, images)
    for name in SCORE_COLUMNS:
        if name in names or f"{name}_0" in names:
            return name, _scores(path, table, name)
    others = [c for c in names if c != image_column]
    if others and len(others) == len(vocabulary):
        return "scores", _stack(path, table, others)
    raise InputError(path, f"no prediction column: expected class ids or names in one of {', '.join(PRED_COLUMNS)} "
                     f"or timm's {', '.join(TIMM_COLUMNS)}, or scores in {', '.join(SCORE_COLUMNS)} (a list a row, "
                     f"or numbered columns NAME_0 ..), or one score column per class (or --columns pred=NAME or "
                     f"scores=NAME); columns: {_header(table)}")


def _ids(path: str, table: Table, column: str, vocabulary: Vocabulary, images: list[str]) -> np.ndarray:
    return class_ids(path, _firsts(path, table, column), vocabulary, _row(images), column)


def _firsts(path: PathLike, table: Table, column: str) -> list[Any]:
    """The value of each row of a column; of a list, its first entry (the top-1 of a top-k)."""
    values = table.columns[column]
    if isinstance(values, np.ndarray):
        return (values[:, 0] if values.ndim == 2 else values).tolist()
    return [_first(path, value, table.text, column, row) for row, value in enumerate(values)]


def _first(path: PathLike, value: Any, text: bool, column: str, row: int) -> Any:
    if text:
        return _cell(value)
    if isinstance(value, list | tuple | np.ndarray):
        if not len(value):
            raise InputError(path, "empty list", where=f"row {row + 1}", field=column)
        return value[0].item() if isinstance(value[0], np.generic) else value[0]
    return value.item() if isinstance(value, np.generic) else value


def _cell(text: str) -> int | str:
    """A CSV cell of class ids or names: ``542``, ``[542 433 ...]``, ``['drumstick' ...]``, a name."""
    body = text.strip()
    if body.startswith("[") and body.endswith("]"):
        inner = body[1:-1].strip()
        quoted = _QUOTED.match(inner)
        if quoted:
            return quoted.group(1) if quoted.group(1) is not None else quoted.group(2)
        body = inner.replace(",", " ").split(maxsplit=1)[0] if inner else ""
    return int(body) if _INT.fullmatch(body) else body


def _list(path: PathLike, value: Any, text: bool, column: str, row: int) -> list[Any]:
    if not text:
        if not isinstance(value, list | tuple | np.ndarray):
            raise InputError(path, f"must be a list of classes, got {str(value)[:40]!r}", where=f"row {row + 1}",
                             field=column)
        return [v.item() if isinstance(v, np.generic) else v for v in value]
    body = str(value).strip()
    body = body[1:-1] if body.startswith("[") and body.endswith("]") else body
    quoted = [a if a else b for a, b in _QUOTED.findall(body)]
    tokens = quoted or body.replace(",", " ").split()
    return [int(t) if _INT.fullmatch(t) else t for t in tokens]


def _flag(path: PathLike, value: Any, column: str, row: int) -> bool:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", ""):
        return False
    raise InputError(path, f"{text[:40]!r} is not true or false", where=f"row {row + 1}", field=column)


def _scores(path: PathLike, table: Table, name: str) -> np.ndarray:
    """Scores from a list column ``name`` or numbered columns ``name_0``, ``name_1``, .."""
    if name not in table.columns:
        numbered: list[str] = []
        while f"{name}_{len(numbered)}" in table.columns:
            numbered.append(f"{name}_{len(numbered)}")
        return _stack(path, table, numbered)
    values = table.columns[name]
    if isinstance(values, np.ndarray) and values.ndim == 2:
        return _numbers(path, values, name)
    if table.text:
        values = [str(v).strip().removeprefix("[").removesuffix("]").replace(",", " ").split() for v in values]
    widths = {len(v) for v in values}
    if len(widths) > 1:
        raise InputError(path, f"rows hold {min(widths)} to {max(widths)} scores: every row needs one per class",
                         field=name)
    return _numbers(path, list(values), name)


def _stack(path: PathLike, table: Table, names: Sequence[str]) -> np.ndarray:
    columns = [_numbers(path, table.columns[c], c) for c in names]
    return np.column_stack(columns) if columns else np.zeros((table.rows, 0))


def _numbers(path: PathLike, values: Any, column: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64) if not (isinstance(values, np.ndarray)
                                                             and values.dtype.kind in "fiu") else values
    except (ValueError, TypeError) as error:
        raise InputError(path, f"scores must be numbers: {error}", field=column) from None
    return array
