"""Parquet tables (pyarrow; the ``parquet`` extra): predictions (image, pred) or (image, logits),
timm's inference parquet in both layouts, a Hugging Face datasets export, and label sets (image,
label); see :mod:`errortaxa.engine.inputs.tables` for how the columns are found. An image column of
structs (a datasets ``Image`` feature) gives its ``path``."""

from __future__ import annotations

from typing import Any

import numpy as np
from errortaxa.engine.errors import MissingExtra
from errortaxa.engine.inputs.errors import InputError
from errortaxa.engine.inputs.labels import LabeledImages
from errortaxa.engine.inputs.predictions import Predictions
from errortaxa.engine.inputs.registry import LABELS, PREDICTIONS, Format, ReadOptions, register
from errortaxa.engine.inputs.tables import Table, table_labels, table_predictions
from errortaxa.engine.inputs.text import binary_source

SUFFIXES = (".parquet", ".pq")


def read_table(path: str) -> Table:
    """The columns of a parquet file (lists of equal length as 2-D arrays)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingExtra(path, "parquet") from None
    try:
        table = pq.read_table(binary_source(path))
    except (pa.ArrowException, OSError) as error:
        raise InputError(path, f"cannot read as parquet: {error}") from None
    columns = {name: _column(pa, table.column(name).combine_chunks()) for name in table.column_names}
    return Table(columns, table.num_rows)


def _column(pa: Any, array: Any) -> Any:
    kind = array.type
    if pa.types.is_struct(kind) and kind.get_field_index("path") >= 0:
        return array.field("path").to_pylist()
    if (pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)) \
            and array.null_count == 0 and len(array) and \
            (pa.types.is_integer(kind.value_type) or pa.types.is_floating(kind.value_type)):
        import pyarrow.compute as pc

        lengths = pc.list_value_length(array).to_numpy(zero_copy_only=False)
        flat = array.flatten()
        if int(lengths.min()) == int(lengths.max()) > 0 and flat.null_count == 0:
            return flat.to_numpy(zero_copy_only=False).reshape(len(array), int(lengths[0]))
    if (pa.types.is_integer(kind) or pa.types.is_floating(kind)) and array.null_count == 0:
        return np.asarray(array.to_numpy(zero_copy_only=False))
    return array.to_pylist()


def _predictions(path: str, options: ReadOptions) -> Predictions:
    return table_predictions(path, "parquet", read_table(path), options.columns, options.classes)


def _labels(path: str, options: ReadOptions) -> LabeledImages:
    return table_labels(path, read_table(path), options.columns, options.classes)


def _sniff(head: bytes) -> bool:
    return head.startswith(b"PAR1")


EXPECTS = "a parquet table: an image column and class ids or names (pred, timm's index / label) or scores (logits)"
register(Format("parquet", PREDICTIONS, SUFFIXES, EXPECTS, _sniff, _predictions))
register(Format("parquet", LABELS, SUFFIXES, "a parquet table: image and target (label) columns, optionally labels",
                _sniff, _labels))
