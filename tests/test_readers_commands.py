"""Every predictions format through every command (classify, study, diff, mcnemar), and every
label-set table through the server's RegisterDataset: files written by their own tools (timm's
inference script, torch.save, numpy, pandas / pyarrow to_parquet and to_csv), decisions on the
tool's top-1."""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest
from errortaxa.cli import main
from errortaxa.engine import SampleBatch, default_compiled, evaluate
from errortaxa.engine.knowledge.vocabulary import Vocabulary

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]
TIMM = ROOT / "tests" / "data" / "timm"
TAXONOMY = str(ROOT / "rules" / "imagenet" / "peychev2023.yaml")
N = 50_000
IMAGES = [f"ILSVRC2012_val_{i:08d}.JPEG" for i in range(11, 23)]


def timm_top1() -> list[int]:
    """The tool's own top-1: the first of the top-5 timm wrote, read with the standard library."""
    data = json.loads((TIMM / "mobilenetv3_json.json").read_text())
    return [data[image]["index"][0] for image in IMAGES]


TOP1 = timm_top1()
TARGET = [t if i % 2 == 0 else (t + 1) % 1000 for i, t in enumerate(TOP1)]  # every other one right
#: The records of the tool's top-1 on the 12 images, classified by the engine itself.
WANT = [json.loads(orjson.dumps(r)) for r in evaluate(default_compiled(), SampleBatch.from_lists(
    target=TARGET, labels=[[t] for t in TARGET], pred=TOP1, images=IMAGES)).records()]


def one_hot(rows: int, classes: list[int], at: range | None = None) -> np.ndarray:
    scores = np.zeros((rows, 1000), np.float32)
    scores[np.asarray(at if at is not None else range(len(classes))), classes] = 4.0
    return scores


def val_top1() -> np.ndarray:
    """Top-1 over the 50,000 validation files in order: the 12 images' at rows 10..21."""
    top1 = np.zeros(N, np.int64)
    top1[10:22] = TOP1
    return top1


def copy(name: str) -> Callable[[Path], Path]:
    return lambda d: Path(shutil.copy(TIMM / name, d / name))


def names(classes: list[int]) -> list[str]:
    return [Vocabulary.imagenet().full_names[c] for c in classes]


def torch_dict(d: Path) -> Path:
    torch.save({"images": IMAGES, "logits": torch.from_numpy(one_hot(12, TOP1))}, d / "m.pt")
    return d / "m.pt"


def torch_names(d: Path) -> Path:
    torch.save({"images": IMAGES, "top1": names(TOP1)}, d / "m.pth")
    return d / "m.pth"


def torch_tensor(d: Path) -> Path:
    torch.save(torch.from_numpy(val_top1()), d / "m.pt")
    return d / "m.pt"


def npy(d: Path) -> Path:
    np.save(d / "m.npy", val_top1().astype(np.int16))
    return d / "m.npy"


def npz(d: Path) -> Path:
    np.savez(d / "m.npz", images=np.array(IMAGES), logits=one_hot(12, TOP1))
    return d / "m.npz"


def parquet_hf(d: Path) -> Path:
    """A Hugging Face datasets-style export: an Image feature (bytes, path), the label, the prediction."""
    frame = pd.DataFrame({"image": [{"bytes": b"\xff\xd8", "path": image} for image in IMAGES],
                          "label": TARGET, "prediction": TOP1})
    frame.to_parquet(d / "m.parquet")
    return d / "m.parquet"


def parquet_logits(d: Path) -> Path:
    frame = pd.DataFrame({"image": IMAGES, "logits": list(one_hot(12, TOP1))})
    frame.to_parquet(d / "m.parquet", engine="pyarrow")
    return d / "m.parquet"


def csv_names(d: Path) -> Path:
    pd.DataFrame({"file_name": IMAGES, "pred": names(TOP1)}).to_csv(d / "m.csv", index=False)
    return d / "m.csv"


def csv_logits(d: Path) -> Path:
    frame = pd.DataFrame(one_hot(12, TOP1), columns=[f"c{k}" for k in range(1000)])
    frame.insert(0, "image", IMAGES)
    frame.to_csv(d / "m.csv", index=False)
    return d / "m.csv"


