"""`errortaxa study --compare-taxonomy`: the taxonomy diff on all models' errors, in the terminal and the
report; the report's cells equal diff.py's result on every model's predictions computed directly."""

from __future__ import annotations

import json
import sys
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from errortaxa.cli import main
from errortaxa.engine import SampleBatch, compile_path, default_compiled, evaluate
from errortaxa.study.diff import diff_taxonomies

pytest.importorskip("matplotlib")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from synthetic import make_images, make_predictions

# the default without the overlapping-classes and spurious-correlation rules: those predictions move
COARSER = """
schema: errortaxa/v1
name: coarser
version: "1"
extends: imagenet/peychev2023
axes:
  category:
    rules:
      - {id: overlapping_classes, remove: true}
      - {id: spurious_correlation, remove: true}
"""
MODELS = 5


class _DiffTables(HTMLParser):
    """The report's comparison: matrix cells and example rows, by (A value, B value)."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[tuple[str, str], str] = {}
        self.examples: dict[tuple[str, str], list[str]] = {}
        self._into: list[str] | None = None
        self._cell: tuple[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        key = (str(a.get("data-a")), str(a.get("data-b")))
        if tag == "td" and a.get("class") == "diff-cell":
            self.cells[key] = ""
            self._cell = key
        elif tag == "tr" and a.get("class") == "diff-example":
            self._into = self.examples.setdefault(key, [])

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._into = None
        if tag == "td":
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self.cells[self._cell] += data
        if self._into is not None:
            self._into.append(data)


@pytest.fixture(scope="module")
def study_inputs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tax = default_compiled()
    images = make_images(tax, 700, seed=21)
    preds = make_predictions(tax, images, MODELS, seed=22).astype(np.int32)
    root = tmp_path_factory.mktemp("compare")
    models = root / "models"
    models.mkdir()
    for m in range(MODELS):
        full = np.zeros(50_000, np.int16)
        full[: len(images)] = preds[m]
        np.savez(models / f"model{m}.npz", top1=full)
    rows = ["id,category,original_label,proposed_labels,manually_validated,unclear_multi_labels,"
            "wrong_multi_labels,is_problematic"]
    for i in range(len(images)):
        if images.labels_of(i):  # an image without labels is not in the file
            labels = ", ".join(str(x) for x in images.labels_of(i))
            rows.append(f'{images.images[i]},A,{images.target[i]},"{labels}",True,,,{images.problematic[i]}')
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    (root / "coarser.yaml").write_text(COARSER)
    return {"tax": tax, "images": images, "preds": preds, "root": root}


def _pooled(images: SampleBatch, preds: np.ndarray) -> SampleBatch:
    """Every model's prediction on every headline image (labelled, not problematic) as one sample."""
    head = np.flatnonzero(~images.problematic & (np.diff(images.label_offsets) > 0))
    return images.take(np.tile(head, len(preds)), np.concatenate([p[head] for p in preds]))


def test_study_report_holds_the_taxonomy_diff(study_inputs: dict, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    root, images, preds = study_inputs["root"], study_inputs["images"], study_inputs["preds"]
    out = tmp_path / "out"
    assert main(["study", str(root / "models"), "--labels", str(root / "labels.csv"), "--out", str(out),
                 "--report", "--no-progress", "--compare-taxonomy", str(root / "coarser.yaml")]) == 0
    printed = capsys.readouterr().out
    assert f"taxonomy comparison, all {MODELS} models pooled:" in printed
    assert "peychev2023.category (rows) vs coarser.category (columns)" in printed

    direct = diff_taxonomies(study_inputs["tax"], compile_path(root / "coarser.yaml"), _pooled(images, preds))
    expected = {(a, b): int(direct.matrix[i, j]) for i, a in enumerate(direct.values_a)
                for j, b in enumerate(direct.values_b)}
    parser = _DiffTables()
    parser.feed((out / "report.html").read_text(encoding="utf-8"))
    # the matrix without its all-zero rows and columns, so that the changed cells are on screen
    used_a = {a for (a, _), v in expected.items() if v}
    used_b = {b for (_, b), v in expected.items() if v}
    shown = {k: v for k, v in expected.items() if k[0] in used_a and k[1] in used_b}
    assert {k: int(v) for k, v in parser.cells.items()} == shown
    assert len(shown) < len(expected)
    # the removed rules' predictions moved: correct-by-overlap became an error, spurious ones too
    moved = {k: v for k, v in expected.items() if k[0] != k[1] and v}
    assert any(a == "overlapping_classes" for a, _ in moved) and any(a == "spurious_correlation" for a, _ in moved)
    assert ("correct", "correct") not in expected or expected[("correct", "correct")] == 0  # both correct: left out

    # every non-empty cell lists its most common errors with class names and how many models made them
    saved = json.loads((out / "taxonomy_diff.json").read_text())
    assert saved["matrix"] == direct.matrix.tolist() and saved["samples"] == direct.samples
    names = study_inputs["tax"].vocabulary.names
    index = {name: i for i, name in enumerate(images.images or [])}
    nonempty = {k for k, v in expected.items() if v}
    assert set(parser.examples) == nonempty
    for cell in saved["cells"]:
        text = "".join(parser.examples[(cell["a"], cell["b"])])
        assert str(cell["count"]) in text
        for e in cell["examples"]:
            assert f"{e['target']} {names[e['target']]}" in text and f"{e['pred']} {names[e['pred']]}" in text
            row = index[e["sample"]]
            assert e["count"] == int(np.sum(preds[:, row] == e["pred"]))  # models that made this error
    # the examples are the cell's most common errors: no (image, prediction) of the cell is made by more models
    pooled = _pooled(images, preds)
    a = evaluate(study_inputs["tax"], pooled).primary.value_names()
    b = evaluate(compile_path(root / "coarser.yaml"), pooled).primary.value_names()
    for cell in saved["cells"]:
        keys = Counter((pooled.images[i], int(pooled.pred[i])) for i in range(len(pooled))  # type: ignore[index]
                       if (a[i], b[i]) == (cell["a"], cell["b"]))
        assert cell["examples"][0]["count"] == max(keys.values())
        assert [e["count"] for e in cell["examples"]] == sorted((e["count"] for e in cell["examples"]), reverse=True)


def test_pooled_counts_sparse_and_dense_agree(study_inputs: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """Distinct predictions are counted densely for small image sets, by merging sorted parts otherwise."""
    from errortaxa.study import tabulate
    from errortaxa.study.models import ImageSet, ModelFile
    from errortaxa.study.study import run_study

    tax, images, preds = study_inputs["tax"], study_inputs["images"], study_inputs["preds"]
    other = compile_path(study_inputs["root"] / "coarser.yaml")
    models = [ModelFile(f"m{m}", "") for m in range(MODELS)]

    def run() -> dict:
        result = run_study(tax, ImageSet(images), models, compare=other, progress=False,
                                        predictions=lambda m: preds[int(m.name[1:])])
        assert result.diff is not None
        return result.diff.to_dict()

    dense = run()
    monkeypatch.setattr(tabulate, "_DENSE_PAIRS", 0)
    assert run() == dense
    assert dense["matrix"] == diff_taxonomies(tax, other, _pooled(images, preds)).matrix.tolist()

