"""Sample lists: image file names, one a line; or JSONL records with an ``image`` field.

Text: blank lines are skipped; ``#`` starts a comment, on a line of its own or after the name (image
file names hold no ``#``); a line holds one name (no spaces). JSONL (``.jsonl``, e.g. the notes
``errortaxa explore --notes`` writes): one JSON object a line, its ``image`` the name, other fields
ignored. The taxonomy compiler (``sample_list`` resources) and every other reader of sample lists
use these parsers.
"""

from __future__ import annotations

import orjson
from errortaxa.engine.inputs.errors import InputError
from errortaxa.engine.inputs.registry import SAMPLE_LIST, Format, ReadOptions, register
from errortaxa.engine.inputs.text import read_text


def read_text_list(path: str, options: ReadOptions | None = None) -> frozenset[str]:
    """The names of a text sample list."""
    names: set[str] = set()
    for number, raw in enumerate(read_text(path).split("\n"), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) != 1:
            raise InputError(path, f"expected one image file name, got {len(fields)} fields", record=number)
        names.add(fields[0])
    return frozenset(names)


def read_jsonl_list(path: str, options: ReadOptions | None = None) -> frozenset[str]:
    """The ``image`` of every record of a JSONL sample list."""
    names: set[str] = set()
    for number, raw in enumerate(read_text(path).split("\n"), 1):
        if not raw.strip():
            continue
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            raise InputError(path, f"not JSON: {error}", record=number) from None
        image = record.get("image") if isinstance(record, dict) else None
        if not isinstance(image, str) or not image:
            raise InputError(path, "expected an object with an image name ('image')", record=number)
        names.add(image)
    return frozenset(names)


register(Format("jsonl", SAMPLE_LIST, (".jsonl",), "JSON objects with an image name ('image'), one a line",
                lambda head: head.lstrip()[:1] == b"{", read_jsonl_list))
register(Format("text", SAMPLE_LIST, (".txt",), "image file names, one a line; # comments",
                lambda head: b"\0" not in head, read_text_list))