def jsonl_pred(d: Path) -> Path:
    lines = [{"image": image, "pred": pred if i else names([pred])[0]}
             for i, (image, pred) in enumerate(zip(IMAGES, TOP1, strict=True))]
    (d / "m.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return d / "m.jsonl"


def jsonl_samples(d: Path) -> Path:
    lines = [{"image": image, "target": t, "labels": [t], "pred": p}
             for image, t, p in zip(IMAGES, TARGET, TOP1, strict=True)]
    (d / "m.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return d / "m.jsonl"


FORMATS: dict[str, Callable[[Path], Path]] = {
    "timm-csv": copy("mobilenetv3.csv"), "timm-csv-separate": copy("mobilenetv3_sep.csv"),
    "timm-parquet": copy("mobilenetv3.parquet"), "timm-parquet-separate": copy("mobilenetv3_sep.parquet"),
    "timm-json": copy("mobilenetv3_json.json"), "timm-json-split": copy("mobilenetv3_split.json"),
    "torch-dict": torch_dict, "torch-names": torch_names, "torch-tensor": torch_tensor, "npy": npy, "npz": npz,
    "parquet-hf-export": parquet_hf, "parquet-logits": parquet_logits, "csv-names": csv_names,
    "csv-logits": csv_logits, "jsonl-image-pred": jsonl_pred, "jsonl-samples": jsonl_samples,
}


def label_csv(path: Path) -> Path:
    """The multi-label CSV of the 12 images (target = the timm top-1 on every other image)."""
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["id", "original_label", "proposed_labels", "unclear_multi_labels", "is_problematic"])
        writer.writerows([image, t, str(t), "", "False"] for image, t in zip(IMAGES, TARGET, strict=True))
    return path


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_in_every_command(fmt: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    models = tmp_path / "models"
    models.mkdir()
    path = str(FORMATS[fmt](models))
    labels = str(label_csv(tmp_path / "labels.csv"))
    # classify: one record per labelled image, the tool's top-1
    out = tmp_path / "out.jsonl"
    cli(capsys, "classify", path, "--labels", labels, "--output", str(out))
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert records == WANT
    assert [r["category"] == "correct" for r in records] == [i % 2 == 0 for i in range(12)]
    # study: a folder holding the file
    cli(capsys, "study", str(models), "--labels", labels, "--out", str(tmp_path / "study"), "--no-progress")
    table = pd.read_csv(tmp_path / "study" / "models.csv")
    assert table["all.samples"].tolist() == [12] and table["all.top1"].tolist() == [0.5]
    # diff of two taxonomies on its samples
    cli(capsys, "diff", TAXONOMY, TAXONOMY, path, "--labels", labels, "--all", "--json", str(tmp_path / "d.json"))
    assert json.loads((tmp_path / "d.json").read_text())["samples"] == 12
    # mcnemar of the file against itself
    result = json.loads(cli(capsys, "mcnemar", path, path, "--labels", labels, "--top1", "--json"))
    assert (result["samples"], result["accuracy_a"], result["only_a"]) == (12, 0.5, 0)


def test_label_tables_in_register_dataset(tmp_path: Path) -> None:
    """The label-set tables (CSV, parquet: a datasets export) registered on a real server."""
    from errortaxa.client import Client
    from errortaxa.server import ServerConfig, build_server

    data = tmp_path / "labels"
    data.mkdir()
    pd.DataFrame({"image": IMAGES, "label": TARGET}).to_csv(data / "labels.csv", index=False)
    parquet_hf(data)
    label_csv(data / "multilabel.csv")
    jsonl_samples(data)
    expected = {"labels.csv": "csv", "m.parquet": "parquet", "multilabel.csv": "multilabel-csv", "m.jsonl": "jsonl"}
    running = build_server(ServerConfig(host="127.0.0.1", port=0, drain_seconds=0.0, grace_seconds=2.0,
                                        data_dirs=(data,)))
    try:
        with Client(f"127.0.0.1:{running.port}", retries=0) as client:
            for k, (name, fmt) in enumerate(expected.items()):
                info = client.register_dataset(f"d{k}", name)
                assert (info.format, info.size) == (fmt, 12), name
                assert client.dataset_images(f"d{k}") == IMAGES
                result = client.classify_dataset(f"d{k}", pred=np.array(TOP1), records=True)
                assert [c == "correct" for c in result.category] == [i % 2 == 0 for i in range(12)], name
    finally:
        running.stop(0)
