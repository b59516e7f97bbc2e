"""The one registry of predicates: every sample predicate and every class-pair predicate, by its
YAML key, in the order the language lists them. The schema's unions, the loader's key locations,
the compiler's dispatch and the shadowing check are derived from here.

To add a predicate: write a module in this package with its schema model, its compile function
and (for a sample predicate) its Node, ending in ``ENTRIES``; list the module below.
"""

from __future__ import annotations

import json
from typing import Any

from errortaxa.engine.predicates import (
    cooccurrence,
    feature,
    flags,
    logic,
    mapping,
    pair_logic,
    pair_tests,
    relations,
    sample_list,
    superclass,
)
from errortaxa.engine.predicates.base import PairEntry, SampleEntry

SAMPLE: dict[str, SampleEntry[Any]] = {
    e.key: e for module in (flags, sample_list, pair_tests, feature, logic) for e in module.ENTRIES
}
PAIR: dict[str, PairEntry[Any]] = {
    e.key: e for module in (superclass, mapping, relations, cooccurrence, pair_logic) for e in module.ENTRIES
}


def conjuncts(when: dict[str, Any]) -> list[dict[str, Any]]:
    """The predicates that must all hold for a written sample predicate to hold (``always``: none)."""
    [(key, value)] = when.items()
    entry = SAMPLE[key]
    return entry.conjuncts(value, conjuncts) if entry.conjuncts is not None else [when]


def conjunct_set(when: dict[str, Any]) -> frozenset[str]:
    """:func:`conjuncts` as canonical JSON texts (a rule whose set contains an earlier rule's is
    shadowed by it)."""
    return frozenset(json.dumps(p, sort_keys=True) for p in conjuncts(when))
