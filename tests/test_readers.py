"""The readers of files other tools write: timm's inference outputs, torch files, tables, JSONL of
image + pred; class names through the vocabulary; detection from content; the one-line errors
(unknown or ambiguous files, missing extras, ambiguous names)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from errortaxa.engine.errors import InvalidInput, MissingExtra
from errortaxa.engine.inputs import (
    PREDICTIONS,
    Columns,
    InputError,
    InputNeedsMore,
    LabeledImages,
    ReadOptions,
    detect,
    read_labels,
    read_predictions,
    validation_image_name,
)
from errortaxa.engine.knowledge.vocabulary import Vocabulary

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]
TIMM = ROOT / "tests" / "data" / "timm"
EXE = shutil.which("errortaxa", path=str(Path(sys.executable).parent)) or "errortaxa"
N = 50_000
IMAGES = [f"ILSVRC2012_val_{i:08d}.JPEG" for i in range(11, 23)]
TIMM_FILES = ("mobilenetv3.csv", "mobilenetv3_sep.csv", "mobilenetv3.parquet", "mobilenetv3_sep.parquet",
              "mobilenetv3_json.json", "mobilenetv3_split.json")


def tool_top1() -> tuple[list[int], list[str]]:
    """timm's own top-1 (ids and label names), read from its JSON with the standard library."""
    data = json.loads((TIMM / "mobilenetv3_json.json").read_text())
    return [data[i]["index"][0] for i in IMAGES], [data[i]["label"][0] for i in IMAGES]


def message(error: pytest.ExceptionInfo[Exception]) -> str:
    text = str(error.value)
    assert "\n" not in text
    return text


@pytest.mark.parametrize("name", TIMM_FILES)
def test_timm_outputs_give_the_tools_top1_by_index_and_by_label(name: str) -> None:
    ids, labels = tool_top1()
    predictions = read_predictions(TIMM / name)
    assert list(predictions.images or []) == IMAGES
    assert predictions.key in ("index", "index_0")
    assert predictions.top1(1000).tolist() == ids
    label_column = "label" if predictions.key == "index" else "label_0"
    by_name = read_predictions(TIMM / name, ReadOptions(columns=Columns(pred=label_column)))
    assert by_name.top1(1000).tolist() == ids
    assert [Vocabulary.imagenet().full_names[i] for i in ids] == labels


def test_format_comes_from_content_not_suffix(tmp_path: Path) -> None:
    shutil.copy(TIMM / "mobilenetv3.parquet", tmp_path / "timm.csv")
    shutil.copy(TIMM / "mobilenetv3_sep.csv", tmp_path / "timm.txt")
    shutil.copy(TIMM / "mobilenetv3_split.json", tmp_path / "timm.data")
    torch.save({"images": IMAGES[:1], "top1": torch.tensor([5])}, tmp_path / "model.npz")
    with open(tmp_path / "arrays.pt", "wb") as stream:  # np.savez would add .npz to a name
        np.savez(stream, top1=np.arange(2), images=np.array(["a", "b"]))
    got = {p.name: detect(p, PREDICTIONS).name for p in sorted(tmp_path.iterdir())}
    assert got == {"arrays.pt": "npz", "model.npz": "torch", "timm.csv": "parquet", "timm.data": "timm-json-split",
                   "timm.txt": "csv"}
    assert read_predictions(tmp_path / "model.npz").top1(1000).tolist() == [5]


def test_unknown_and_ambiguous_files_end_in_one_line_naming_the_formats_tried(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "notes.zip", "w") as archive:
        archive.writestr("notes.txt", "neither arrays nor a torch file")
    with pytest.raises(InputError) as error:
        read_predictions(tmp_path / "notes.zip")
    text = message(error)
    assert text.startswith(f"{tmp_path / 'notes.zip'}: unknown predictions format; tried class-list (")
    for name in ("csv", "jsonl", "npy", "npz", "parquet", "timm-json", "timm-json-split", "torch"):
        assert f"; {name} (" in text
    # a one-line object keyed by file name is JSONL or timm's JSON: the suffix decides, else it is ambiguous
    compact = json.dumps({IMAGES[0]: {"index": [5, 6], "label": ["a", "b"]}})
    (tmp_path / "m.json").write_text(compact + "\n")
    assert read_predictions(tmp_path / "m.json").top1(1000).tolist() == [5]
    (tmp_path / "m.json").rename(tmp_path / "m.out")
    with pytest.raises(InputError) as error:
        read_predictions(tmp_path / "m.out")
    assert message(error).startswith(f"{tmp_path / 'm.out'}: ambiguous predictions format; tried jsonl (JSON objects")
    assert "; timm-json (timm's inference JSON" in message(error)


