"""Agreement with an external categorisation in the imagenet-mistakes JSON format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from errortaxa.cli import main
from errortaxa.engine import compile_path
from errortaxa.engine.inputs import LabeledImages
from errortaxa.study.agreement import agreement, normalise, read_external

ROOT = Path(__file__).resolve().parents[1]


def test_agreement_by_hand(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    names = [f"ILSVRC2012_val_{i:08d}.JPEG" for i in (1, 2, 3, 4)]
    labels = LabeledImages.from_lists(images=names, target=[207, 207, 1, 1], labels=[[207], [207], [1], [1]])
    external = {
        "ILSVRC2012_val_00000001.JPEG": {"top_prediction": 817, "category": "model failure", "severity": "major"},
        "ILSVRC2012_val_00000002": {"top_prediction": "sports_car.n.01", "category": "fine-grained",
                                    "severity": "minor"},
        "ILSVRC2012_val_00000003.JPEG": {"top_prediction": 817, "failure_category": "Model Failure",
                                         "severity": "major"},
        "ILSVRC2012_val_00000099.JPEG": {"top_prediction": 817, "category": "fine-grained"},  # no labels
    }
    path = tmp_path / "x_mistakes.json"
    path.write_text(json.dumps(external))
    tax = compile_path(ROOT / "rules" / "imagenet" / "vasudevan2022_severity.yaml")
    result = agreement(tax, labels, read_external([path]))
    assert (result["compared"], result["skipped"]) == (3, 1)
    cat = result["category"]
    assert cat["external"] == ["fine_grained", "model_failure"] and cat["taxonomy"] == ["model_failure"]
    assert cat["matrix"] == [[1], [2]] and cat["agreement"] == pytest.approx(2 / 3)
    sev = result["severity"]
    assert sev["matrix"] == [[2], [1]] and sev["external"] == ["major", "minor"]
    assert sev["agreement"] == pytest.approx(2 / 3)
    assert normalise("Fine-grained with OOD") == "fine_grained_oov"


def test_agreement_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "multi.csv"
    csv.write_text("id,category,original_label,proposed_labels,manually_validated,unclear_multi_labels,"
                   "wrong_multi_labels,is_problematic\n"
                   'ILSVRC2012_val_00000001.JPEG,x,207,"207",1,"","",0\n')
    ext = tmp_path / "m.json"
    ext.write_text(json.dumps({"ILSVRC2012_val_00000001.JPEG": {"top_prediction": 817, "category": "model failure"}}))
    out = tmp_path / "a.json"
    assert main(["agreement", str(ext), "--labels", str(csv), "--json", str(out)]) == 0
    assert "agreement: 1 (100.0%)" in capsys.readouterr().out
    assert json.loads(out.read_text())["category"]["matrix"] == [[1]]
