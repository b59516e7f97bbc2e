"""Built-in datasets (ImageNet-A, ImageNetV2) and top-1 on all validation images, end to end
through the CLI on generated predictions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from errortaxa.cli import main
from errortaxa.engine.knowledge.datasets import dataset, imagenet_a_classes
from errortaxa.engine.knowledge.vocabulary import Vocabulary
from errortaxa.study.stats import clopper_pearson


def test_imagenet_a_definition() -> None:
    classes = imagenet_a_classes()
    assert classes.shape == (200,) and len(set(classes.tolist())) == 200
    vocab = Vocabulary.imagenet()
    a = dataset("imagenet-a")
    assert a.target_of(f"imagenet-a/{vocab.wnids[classes[0]]}/0.001_x.jpg") == classes[0]
    outside = next(c for c in range(1000) if c not in set(classes.tolist()))
    with pytest.raises(ValueError, match="not one of the 200 classes"):
        a.target_of(f"{vocab.wnids[outside]}/x.jpg")
    with pytest.raises(ValueError, match="unknown dataset"):
        dataset("imagenet-z")


def _imagenet_a_predictions(root: Path, n: int = 300, seed: int = 0) -> tuple[list[str], np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    vocab = Vocabulary.imagenet()
    classes = imagenet_a_classes()
    target = classes[rng.integers(0, 200, n)]
    names = [f"{vocab.wnids[t]}/{i:06d}_adv.jpg" for i, t in enumerate(target.tolist())]
    logits_all = []
    for m in range(3):
        logits = rng.normal(size=(n, 1000)).astype(np.float32)
        hit = rng.random(n) < 0.3 + 0.2 * m
        logits[np.flatnonzero(hit), target[hit]] += 10.0
        # some images whose 1000-way top-1 is outside the 200 but whose restricted top-1 is right
        odd = np.flatnonzero(~hit)[:20]
        logits[odd, target[odd]] += 6.0
        logits[odd, 0] = 50.0  # tench is not an ImageNet-A class
        np.savez(root / f"model{m}.npz", logits=logits, images=np.array(names))
        logits_all.append(logits)
    return names, target, logits_all


def test_imagenet_a_study_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    models = tmp_path / "models"
    models.mkdir()
    names, target, logits = _imagenet_a_predictions(models)
    out = tmp_path / "out"
    assert main(["study", str(models), "--dataset", "imagenet-a", "--reference-tables", "--out", str(out),
                 "--no-progress"]) == 0
    table = pd.read_csv(out / "models.csv")
    classes = imagenet_a_classes()
    for group in ("all", "organism", "artifact", "other"):
        ref = pd.read_csv(out / "reference" / f"non_problematic_stats_{group}.csv")
        assert "num_all_imagenet-m_samples" not in ref.columns
        assert list(ref.columns[1:3]) == ["top1_val_acc", "top1_val_acc_subset_200"]
        for m in range(3):
            row = ref.iloc[m]
            top1 = logits[m].argmax(axis=1)
            assert row["num_all_samples"] == len(names)
            assert row["top1_val_acc"] == pytest.approx(100 * np.mean(top1 == target), abs=1e-9)
            restricted = classes[logits[m][:, classes].argmax(axis=1)]
            assert row["top1_val_acc_subset_200"] == pytest.approx(100 * np.mean(restricted == target), abs=1e-9)
            assert row["top1_val_acc_subset_200"] > row["top1_val_acc"]
            assert row["num_ambiguous"] == 0  # labels = the target
            assert row["num_group_samples"] == row["num_group_correct"] + row["num_group_top1_errors"]
            assert pd.isna(row["num_OOV_clip"])  # no OOV provider
        assert table["all.samples"].tolist() == [len(names)] * 3


def test_imagenet_v2_reads_class_index_folders(tmp_path: Path) -> None:
    root = tmp_path / "imagenetv2-matched-frequency"
    rng = np.random.default_rng(1)
    target = rng.integers(0, 1000, 50)
    names = []
    for i, t in enumerate(target.tolist()):
        (root / str(t)).mkdir(parents=True, exist_ok=True)
        (root / str(t) / f"{i:04d}.jpeg").write_bytes(b"")
        names.append(f"{t}/{i:04d}.jpeg")
    models = tmp_path / "models"
    models.mkdir()
    pred = np.where(rng.random(50) < 0.5, target, (target + 1) % 1000)
    np.savez(models / "m.npz", top1=pred.astype(np.int32), images=np.array(names))
    out = tmp_path / "out"
    assert main(["study", str(models), "--dataset", "imagenet-v2", "--labels", str(root), "--reference-tables",
                 "--out", str(out), "--no-progress"]) == 0
    ref = pd.read_csv(out / "reference" / "non_problematic_stats_all.csv")
    assert ref.loc[0, "num_all_samples"] == 50
    assert ref.loc[0, "top1_val_acc"] == pytest.approx(100 * np.mean(pred == target))
    assert "top1_val_acc_subset_200" not in ref.columns


def test_top1_on_all_validation_images(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    val = rng.integers(0, 1000, 50_000)
    val_file = tmp_path / "val.txt"
    val_file.write_text("".join(f"ILSVRC2012_val_{i + 1:08d}.JPEG {t}\n" for i, t in enumerate(val.tolist())))
    labels = tmp_path / "labels.csv"
    rows = ["id,category,original_label,proposed_labels,manually_validated,unclear_multi_labels,"
            "wrong_multi_labels,is_problematic"]
    rows += [f'ILSVRC2012_val_{i + 1:08d}.JPEG,x,{val[i]},"{val[i]}",True,"","",False' for i in range(200)]
    labels.write_text("\n".join(rows) + "\n")
    models = tmp_path / "models"
    models.mkdir()
    pred = np.where(rng.random(50_000) < 0.7, val, (val + 3) % 1000).astype(np.int32)
    np.savez(models / "full.npz", top1=pred)
    names = np.array([f"ILSVRC2012_val_{i + 1:08d}.JPEG" for i in range(200)])
    np.savez(models / "part.npz", top1=pred[:200], images=names)  # covers only the labelled images
    out = tmp_path / "out"
    assert main(["study", str(models), "--labels", str(labels), "--val-labels", str(val_file),
                 "--reference-tables", "--out", str(out), "--no-progress"]) == 0
    table = pd.read_csv(out / "models.csv").set_index("model")
    assert table.loc["full", "top1_val"] == pytest.approx(np.mean(pred == val))
    lo, hi = clopper_pearson(int(np.sum(pred == val)), pred.shape[0])
    assert (table.loc["full", "top1_val_lo"], table.loc["full", "top1_val_hi"]) == pytest.approx((float(lo), float(hi)))
    assert np.isnan(table.loc["part", "top1_val"])
    ref = pd.read_csv(out / "reference" / "non_problematic_stats_all.csv").set_index("model_dir_id")
    assert ref.loc["full", "top1_val_acc"] == pytest.approx(100 * np.mean(pred == val))
    assert ref.loc["full", "num_all_samples"] == 200
