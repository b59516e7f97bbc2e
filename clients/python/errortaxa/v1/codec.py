"""The wire codec that the ErrorTaxa server and client share (written by hand, not generated).

Packed integer columns, float / int matrices and the rich error status (an ErrorDetail inside a
google.rpc.Status-compatible ``errortaxa.v1.Status`` in the ``grpc-status-details-bin`` trailer).
Depends on numpy and protobuf only, so the server can use it without the rest of the client.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from errortaxa.v1 import samples_pb2, service_pb2

#: Trailing metadata key of the rich error status (the key google.rpc.Status uses).
STATUS_DETAILS_KEY = "grpc-status-details-bin"


def varint(value: int) -> bytes:
    """A non-negative integer as a protobuf varint."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def extend_ints(msg: Any, field: str, values: np.ndarray | Sequence[int]) -> None:
    """``msg.<field>.extend(values)`` for a packed integer or bool field. When every value lies in
    0..127 (decision codes, flags, small bit sets) each is one byte on the wire, so numpy builds the
    packed bytes and the message merges them: several times faster than a Python list."""
    array = np.asarray(values)
    if array.shape[0] and array.dtype.kind in "iub" and array.min() >= 0 and array.max() < 0x80:
        payload = array.astype(np.uint8).tobytes()
        number = msg.DESCRIPTOR.fields_by_name[field].number
        msg.MergeFromString(varint(number << 3 | 2) + varint(len(payload)) + payload)
    else:
        getattr(msg, field).extend(array.tolist())


def fill_matrix(msg: samples_pb2.FloatMatrix | samples_pb2.IntMatrix, array: np.ndarray) -> None:
    """Write a 2-d array into a FloatMatrix or IntMatrix message (ValueError for another shape)."""
    if array.ndim != 2:
        raise ValueError(f"expected a 2-d matrix, got shape {array.shape}")
    msg.rows, msg.cols = array.shape
    msg.values.extend(array.ravel().tolist())


def matrix_array(msg: samples_pb2.FloatMatrix | samples_pb2.IntMatrix,
                 dtype: type[np.floating[Any]] | type[np.integer[Any]] = np.float32) -> np.ndarray:
    """A FloatMatrix / IntMatrix as a [rows, cols] array of ``dtype`` (ValueError on a size
    mismatch)."""
    values: np.ndarray = np.array(msg.values, dtype=dtype)
    if msg.rows < 0 or msg.cols < 0 or values.shape[0] != msg.rows * msg.cols:
        raise ValueError(f"has {values.shape[0]} values for {msg.rows} x {msg.cols}")
    return values.reshape(msg.rows, msg.cols)


#: InputColumn's value list of each dtype
COLUMN_FIELDS = {"float32": "float32_values", "int32": "int32_values", "bytes": "bytes_values",
                 "string": "string_values"}


def column_dtype(values: Any) -> str:
    """The InputColumn dtype of a column given as an array or a list: float32 for floats, int32 for
    integers and bools, bytes, string (ValueError for anything else)."""
    if isinstance(values, np.ndarray):
        if values.dtype.kind == "f":
            return "float32"
        if values.dtype.kind in "iub":
            return "int32"
        if values.dtype.kind in "US":
            return "string" if values.dtype.kind == "U" else "bytes"
        raise ValueError(f"a column of dtype {values.dtype} is none of float32, int32, bytes, string")
    items = list(values)
    if items and all(isinstance(v, bytes) for v in items):
        return "bytes"
    if items and all(isinstance(v, str) for v in items):
        return "string"
    return column_dtype(np.asarray(items))


def fill_column(msg: samples_pb2.InputColumn, values: Any, dtype: str | None = None) -> None:
    """Write a column (an [N] or [N, W] array, or a list of N bytes / str) into an InputColumn: the
    value list of its dtype (``dtype``, else :func:`column_dtype`), ``cols`` W for rows."""
    dtype = dtype or column_dtype(values)
    target = getattr(msg, COLUMN_FIELDS[dtype])
    if dtype in ("bytes", "string"):
        target.extend(values.tolist() if isinstance(values, np.ndarray) else values)
        return
    array = np.asarray(values, dtype=np.float32 if dtype == "float32" else np.int32)
    if array.ndim not in (1, 2):
        raise ValueError(f"a column is [samples] or [samples, width], got shape {array.shape}")
    msg.cols = array.shape[1] if array.ndim == 2 else 0
    target.extend(array.ravel().tolist())


def encode_status(code: int, message: str, detail: service_pb2.ErrorDetail) -> bytes:
    """Numeric status ``code``, message and detail as a serialized google.rpc.Status-compatible
    errortaxa.v1.Status (the value of the STATUS_DETAILS_KEY trailer)."""
    status = service_pb2.Status(code=code, message=message)
    status.details.add().Pack(detail)
    return status.SerializeToString()


def decode_detail(blob: bytes) -> service_pb2.ErrorDetail | None:
    """The ErrorDetail packed in a serialized errortaxa.v1.Status; None when there is none or the
    bytes are not such a status."""
    try:
        status = service_pb2.Status.FromString(blob)
    except Exception:  # not ours: the caller keeps the code and message
        return None
    for any_msg in status.details:
        detail = service_pb2.ErrorDetail()
        if any_msg.Unpack(detail):
            return detail
    return None
