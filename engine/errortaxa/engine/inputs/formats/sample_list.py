"""Sample lists: image file names, one a line.

Blank lines are skipped; ``#`` starts a comment, on a line of its own or after the name (image file
names hold no ``#``); a line holds one name (no spaces). The taxonomy compiler (``sample_list``
resources) and every other reader of sample lists use this parser.
"""

from __future__ import annotations

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


register(Format("text", SAMPLE_LIST, (".txt",), "image file names, one a line; # comments",
                lambda head: b"\0" not in head, read_text_list))