def test_class_names_resolve_and_an_ambiguous_name_fails_in_one_line(tmp_path: Path) -> None:
    frame = pd.DataFrame({"image": ["a", "b", "c", "d"],
                          "pred": ["bathing cap, swimming cap", "maillot", "n02012849", "tench: a fish"]})
    frame.to_csv(tmp_path / "p.csv", index=False)
    assert read_predictions(tmp_path / "p.csv").top1(1000).tolist() == [433, 638, 134, 0]
    frame.loc[2, "pred"] = "crane"
    frame.to_csv(tmp_path / "p.csv", index=False)
    with pytest.raises(InputError) as error:
        read_predictions(tmp_path / "p.csv")
    assert message(error) == (f"{tmp_path / 'p.csv'} row 3 (c): field 'pred': class name 'crane' names several "
                              "classes (134, 517): give class ids")
    frame.loc[2, "pred"] = "unicorn"
    frame.to_csv(tmp_path / "p.csv", index=False)
    with pytest.raises(InputError, match=r"row 3 \(c\): field 'pred': 'unicorn' is not a class name or wnid"):
        read_predictions(tmp_path / "p.csv")


def test_tables_with_configured_and_usual_column_names(tmp_path: Path) -> None:
    scores = np.zeros((3, 1000))
    scores[[0, 1, 2], [7, 8, 9]] = 1.0
    frame = pd.DataFrame(scores, columns=[f"out_{k}" for k in range(1000)])
    frame.insert(0, "img", ["a", "b", "c"])
    frame["truth"] = 1
    frame.to_csv(tmp_path / "t.csv", index=False)
    options = ReadOptions(columns=Columns.parse("image=img, scores=out"))
    assert read_predictions(tmp_path / "t.csv", options).top1(1000).tolist() == [7, 8, 9]
    with pytest.raises(InputError) as error:
        read_predictions(tmp_path / "t.csv")
    assert "no image column: expected the image file names in one of image, filename" in message(error)
    frame.rename(columns={"img": "image"}).to_parquet(tmp_path / "t.parquet")
    with pytest.raises(InputError) as error:
        read_predictions(tmp_path / "t.parquet")
    assert "no prediction column: expected class ids or names in one of pred, prediction" in message(error)
    with pytest.raises(InputError, match=r"t\.parquet: no column 'logits' \(columns: image, out_0, out_1, "):
        read_predictions(tmp_path / "t.parquet", ReadOptions(columns=Columns(scores="logits")))
    # a datasets export's "label" is the truth, never taken for the prediction
    pd.DataFrame({"image": ["a"], "label": [3]}).to_parquet(tmp_path / "truth.parquet")
    with pytest.raises(InputError, match="no prediction column"):
        read_predictions(tmp_path / "truth.parquet")
    assert read_labels(tmp_path / "truth.parquet").target.tolist() == [3]
    with pytest.raises(InvalidInput, match=r"--columns: 'colour=red' is not KEY=COLUMN with KEY one of image, pred"):
        Columns.parse("image=a,colour=red")


def test_label_tables(tmp_path: Path) -> None:
    pd.DataFrame({"file": ["a", "b"], "target": ["tench", 5], "labels": ["[0, 1]", "[]"],
                  "is_problematic": [False, True]}).to_csv(tmp_path / "l.csv", index=False)
    labels = read_labels(tmp_path / "l.csv")
    assert (labels.images, labels.target.tolist(), labels.labels_of(0), labels.labels_of(1),
            labels.problematic.tolist()) == (["a", "b"], [0, 5], [0, 1], [], [False, True])
    pd.DataFrame({"image": ["a", "a"], "label": [1, 2]}).to_parquet(tmp_path / "dup.parquet")
    with pytest.raises(InputError, match=r"dup\.parquet row 2: field 'image': duplicate image 'a' \(first at row 1\)"):
        read_labels(tmp_path / "dup.parquet")


