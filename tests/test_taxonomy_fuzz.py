"""Mutated taxonomies (any key of a valid document, its own or one that extends another, replaced by
a value of another shape, or removed) end in TaxonomyError naming a key path, never in another
exception: what ValidateTaxonomy and PutTaxonomy answer INVALID_ARGUMENT with, and the CLI one line.
A longer run against a real server is in the reliability suite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from errortaxa.engine import TaxonomyError, compile_path
from fuzz_taxonomies import BASE, child, mutations
from hypothesis import HealthCheck, given, settings


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(mutations(child("base.yaml")))
def test_a_mutated_taxonomy_is_a_taxonomy_error(tmp_path_factory: pytest.TempPathFactory,
                                                docs: tuple[dict[str, Any], dict[str, Any]]) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    base, child = docs
    (folder / "base.yaml").write_text(yaml.safe_dump(base))
    (folder / "child.yaml").write_text(yaml.safe_dump(child))
    for name in ("base.yaml", "child.yaml"):
        try:
            compile_path(folder / name)
        except TaxonomyError as exc:
            assert exc.problems and all(p.message for p in exc.problems)


def test_the_unmutated_documents_compile(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(BASE))
    (tmp_path / "child.yaml").write_text(yaml.safe_dump(child("base.yaml")))
    assert compile_path(tmp_path / "base.yaml").axes["category"].rule_ids == ["right", "mapped", "near", "wrong"]
    assert compile_path(tmp_path / "child.yaml").axes["category"].rule_ids == ["mapped", "odd", "wrong", "near"]


@pytest.mark.parametrize("extends", [False, True])
def test_an_axis_of_remove_rules_only_is_a_taxonomy_error(tmp_path: Path, extends: bool) -> None:
    """Without ``extends``, or removing every rule of the parent: a located problem, not an IndexError."""
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(BASE))
    removing = [{"id": rule["id"], "remove": True} for rule in BASE["axes"]["category"]["rules"]]
    doc = {**child("base.yaml"), "axes": {"category": {"rules": removing}}}
    if not extends:
        del doc["extends"], doc["superclasses"]
    (tmp_path / "child.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(TaxonomyError) as caught:
        compile_path(tmp_path / "child.yaml")
    none_left = ("the axis has no rules left", "an axis needs at least one rule")
    assert [p.key_path for p in caught.value.problems if p.message in none_left] == [("axes", "category", "rules")]
