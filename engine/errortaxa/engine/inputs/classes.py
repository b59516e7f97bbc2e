"""Predicted classes given as ids or names: names resolve through the vocabulary.

A name is a class's whole devkit entry (``"bathing cap, swimming cap"``, as timm writes it), its
first name (``"bathing cap"``), its WordNet id (``"n02807133"``), or timm's detailed label
(``"crane: large long-necked wading bird ..."``, the part before ``": "``). The whole entry is
tried first; a name that names several classes (``"crane"`` is 134 and 517) is an error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, NoReturn

import numpy as np
from errortaxa.engine.inputs.errors import InputError
from errortaxa.engine.inputs.text import PathLike, int_text, range_text
from errortaxa.engine.knowledge.vocabulary import Vocabulary

#: Where a value is, for error messages: the 0-based row -> ``"record 3"``-like text.
Where = Callable[[int], str]


@lru_cache(maxsize=4)
def _lookup(vocabulary: Vocabulary) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    """(whole entry -> ids, first name or wnid -> ids) of a vocabulary."""
    whole: dict[str, list[int]] = {}
    short: dict[str, list[int]] = {}
    for i, (wnid, name, full) in enumerate(zip(vocabulary.wnids, vocabulary.names, vocabulary.full_names,
                                               strict=True)):
        whole.setdefault(full, []).append(i)
        for key in dict.fromkeys((name, wnid)):
            short.setdefault(key, []).append(i)
    return whole, short


def class_of_name(name: str, vocabulary: Vocabulary) -> list[int]:
    """The class ids a name can mean (empty: none; several: ambiguous)."""
    whole, short = _lookup(vocabulary)
    text = name.strip()
    for candidate in dict.fromkeys((text, text.split(": ", 1)[0])):
        found = whole.get(candidate) or short.get(candidate)
        if found:
            return found
    return []


def class_ids(path: PathLike, values: Sequence[Any], vocabulary: Vocabulary, where: Where,
              field: str | None = None) -> np.ndarray:
    """Class ids (int64) of values that are ids (int) or names (str); errors name the row and field."""
    def fail(row: int, reason: str) -> NoReturn:
        raise InputError(path, reason, where=where(row), field=field)

    n = len(vocabulary)
    out = np.empty(len(values), dtype=np.int64)
    names: dict[str, int] = {}
    for row, value in enumerate(values):
        if isinstance(value, str):
            if value not in names:
                found = class_of_name(value, vocabulary)
                if not found:
                    fail(row, f"{value[:60]!r} is not a class name or wnid of the vocabulary")
                if len(found) > 1:
                    fail(row, f"class name {value[:60]!r} names several classes "
                              f"({', '.join(map(str, found))}): give class ids")
                names[value] = found[0]
            out[row] = names[value]
        elif isinstance(value, int | np.integer) and not isinstance(value, bool):
            if not 0 <= value < n:
                fail(row, f"class id {int_text(int(value))} is outside {range_text(n)}")
            out[row] = value
        else:
            fail(row, f"must be a class id or a class name, got {type(value).__name__} {str(value)[:40]!r}")
    return out
