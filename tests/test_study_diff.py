"""`errortaxa diff`: the confusion matrix of two small taxonomies, by hand; the severity taxonomy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from errortaxa.cli import main
from errortaxa.engine import SampleBatch, compile_path, run_cases
from errortaxa.study.diff import diff_taxonomies, format_diff

ROOT = Path(__file__).resolve().parents[1]
TINY_A = """
schema: errortaxa/v1
name: tiny_a
version: "1"
vocabulary: imagenet1k
axes:
  category:
    values: [{id: correct, tags: [mla_correct]}, {id: wrong}]
    rules:
      - {id: ok, when: {pred_in_labels: true}, then: correct}
      - {id: other, when: {always: true}, then: wrong}
"""
TINY_B = """
schema: errortaxa/v1
name: tiny_b
version: "1"
vocabulary: imagenet1k
axes:
  category:
    values: [{id: correct, tags: [mla_correct]}, {id: near}, {id: far}]
    rules:
      - {id: ok, when: {pred_in_labels: true}, then: correct}
      - {id: near, when: {pred_vs_label: {distance: {max: 4}}}, then: near}
      - {id: far, when: {always: true}, then: far}
"""
# golden retriever (207) / Labrador (208) are 2 steps apart; a sports car (817) is far from both
SAMPLES = [
    {"image": "a.JPEG", "target": 207, "labels": [207], "pred": 207},
    {"image": "b.JPEG", "target": 207, "labels": [207], "pred": 208},
    {"image": "c.JPEG", "target": 207, "labels": [207], "pred": 817},
    {"image": "d.JPEG", "target": 1, "labels": [1], "pred": 817},
    {"image": "e.JPEG", "target": 1, "labels": [1, 817], "pred": 817},
]


@pytest.fixture()
def files(tmp_path: Path) -> tuple[Path, Path, Path]:
    a, b, data = tmp_path / "a.yaml", tmp_path / "b.yaml", tmp_path / "in.jsonl"
    a.write_text(TINY_A)
    b.write_text(TINY_B)
    data.write_text("".join(json.dumps(s) + "\n" for s in SAMPLES))
    return a, b, data


def _batch() -> SampleBatch:
    return SampleBatch.from_lists(target=[s["target"] for s in SAMPLES], labels=[s["labels"] for s in SAMPLES],
                                  pred=[s["pred"] for s in SAMPLES], images=[s["image"] for s in SAMPLES])


def test_diff_by_hand(files: tuple[Path, Path, Path]) -> None:
    a, b = compile_path(files[0]), compile_path(files[1])
    result = diff_taxonomies(a, b, _batch(), errors_only=False)
    assert result.values_a == ["correct", "wrong"] and result.values_b == ["correct", "near", "far"]
    assert result.matrix.tolist() == [[2, 0, 0], [0, 1, 2]]
    assert result.same == 2 and result.agreement == pytest.approx(2 / 5)
    cell = result.examples[(1, 2)]
    assert [e["sample"] for e in cell] == ["c.JPEG", "d.JPEG"]
    assert cell[0]["pred_name"] == a.vocabulary.names[817]
    errors = diff_taxonomies(a, b, _batch())  # errors only: the two correct samples are left out
    assert errors.matrix.tolist() == [[0, 0, 0], [0, 1, 2]] and errors.samples == 3
    text = format_diff(errors)
    assert "wrong -> far (2)" in text and "b.JPEG" in text


def test_diff_cli(files: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "diff.json"
    assert main(["diff", str(files[0]), str(files[1]), str(files[2]), "--json", str(out)]) == 0
    assert "tiny_a.category (rows) vs tiny_b.category (columns)" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["matrix"] == [[0, 0, 0], [0, 1, 2]]
    assert {(c["a"], c["b"]): c["count"] for c in data["cells"]} == {("wrong", "near"): 1, ("wrong", "far"): 2}


def test_severity_taxonomy_cases_and_axis() -> None:
    path = ROOT / "rules" / "imagenet" / "vasudevan2022_severity.yaml"
    tax = compile_path(path)
    assert list(tax.axes) == ["category", "severity"]
    assert all(r.passed for r in run_cases(tax))
    result = diff_taxonomies(compile_path(None), tax, _batch(), axis_b="severity", errors_only=False)
    col = {v: j for j, v in enumerate(result.values_b)}
    # every sample the default calls correct has no mistake; the sports cars are major
    assert result.matrix[result.values_a.index("correct"), col["no_mistake"]] == 1
    assert int(np.sum(result.matrix[:, col["major"]])) == 2
