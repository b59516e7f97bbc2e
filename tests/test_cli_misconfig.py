"""Misconfigurations: every subcommand, given a misspelled option value, fails with one line (or
warns) and never with a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from errortaxa.cli import main

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = str(ROOT / "rules" / "imagenet" / "peychev2023.yaml")
RECORDS = [{"image": f"ILSVRC2012_val_{i:08d}.JPEG", "target": 207, "labels": [207], "pred": 207 + i % 2}
           for i in range(1, 5)]


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, str]:
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    (tmp_path / "empty.jsonl").write_text("")
    models = tmp_path / "models"
    models.mkdir()
    (models / "m.jsonl").write_text(inp.read_text())
    pd.DataFrame({"name": ["m", "nomodel"], "family": ["cnn", "vit"]}).to_csv(tmp_path / "meta.csv", index=False)
    (tmp_path / "list.txt").write_text("ILSVRC2012_val_09999999.JPEG\n")
    ext = tmp_path / "ext.json"
    ext.write_text(json.dumps({RECORDS[1]["image"]: {"top_prediction": 208, "failure category": "Fine-grained"}}))
    warn = tmp_path / "warn.yaml"
    warn.write_text("extends: imagenet/peychev2023.yaml\nname: warn\nsuperclasses:\n  lonely:\n"
                    "    description: one class\n    members: {classes: [1]}\n")
    return {k: str(v) for k, v in {"in": inp, "empty": tmp_path / "empty.jsonl", "models": models,
                                    "meta": tmp_path / "meta.csv", "list": tmp_path / "list.txt", "ext": ext,
                                    "out": tmp_path / "out", "warn": warn}.items()}


CASES = [
    ("classify", ["classify", "{in}", "--taxonomy", "peychev2O23"]),
    ("classify empty", ["classify", "{empty}"]),
    ("classify oov config", ["classify", "{in}", "--oov-config", "oov.ymal"]),
    ("rules validate", ["rules", "validate", "peychev2O23.yaml"]),
    ("rules test", ["rules", "test", "peychev2O23.yaml"]),
    ("rules explain", ["rules", "explain", DEFAULT, "--record", '{"target": 1, "labls": [1], "pred": 2}']),
    ("rules show superclass", ["rules", "show", DEFAULT, "--superclass", "terriers"]),
    ("rules show class", ["rules", "show", DEFAULT, "--class", "dgo.n.01"]),
    ("rules diff", ["rules", "diff", DEFAULT, DEFAULT, "{in}", "--axis-b", "severty"]),
    ("diff", ["diff", DEFAULT, DEFAULT, "{in}", "--axis-a", "categroy"]),
    ("diff examples", ["diff", DEFAULT, DEFAULT, "{in}", "--examples", "-1"]),
    ("oov proposals", ["oov", "proposals", "--pred", "1000", "--target", "1"]),
    ("oov index", ["oov", "index", "imgaes", "--out", "{out}"]),
    ("oov embed", ["oov", "embed", "imgaes", "--oov-config", "oov.yml"]),
    ("study color", ["study", "{models}", "--out", "{out}", "--metadata", "{meta}", "--color-by", "famly"]),
    ("study top-k", ["study", "{models}", "--out", "{out}", "--top-k", "-1"]),
    ("study image list", ["study", "{models}", "--out", "{out}", "--image-list", "{list}"]),
    ("study dataset", ["study", "{models}", "--out", "{out}", "--dataset", "imagenet-b"]),
    ("study compare axis", ["study", "{models}", "--out", "{out}", "--compare-taxonomy", DEFAULT,
                            "--compare-axis", "categroy"]),
    ("study taxonomy", ["study", "{models}", "--out", "{out}", "--taxonomy", "peychev2O23"]),
    ("mcnemar", ["mcnemar", "{in}", "{in}", "--taxonomy", "peychev2O23"]),
    ("agreement", ["agreement", "{ext}", "--labels", "labls.csv"]),
]


@pytest.mark.parametrize(("name", "argv"), CASES, ids=[c[0] for c in CASES])
def test_misspelled_option_value_fails_in_one_line(name: str, argv: list[str], files: dict[str, str],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    args = [files[a[1:-1]] if a.startswith("{") and a[1:-1] in files else a for a in argv]
    try:
        code = main(args)
    except SystemExit as exit_:  # argparse: usage and one error line
        code = int(exit_.code or 0)
    err = capsys.readouterr().err
    assert code != 0, (name, err)
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, name
    if lines[0].startswith("usage:"):
        assert "error:" in lines[-1]
    else:
        assert len(lines) == 1 or all(":" in line for line in lines), (name, err)


def test_warnings_are_printed(files: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["classify", files["in"], "--taxonomy", files["warn"], "--output", files["out"] + ".jsonl"]) == 0
    assert "groups nothing" in capsys.readouterr().err  # the validator's warning is not dropped
    assert main(["study", files["models"], "--out", files["out"], "--metadata", files["meta"], "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "1 row(s) match no prediction file (first: 'nomodel')" in err
    assert np.isfinite(pd.read_csv(Path(files["out"]) / "models.csv")["all.mla"]).all()
