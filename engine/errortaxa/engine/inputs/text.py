"""Helpers the readers share: reading a file as text, describing values, parsing class ids."""

from __future__ import annotations

import io
import os
import stat
import sys
from pathlib import Path
from typing import Any

from errortaxa.engine.inputs.errors import InputError, InputNotFound
from errortaxa.engine.outputs import STDIO

PathLike = str | os.PathLike[str]


_STREAMED: dict[str, bytes] = {}  # standard input and pipes, read once (see read_bytes)


def read_bytes(path: PathLike, limit: int = -1) -> bytes:
    """The file's bytes (the first ``limit`` with a limit); a missing file is InputNotFound.

    ``-`` is standard input. It and other streams (a FIFO, ``<(zcat in.jsonl.gz)``) can be read
    only once, so they are read whole on first use and kept: format detection and the reader then
    see the same bytes."""
    try:
        key = os.fspath(path)
        if key == STDIO or _is_stream(path):
            if key not in _STREAMED:
                _STREAMED[key] = sys.stdin.buffer.read() if key == STDIO else Path(path).read_bytes()
            return _STREAMED[key] if limit < 0 else _STREAMED[key][:limit]
        with open(path, "rb") as stream:
            return stream.read(limit)
    except FileNotFoundError as error:
        raise InputNotFound(path, f"cannot read: {error.strerror or error}") from None
    except OSError as error:
        raise InputError(path, f"cannot read: {error.strerror or error}") from None


def binary_source(path: PathLike) -> str | io.BytesIO:
    """What a binary reader (numpy, torch, pyarrow) opens: the path of a regular file, or the bytes
    of standard input or a stream (see :func:`read_bytes`)."""
    try:
        streamed = os.fspath(path) == STDIO or _is_stream(path)
    except OSError:
        streamed = False  # the reader reports the missing file
    return io.BytesIO(read_bytes(path)) if streamed else os.fspath(path)


def _is_stream(path: PathLike) -> bool:
    mode = os.stat(path).st_mode
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def read_text(path: PathLike) -> str:
    """The file as text (UTF-8, BOM dropped), with I/O and decoding errors as InputError."""
    data = read_bytes(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise InputError(path, f"not UTF-8 text (byte {error.start})", record=line) from None
    return text[1:] if text.startswith("\ufeff") else text


def describe(value: Any) -> str:
    """A short JSON-ish description of a value for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {'true' if value else 'false'}"
    if isinstance(value, int):
        return f"integer {int_text(value)}"
    if isinstance(value, float):
        return f"number {value!r}"
    if isinstance(value, str):
        return f"string {value[:40]!r}" + ("..." if len(value) > 40 else "")
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def int_text(value: int) -> str:
    """An integer, cut to 20 digits and '...' when longer than 24."""
    text = str(value)
    return text if len(text) <= 24 else text[:20] + "..."


def range_text(num_classes: int) -> str:
    return f"0..{num_classes - 1}"


def parse_class(text: str, path: PathLike, record: int, field: str, num_classes: int) -> int:
    """A class id written as decimal digits."""
    token = text.strip()
    if not (token.isascii() and token.isdigit()):
        raise InputError(path, f"{token[:40]!r} is not a class id", record=record, field=field)
    value = int(token)
    if value >= num_classes:
        raise InputError(path, f"class id {value} is outside {range_text(num_classes)}",
                         record=record, field=field)
    return value


def parse_class_list(text: str, path: PathLike, record: int, field: str, num_classes: int) -> list[int]:
    """Class ids written ``1, 2`` or ``[1, 2]`` (empty: none)."""
    body = text.strip()
    if body.startswith("[") and body.endswith("]"):
        body = body[1:-1].strip()
    if not body:
        return []
    return [parse_class(token, path, record, field, num_classes) for token in body.split(",")]


def first_line(head: bytes) -> bytes:
    """The first line of a file's head that is neither blank nor a ``#`` comment (BOM dropped)."""
    for line in head.removeprefix(b"\xef\xbb\xbf").split(b"\n"):
        stripped = line.strip()
        if stripped and not stripped.startswith(b"#"):
            return stripped
    return b""


def zip_first_name(head: bytes) -> bytes | None:
    """The name of a zip archive's first entry, from the file's head (None: not a zip entry)."""
    if not head.startswith(b"PK\x03\x04") or len(head) < 30:
        return None
    size = int.from_bytes(head[26:28], "little")
    return head[30:30 + size]