def test_torch_files(tmp_path: Path) -> None:
    top1 = np.arange(N) * 7 % 1000
    logits = torch.zeros((N, 1000), dtype=torch.float16)
    logits[torch.arange(N), torch.from_numpy(top1)] = 1.0
    torch.save(logits, tmp_path / "logits.pt")
    predictions = read_predictions(tmp_path / "logits.pt")
    assert predictions.validation_order and predictions.top1(1000).tolist() == top1.tolist()
    del logits
    probs = torch.zeros((2, 1000), dtype=torch.bfloat16)
    probs[0, 3] = probs[1, 4] = 1.0
    torch.save({"images": ["a", "b"], "probs": probs}, tmp_path / "d.pth")
    assert read_predictions(tmp_path / "d.pth").top1(1000).tolist() == [3, 4]
    cases = {
        "list.pt": ([1, 2], "must be a tensor [N, classes] or a dict with images and one of top1, pred, logits, "
                            "probs, probabilities, got list"),
        "nokey.pt": ({"images": ["a"], "scores": torch.zeros(1, 1000)},
                     "no prediction key: expected one of top1, pred, logits, probs, probabilities, found images, "
                     "scores"),
        "short.pt": ({"images": ["a"], "top1": torch.tensor([1, 2])}, "field 'images': has 1 names for 2 "
                                                                        "prediction rows"),
        "rows.pt": (torch.zeros(3, dtype=torch.int64), "field 'tensor': has 3 rows; without 'images' the rows must "
                                                       "be the 50000 validation images in file order"),
    }
    for name, (value, reason) in cases.items():
        torch.save(value, tmp_path / name)
        with pytest.raises(InputError) as error:
            read_predictions(tmp_path / name)
        assert message(error).endswith(reason), name
    named = ReadOptions(columns=Columns(pred="scores"))
    assert read_predictions(tmp_path / "nokey.pt", named).key == "scores"


