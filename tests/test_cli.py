"""The ``errortaxa`` command line, run as a user runs it (a subprocess of the installed entry point)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
EXE = shutil.which("errortaxa", path=str(Path(sys.executable).parent)) or "errortaxa"
DEFAULT = str(ROOT / "rules" / "imagenet" / "peychev2023.yaml")


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=300, cwd=cwd)


def write_jsonl(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


RECORDS = [
    {"id": "a", "image": "x1.JPEG", "target": 207, "labels": [207], "pred": 207},
    {"id": "b", "image": "x2.JPEG", "target": 250, "labels": [250], "pred": 248},
    {"id": "c", "image": "x3.JPEG", "target": 207, "labels": [207, 208], "pred": 208},
    {"id": "d", "image": "x4.JPEG", "target": 1, "labels": [], "pred": 1, "problematic": True},
    {"id": "e", "image": "x5.JPEG", "target": 0, "labels": [0], "pred": 999},
]


def test_classify_writes_records_in_input_order_and_a_summary(tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", RECORDS)
    out, summary = tmp_path / "out.jsonl", tmp_path / "summary.json"
    p = run("classify", str(inp), "--output", str(out), "--summary", str(summary))
    assert p.returncode == 0, p.stderr
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert [g["id"] for g in got] == ["a", "b", "c", "d", "e"]
    assert [g["category"] for g in got[:4]] == ["correct", "overlapping_classes", "multi_label",
                                                 "problematic_correct"]
    assert got[4]["evidence"]["not_evaluated"][0]["rule"] == "fine_grained_oov"
    s = json.loads(summary.read_text())
    assert s["taxonomy"]["name"] == "peychev2023" and len(s["taxonomy"]["content_hash"]) == 16
    assert s["engine_version"]
    head = s["headline"]
    assert head["samples"] == 4 and s["problematic"]["samples"] == 1
    assert head["top1_accuracy"] == 0.25 and head["mla_share"] == 0.75
    # MLA as the reference defines it: per target class (207: 2/2, 250: 1/1, 0: 0/1), then the mean
    assert head["mla"] == pytest.approx(2 / 3, abs=1e-6)
    assert head["mla_minor"] == head["mla_explainable"] == head["mla"]  # the error is a model failure
    # ... that fell through the OOV rule (not evaluated: no provider), whose minor error would count
    # under mla_minor and mla_explainable, not under plain MLA
    assert (head["mla_not_evaluated"], head["mla_minor_not_evaluated"], head["mla_explainable_not_evaluated"]) == \
        (0, 1, 1)
    assert head["groups_by_target"]["other_animals"]["mla_minor_not_evaluated"] == 1  # class 0 (tench)
    assert s["problematic"]["mla_minor_not_evaluated"] == 0
    assert head["categories"]["multi_label"] == {"count": 1, "share": 0.25}
    assert set(head["groups_by_any_label"]) == {"organism", "artifact", "other"}
    assert set(head["groups_by_target"]) == {"dogs", "other_animals", "objects"}
    assert head["groups_by_target"]["dogs"]["samples"] == 3
    # by any label: c (labels 207, 208) is an organism; the tench too
    assert head["groups_by_any_label"]["organism"]["samples"] == 4
    assert s["sample_lists"]["non_prototypical"]["images"] == 36
    assert "imagenet-mistakes" in s["sample_lists"]["non_prototypical"]["source"]


def test_classify_to_stdout_equals_the_file(tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", RECORDS)
    out = tmp_path / "out.jsonl"
    assert run("classify", str(inp), "--output", str(out)).returncode == 0
    assert run("classify", str(inp)).stdout == out.read_text()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"image": "a", "target": 1, "labels": [1], "pred": 1000}', "record 2: field 'pred'"),
        ('{"image": "a", "target": 1, "labels": [1]}', "record 2: field 'pred'"),
        ('{"image": "a", "target": 1, "labels": "1", "pred": 1}', "record 2: field 'labels'"),
        ('{"image": "a", "target": true, "labels": [1], "pred": 1}', "record 2: field 'target'"),
        ('{"image": "a", ', "record 2"),
    ],
)
def test_bad_input_is_one_line_with_exit_status_2(tmp_path: Path, line: str, message: str) -> None:
    inp = tmp_path / "in.jsonl"
    inp.write_text(json.dumps(RECORDS[0]) + "\n" + line + "\n")
    out = tmp_path / "out.jsonl"
    p = run("classify", str(inp), "--output", str(out))
    assert p.returncode == 2
    assert message in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr
    assert not out.exists()  # nothing half-written


def test_npz_input_with_labels(tmp_path: Path) -> None:
    labels = tmp_path / "val.txt"
    labels.write_text("".join(f"ILSVRC2012_val_{i + 1:08d}.JPEG {i % 1000}\n" for i in range(50_000)))
    top1 = np.arange(50_000) % 1000
    top1[:10] = 999
    np.savez(tmp_path / "model.npz", top1=top1)
    out = tmp_path / "out.jsonl"
    p = run("classify", str(tmp_path / "model.npz"), "--labels", str(labels), "--output", str(out))
    assert p.returncode == 0, p.stderr
    got = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(got) == 50_000
    assert got[0]["image"] == "ILSVRC2012_val_00000001.JPEG" and got[0]["category"] != "correct"
    assert got[10]["category"] == "correct"
    p = run("classify", str(tmp_path / "model.npz"))
    assert p.returncode == 2 and "--labels" in p.stderr


def test_rules_test_skips_cases_a_missing_optional_list_leaves_undecided(tmp_path: Path) -> None:
    case_list = """
  - name: needs the list
    sample: {target: 0, labels: [0], pred: 999, image: ILSVRC2012_val_00003189.JPEG}
    expect: {category: non_prototypical}
  - name: two terriers
    sample: {target: 189, labels: [189], pred: 190}
    expect: {category: fine_grained}
