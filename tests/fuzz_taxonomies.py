"""Mutated taxonomy documents for the fuzz tests: a small valid document (BASE) and one that extends
another (child), with any key replaced by a value of another shape, or removed."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

BASE = {
    "schema": "errortaxa/v1", "name": "base", "version": "1",
    "superclasses": {"terrier": {"members": {"ancestor": "terrier.n.01"}}},
    "resources": {"pairs": {"kind": "class_mapping", "source": "a test", "pairs": [[190, 189]]}},
    "axes": {"category": {
        "values": [{"id": "right", "tags": ["mla_correct"]}, {"id": "near"}, {"id": "wrong"}],
        "rules": [
            {"id": "right", "when": {"pred_in_labels": True}, "then": "right"},
            {"id": "mapped", "when": {"pred_vs_target": {"in_mapping": "pairs"}}, "then": "right"},
            {"id": "near", "when": {"any": [{"pred_vs_label": {"same_superclass": True}},
                                            {"not": {"labels_empty": True}}]}, "then": "near"},
            {"id": "wrong", "when": {"always": True}, "then": "wrong"},
        ]}},
    "cases": [{"sample": {"target": 189, "labels": [189], "pred": 190}, "expect": {"category": "near"}}],
}


def child(extends: str, removed: str = "right", anchor: str = "near", last: str = "wrong") -> dict[str, Any]:
    """A document that extends ``extends`` (BASE written as a file, or a built-in name with the rule
    ids given): a value and a rule added before ``anchor``, ``removed`` taken out, ``anchor`` moved
    after ``last``, the superclass terrier dropped."""
    return {
        "schema": "errortaxa/v1", "name": "child", "version": "1", "extends": extends,
        "superclasses": {"terrier": None},
        "axes": {"category": {
            "values": [{"id": "odd"}],
            "rules": [{"id": "odd", "before": anchor, "when": {"pred_is_target": False}, "then": "odd"},
                      {"id": removed, "remove": True},
                      {"id": anchor, "after": last, "when": {"always": True}, "then": "odd"}]}},
    }


# values of every shape a YAML document can hold
ODD = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 2000), st.sampled_from(["", "x", "near", "terrier.n.01", "n02084071"]),
    st.lists(st.one_of(st.none(), st.integers(0, 5), st.sampled_from(["near", "x"])), max_size=3),
    st.dictionaries(st.sampled_from(["id", "when", "then", "x", "before", "remove"]),
                    st.one_of(st.none(), st.integers(0, 3), st.just("near"), st.just(True)), max_size=3),
    st.just([{"id": "right", "remove": True}]),  # rules that only remove: none left
)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += paths(value, (*prefix, i))
    return out


def mutate(doc: dict[str, Any], path: tuple[Any, ...], value: Any, remove: bool) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    parent = out
    for key in path[:-1]:
        parent = parent[key]
    if remove:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return out


@st.composite
def mutations(draw: st.DrawFn, extension: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(BASE, ``extension``): one of them mutated once or twice."""
    docs = {"base": BASE, "child": extension}
    which = draw(st.sampled_from(["base", "child"]))
    for _ in range(draw(st.integers(1, 2))):
        path = draw(st.sampled_from(paths(docs[which])))
        docs[which] = mutate(docs[which], path, draw(ODD), draw(st.booleans()))
    return docs["base"], docs["child"]


