"""The registry of input formats: detection by content and suffix, the one-line error for an unknown
file, the one sample-list parser (also the compiler's), ``.npy`` predictions (a format added
through the registry) in classify, study and diff, and ``.txt`` class lists read by content."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from errortaxa.engine import SampleBatch, TaxonomyError, compile_taxonomy, default_compiled, evaluate, load_taxonomy
from errortaxa.engine.inputs import (
    LABELS,
    PREDICTIONS,
    SAMPLE_LIST,
    Format,
    InputError,
    InputNeedsMore,
    LabeledImages,
    detect,
    formats,
    read_labels,
    read_predictions,
    registry,
    suffixes,
    validation_image_name,
)
from errortaxa.engine.inputs.formats.npy import read_npy
from errortaxa.study.diff import read_samples
from errortaxa.study.models import ImageSet, discover_models, read_model
from errortaxa.study.study import run_study

ROOT = Path(__file__).resolve().parents[1]
EXE = shutil.which("errortaxa", path=str(Path(sys.executable).parent)) or "errortaxa"
N = 50_000


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=300)


def val_targets(path: Path) -> Path:
    """A caffe val.txt: every validation image, target i % 1000."""
    path.write_text("".join(f"{validation_image_name(i)} {i % 1000}\n" for i in range(N)))
    return path


def test_every_format_module_registers_its_reader() -> None:
    assert [f.name for f in formats(PREDICTIONS)] == ["class-list", "csv", "jsonl", "npy", "npz", "parquet",
                                                      "timm-json", "timm-json-split", "torch"]
    assert [f.name for f in formats(LABELS)] == ["csv", "jsonl", "multilabel-csv", "parquet", "real-json", "targets"]
    assert [f.name for f in formats(SAMPLE_LIST)] == ["jsonl", "text"]
    assert set(suffixes(PREDICTIONS)) == {".csv", ".tsv", ".jsonl", ".npy", ".npz", ".parquet", ".pq", ".json", ".pt",
                                          ".pth", ".txt"}
    assert [f.name for f in formats(PREDICTIONS) if f.carries_labels] == ["jsonl"]


def test_format_is_detected_from_content_before_suffix(tmp_path: Path) -> None:
    top1 = np.arange(N) % 1000
    np.savez(tmp_path / "model.bin", top1=top1)  # np.savez adds .npz
    np.save(tmp_path / "model.npz", top1)  # an .npy whatever its name (np.save adds .npy)
    (tmp_path / "records.txt").write_text('{"image": "a", "target": 1, "labels": [1], "pred": 2}\n')
    assert detect(tmp_path / "model.bin.npz", PREDICTIONS).name == "npz"
    assert detect(tmp_path / "model.npz.npy", PREDICTIONS).name == "npy"
    (tmp_path / "model.npz.npy").rename(tmp_path / "disguised.npz")
    assert read_predictions(tmp_path / "disguised.npz").format == "npy"
    assert read_predictions(tmp_path / "records.txt").samples is not None
    assert detect(tmp_path / "records.txt", LABELS).name == "jsonl"


def test_unknown_file_names_every_format_tried_in_one_line(tmp_path: Path) -> None:
    odd = tmp_path / "preds.bin"
    odd.write_bytes(b"\x00\x01 not a prediction file")
    with pytest.raises(InputError) as error:
        read_predictions(odd)
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"{odd}: unknown predictions format; tried ")
    for name in ("jsonl (", "npy (", "npz ("):
        assert name in message
    # a known suffix with wrong content goes to that reader, which says exactly what is wrong
    (tmp_path / "bad.jsonl").write_text("not json\n")
    with pytest.raises(InputError, match=r"bad\.jsonl record 1: invalid JSON"):
        read_predictions(tmp_path / "bad.jsonl")


def test_two_formats_that_sniff_alike_are_told_apart_by_suffix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    jsonl = next(f for f in formats(PREDICTIONS) if f.name == "jsonl")
    other = Format("json-split", PREDICTIONS, (".json",), "a JSON object of columns", jsonl.sniff, jsonl.read)
    monkeypatch.setattr(registry, "_FORMATS", [*registry._FORMATS, other])
    path = tmp_path / "p.json"
    path.write_text('{"image": "a", "target": 1, "labels": [1], "pred": 2}\n')
    assert detect(path, PREDICTIONS).name == "json-split"
    assert detect(path.rename(tmp_path / "p.jsonl"), PREDICTIONS).name == "jsonl"
    with pytest.raises(InputError, match=r"p\.data: ambiguous predictions format; tried json-split .*; jsonl"):
        detect((tmp_path / "p.jsonl").rename(tmp_path / "p.data"), PREDICTIONS)
    with pytest.raises(ValueError, match="registered twice"):
        registry.register(other)


# ---------------------------------------------------------------------------------------------
# the one sample-list parser, also the compiler's


def test_compiler_reads_sample_lists_with_the_one_parser(tmp_path: Path) -> None:
    listed = tmp_path / "list.txt"
    listed.write_text("# why these\nILSVRC2012_val_00000007.JPEG   # a trailing comment\n\n"
                      "ILSVRC2012_val_00000008.JPEG\n")
    base = ROOT / "rules" / "imagenet" / "peychev2023.yaml"
    text = (f"extends: {base}\nversion: 'list'\nresources:\n"
            f"  non_prototypical: {{kind: sample_list, file: '{listed}', source: test}}\n")
    compiled = compile_taxonomy(load_taxonomy(tmp_path / "t.yaml", text=text))
    batch = SampleBatch.from_lists(target=[0, 0], labels=[[0], [0]], pred=[999, 999],
                                   images=["ILSVRC2012_val_00000007.JPEG", "ILSVRC2012_val_00000009.JPEG"])
    assert evaluate(compiled, batch).primary.value_names()[0] == "non_prototypical"
    assert evaluate(compiled, batch).primary.value_names()[1] != "non_prototypical"
    listed.write_text("ILSVRC2012_val_00000007.JPEG ILSVRC2012_val_00000008.JPEG\n")
    with pytest.raises(TaxonomyError) as error:
        compile_taxonomy(load_taxonomy(tmp_path / "t.yaml", text=text))
    problem = next(p for p in error.value.problems if p.key_path == ("resources", "non_prototypical", "file"))
    assert f"{listed} record 1: expected one image file name, got 2 fields" in problem.message


# ---------------------------------------------------------------------------------------------
# .npy predictions


def test_npy_top1_and_logits(tmp_path: Path) -> None:
    top1 = (np.arange(N) * 7 % 1000).astype(np.int16)
    np.save(tmp_path / "top1.npy", top1)
    logits = np.zeros((N, 1000), np.float16)
    logits[np.arange(N), top1] = 1.0
    np.save(tmp_path / "logits.npy", logits)
    for name in ("top1.npy", "logits.npy"):
        predictions = read_predictions(tmp_path / name)
        assert predictions.format == "npy" and predictions.validation_order and predictions.samples is None
        assert predictions.top1(1000).tolist() == top1.tolist()
    labels = LabeledImages.from_lists(images=[validation_image_name(i) for i in range(0, N, 5)],
                                      target=[0] * (N // 5), labels=[[0]] * (N // 5))
    batch, skipped = read_predictions(tmp_path / "top1.npy").with_labels(labels)
    assert skipped == N - N // 5 and batch.pred.tolist() == top1[::5].tolist()
    assert read_samples(tmp_path / "logits.npy", labels).pred.tolist() == top1[::5].tolist()  # diff's reader
    with pytest.raises(InputNeedsMore, match="npy predictions carry no labels"):
        read_predictions(tmp_path / "top1.npy").with_labels(None)


@pytest.mark.parametrize(("array", "message"), [
    (np.zeros(3, np.int64),
     ": field 'array': has 3 rows; the rows of an .npy must be the 50000 validation images in file order"),
    (np.zeros((N, 1, 1)), ": field 'array': must be int[N] or float[N, 1000], got shape [50000, 1, 1]"),
    (np.full(N, 1000), " key 'array' row 0 (ILSVRC2012_val_00000001.JPEG): class id 1000 is outside 0..999"),
    (np.zeros(N, np.float32), ": field 'array': 1-D predictions must be integer class ids, not float32"),
])
def test_npy_errors_name_the_file_and_the_row(tmp_path: Path, array: np.ndarray, message: str) -> None:
    np.save(tmp_path / "p.npy", array)
    with pytest.raises(InputError) as error:
        read_predictions(tmp_path / "p.npy").top1(1000)
    assert str(error.value) == f"{tmp_path / 'p.npy'}{message}"
    (tmp_path / "junk.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(InputError, match=r"junk\.npy: cannot read as \.npy"):
        read_npy(str(tmp_path / "junk.npy"))


def test_npy_in_classify(tmp_path: Path) -> None:
    labels = val_targets(tmp_path / "val.txt")
    top1 = np.arange(N) % 1000
    top1[:10] = 999
    np.save(tmp_path / "model.npy", top1)
    out = tmp_path / "out.jsonl"
    p = run("classify", str(tmp_path / "model.npy"), "--labels", str(labels), "--output", str(out))
    assert p.returncode == 0, p.stderr
    got = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(got) == N and got[0]["image"] == validation_image_name(0)
    assert got[0]["category"] != "correct" and got[10]["category"] == "correct"
    p = run("classify", str(tmp_path / "model.npy"))
    assert p.returncode == 2 and "--labels" in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_npy_in_a_study_with_npz_and_jsonl(tmp_path: Path) -> None:
    tax = default_compiled()
    labels = read_labels(val_targets(tmp_path / "val.txt"))
    rng = np.random.default_rng(5)
    pred = rng.integers(0, 1000, N).astype(np.int32)
    models = tmp_path / "models"
    models.mkdir()
    np.save(models / "a.npy", pred)
    np.savez(models / "b.npz", top1=pred)
    (models / "notes.md").write_text("not a model\n")
    found = discover_models([models])
    assert [(m.name, Path(m.path).name) for m in found] == [("a", "a.npy"), ("b", "b.npz")]
    images = ImageSet.from_labels(labels)
    assert np.array_equal(read_model(models / "a.npy", images), pred)
    table = run_study(tax, images, found, progress=False).table
    assert table.drop(columns="model").iloc[0].equals(table.drop(columns="model").iloc[1])
    p = run("study", str(models), "--labels", str(tmp_path / "val.txt"), "--out", str(tmp_path / "out"),
            "--no-progress")
    assert p.returncode == 0, p.stderr
    assert "2 models" in p.stderr


# ---------------------------------------------------------------------------------------------
# .txt class lists: predictions where a command reads predictions, a target list where it reads labels


def test_class_list_is_predictions_and_a_target_list_stays_labels(tmp_path: Path) -> None:
    ids = tmp_path / "model.txt"
    ids.write_text("1\n# a comment\n\n5\n n01443537 \n")
    assert detect(ids, PREDICTIONS).name == "class-list" and detect(ids, LABELS).name == "targets"
    predictions = read_predictions(ids)
    assert (predictions.format, predictions.top1(1000).tolist()) == ("class-list", [1, 5, 1])
    assert list(predictions.images or []) == [validation_image_name(i) for i in range(3)]
    names = tmp_path / "names.txt"  # class names: recognised by the suffix
    names.write_text("tench\nbathing cap, swimming cap\ngoldfish, Carassius auratus\n")
    assert read_predictions(names).top1(1000).tolist() == [0, 433, 1]
    full = tmp_path / "full.txt"
    full.write_text("".join(f"{i % 1000}\n" for i in range(N)))
    assert read_predictions(full).validation_order
    with pytest.raises(InputError, match=r"names\.txt record 2: class name 'crane' names several classes"):
        names.write_text("tench\ncrane\n")
        read_predictions(names)
    with pytest.raises(InputError, match=r"model\.txt record 3: class id 1000 is outside 0\.\.999"):
        ids.write_text("1\n2\n1000\n")
        read_predictions(ids)
    with pytest.raises(InputError, match=r"record 50001: .*at most 50000"):
        full.write_text("1\n" * (N + 1))
        read_predictions(full)


def test_class_lists_in_classify(tmp_path: Path) -> None:
    (tmp_path / "targets.txt").write_text("1\n1\n3\n")
    (tmp_path / "model.txt").write_text("1\ngoldfish\n999\n")  # ids and names mixed
    out = tmp_path / "out.jsonl"
    p = run("classify", str(tmp_path / "model.txt"), "--labels", str(tmp_path / "targets.txt"), "--output", str(out))
    assert p.returncode == 0, p.stderr
    got = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["image"] for r in got] == [validation_image_name(i) for i in range(3)]
    assert [r["category"] == "correct" for r in got] == [True, True, False]
    (tmp_path / "bad.txt").write_text("1\nno such class\n")
    p = run("classify", str(tmp_path / "bad.txt"), "--labels", str(tmp_path / "targets.txt"))
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1
    assert "bad.txt record 2: 'no such class' is not a class name" in p.stderr


def test_a_txt_study_source_is_read_by_its_content(tmp_path: Path) -> None:
    tax = default_compiled()
    labels = tmp_path / "targets.txt"
    target = np.arange(40) % 1000
    labels.write_text("".join(f"{t}\n" for t in target.tolist()))
    models = tmp_path / "models"
    models.mkdir()
    pred = target.copy()
    pred[:10] = 999
    (models / "ids.txt").write_text("".join(f"{c}\n" for c in pred.tolist()))  # a class list in a folder
    np.savez(models / "npz_model.npz", top1=pred, images=np.array([validation_image_name(i) for i in range(40)]))
    names = tmp_path / "names.txt"  # given by itself: class names, one model
    names.write_text("".join(f"{tax.vocabulary.names[c]}\n" for c in pred.tolist()))
    listing = tmp_path / "list.txt"  # a list of model files
    listing.write_text("# models\nmodels/npz_model.npz\n")
    found = discover_models([models, names])
    assert [(m.name, Path(m.path).name) for m in found] == [("ids", "ids.txt"), ("npz_model", "npz_model.npz"),
                                                            ("names", "names.txt")]
    assert [m.path for m in discover_models([listing])] == [str(models / "npz_model.npz")]
    images = ImageSet.from_labels(read_labels(labels))
    assert np.array_equal(read_model(names, images), pred)
    out = tmp_path / "out"
    p = run("study", str(models), str(names), "--labels", str(labels), "--out", str(out), "--no-progress")
    assert p.returncode == 0, p.stderr
    with (out / "models.csv").open(newline="") as stream:
        table = {row["model"]: row for row in csv.DictReader(stream)}
    assert sorted(table) == ["ids", "names", "npz_model"]
    figures = {tuple(value for key, value in row.items() if key not in ("model", "path")) for row in table.values()}
    assert len(figures) == 1  # the same predictions, the same figures