"""
    body = f"""schema: errortaxa/v1
name: without_list
version: "1"
extends: {DEFAULT}
resources:
  non_prototypical: {{kind: sample_list, file: no_such_list.txt, optional: true, source: test}}
cases:{case_list}"""
    path = tmp_path / "t.yaml"
    path.write_text(body)
    p = run("rules", "test", str(path))
    assert p.returncode == 0, p.stdout
    assert "SKIP needs the list" in p.stdout and "non_prototypical: sample list" in p.stdout
    assert p.stdout.splitlines()[-1] == "1 passed, 0 failed, 1 not checked"
    path.write_text(body + """  - name: wrong on purpose
    sample: {target: 0, labels: [0], pred: 999}
    expect: {category: fine_grained}
""")
    p = run("rules", "test", str(path))
    assert p.returncode == 1 and "FAIL wrong on purpose" in p.stdout
    assert p.stdout.splitlines()[-1] == "1 passed, 1 failed, 1 not checked"


def test_rules_validate_test_show_explain(tmp_path: Path) -> None:
    p = run("rules", "validate", DEFAULT)
    assert p.returncode == 0 and p.stdout.startswith("ok: peychev2023")
    p = run("rules", "test", DEFAULT)
    assert p.returncode == 0, p.stdout
    assert " 0 failed" in p.stdout
    p = run("rules", "show", DEFAULT, "--class", "n02085620")
    assert p.returncode == 0 and "Chihuahua" in p.stdout
    p = run("rules", "explain", DEFAULT, "--record", '{"target": 250, "labels": [250], "pred": 248}')
    assert p.returncode == 0
    assert "overlapping_classes" in p.stdout and "HOLDS" in p.stdout and "NOT REACHED" in p.stdout
    p = run("rules", "explain", DEFAULT, "--record", '{"target": 250, "labels": [250]}')
    assert p.returncode == 2 and "field 'pred'" in p.stderr
    p = run("rules", "show", DEFAULT, "--superclass", "no_such_group")
    assert p.returncode == 2 and "no superclass 'no_such_group'" in p.stderr
    schema = json.loads(run("rules", "schema").stdout)
    assert "properties" in schema


def test_rules_test_reports_a_failing_case(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(f"""\
schema: errortaxa/v1
name: child
extends: {DEFAULT}
cases:
  - name: husky as eskimo dog
    sample: {{target: 250, labels: [250], pred: 248}}
    expect: {{category: overlapping_classes, rule: overlapping_classes}}
  - name: deliberately wrong
    sample: {{target: 250, labels: [250], pred: 250}}
    expect: {{category: multi_label}}
""")
    p = run("rules", "test", str(path))
    assert p.returncode == 1
    assert "PASS husky as eskimo dog" in p.stdout
    assert "FAIL deliberately wrong" in p.stdout and "expected multi_label, got correct" in p.stdout


def test_invalid_taxonomy_lists_problems(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("schema: errortaxa/v1\nname: bad\naxes:\n  category:\n    rules:\n"
                    "      - {id: r, when: {always: true}, then: nowhere}\n")
    p = run("rules", "validate", str(path))
    assert p.returncode == 2
    assert "bad.yaml:6" in p.stderr and "unknown value 'nowhere'" in p.stderr
    assert "Traceback" not in p.stderr


@pytest.mark.skipif(not (SHARED / "data" / "anchor-decisions-dev.jsonl").exists(), reason="../shared absent")
def test_fidelity_on_the_reference_decisions() -> None:
    p = subprocess.run(
        [sys.executable, str(SHARED / "tools" / "check_decisions.py"), "anchor",
         str(SHARED / "data" / "anchor-decisions-dev.jsonl"), EXE, "0.97", "0.99"],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )
    assert p.returncode == 0, p.stdout + p.stderr