class _Planted:
    """An object whose unpickling would run code (it writes a file)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, ...]:
        return (Path.write_text, (Path(self.path), "ran"))


def test_torch_files_are_loaded_without_running_code(tmp_path: Path) -> None:
    marker = tmp_path / "ran.txt"
    torch.save({"images": ["a"], "top1": torch.tensor([1]), "x": _Planted(str(marker))}, tmp_path / "evil.pt")
    with pytest.raises(InputError) as error:
        read_predictions(tmp_path / "evil.pt")
    assert message(error).startswith(f"{tmp_path / 'evil.pt'}: cannot read as a torch file (weights only): ")
    assert not marker.exists()


def test_jsonl_of_image_and_pred_is_joined_with_a_label_set(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"image": "a", "pred": 5}\n\n{"image": "b", "pred": "tench"}\n{"image": "c", "pred": 7}\n')
    predictions = read_predictions(path)
    assert predictions.samples is None and predictions.top1(1000).tolist() == [5, 0, 7]
    labels = LabeledImages.from_lists(images=["b", "a"], target=[0, 1], labels=[[0], [1]])
    batch, skipped = predictions.with_labels(labels)
    assert (batch.images, batch.pred.tolist(), batch.target.tolist(), skipped) == (["a", "b"], [5, 0], [1, 0], 1)
    with pytest.raises(InputNeedsMore, match="jsonl predictions carry no labels: give a label set"):
        predictions.with_labels(None)
    path.write_text('{"image": "a", "pred": 5}\n{"image": "b", "pred": 5, "target": 1, "labels": [1]}\n')
    with pytest.raises(InputError) as error:
        read_predictions(path)
    assert message(error) == (f"{path} record 2: field 'target': record 1 has no target or labels: give every "
                              "record target and labels, or none (predictions joined with --labels)")
    path.write_text('{"image": "a", "pred": 5}\n{"image": "a", "pred": 6}\n')
    with pytest.raises(InputError, match=r"record 2: field 'image': duplicate image 'a' \(first at record 1\)"):
        read_predictions(path)


def test_npz_of_class_names(tmp_path: Path) -> None:
    np.savez(tmp_path / "n.npz", pred=np.array(["tench", "goldfish"]), images=np.array(["a", "b"]))
    assert read_predictions(tmp_path / "n.npz").top1(1000).tolist() == [0, 1]


def test_missing_extra_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(TIMM / "mobilenetv3.parquet", tmp_path / "m.parquet")
    torch.save(torch.zeros(3), tmp_path / "m.pt")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now raises ImportError
    monkeypatch.setitem(sys.modules, "torch", None)
    for name, extra in (("m.parquet", "parquet"), ("m.pt", "torch")):
        with pytest.raises(MissingExtra) as error:
            read_predictions(tmp_path / name)
        assert message(error) == f"'{tmp_path / name}' needs the {extra} extra: pip install 'errortaxa[{extra}]'"


def test_missing_extra_on_the_command_line(tmp_path: Path) -> None:
    """Without pyarrow or torch (a package that fails to import first on the path), the command ends
    in the one-line missing-extra message."""
    blocked = tmp_path / "blocked"
    for package in ("pyarrow", "torch"):
        (blocked / package).mkdir(parents=True)
        (blocked / package / "__init__.py").write_text(f'raise ImportError("No module named {package!r}")\n')
    shutil.copy(TIMM / "mobilenetv3.parquet", tmp_path / "m.parquet")
    torch.save({"images": IMAGES, "top1": torch.arange(12)}, tmp_path / "m.pt")
    labels = tmp_path / "val.txt"
    labels.write_text("".join(f"{validation_image_name(i)} 1\n" for i in range(30)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocked), os.environ.get("PYTHONPATH", "")])}
    for name, extra in (("m.parquet", "parquet"), ("m.pt", "torch")):
        p = subprocess.run([EXE, "classify", str(tmp_path / name), "--labels", str(labels)], capture_output=True,
                           text=True, env=env, timeout=300)
        assert (p.returncode, p.stderr) == (2, f"errortaxa: error: '{tmp_path / name}' needs the {extra} extra: "
                                               f"pip install 'errortaxa[{extra}]'\n")


def test_a_study_folder_takes_prediction_tables_and_leaves_other_csv_files(tmp_path: Path) -> None:
    from errortaxa.study.models import discover_models

    shutil.copy(TIMM / "mobilenetv3.csv", tmp_path / "timm.csv")
    shutil.copy(TIMM / "mobilenetv3_split.json", tmp_path / "split.json")
    pd.DataFrame({"name": ["timm"], "params": [2.5]}).to_csv(tmp_path / "meta.csv", index=False)
    (tmp_path / "config.json").write_text(json.dumps({"lr": 0.1}, indent=2))
    assert [m.name for m in discover_models([tmp_path])] == ["split", "timm"]
    # a table of other column names, given by name: its suffix decides, --columns names them
    pd.DataFrame({"img": ["a"], "guess": [3]}).to_csv(tmp_path / "custom.csv", index=False)
    options = ReadOptions(columns=Columns(image="img", pred="guess"))
    assert read_predictions(tmp_path / "custom.csv", options).top1(1000).tolist() == [3]


def test_binary_formats_from_standard_input(tmp_path: Path) -> None:
    """``classify -`` with a torch file or a parquet table on standard input."""
    labels = tmp_path / "val.txt"
    labels.write_text("".join(f"{image} 5\n" for image in IMAGES))
    torch.save({"images": IMAGES, "top1": torch.full((12,), 5)}, tmp_path / "m.pt")
    shutil.copy(TIMM / "mobilenetv3.parquet", tmp_path / "m.parquet")
    for name, correct in (("m.pt", 12), ("m.parquet", 0)):
        with (tmp_path / name).open("rb") as stdin:
            p = subprocess.run([EXE, "classify", "-", "--labels", str(labels)], stdin=stdin, capture_output=True,
                               text=True, timeout=300)
        assert p.returncode == 0, p.stderr
        records = [json.loads(line) for line in p.stdout.splitlines()]
        assert len(records) == 12 and sum(r["category"] == "correct" for r in records) == correct, name


def test_formats_stays_the_function_after_the_format_modules_are_imported() -> None:
    import errortaxa.engine.inputs as inputs

    read_predictions(TIMM / "mobilenetv3.csv")  # the registry has imported every format module
    assert callable(inputs.formats) and inputs.formats(PREDICTIONS)
