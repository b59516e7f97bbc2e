"""Studies: statistics against hand-computed cases, the study table on generated models, the CLI."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from errortaxa.engine import default_compiled, evaluate, summarize
from errortaxa.study.models import ImageSet, discover_models, read_image_list, read_model
from errortaxa.study.stats import clopper_pearson, mcnemar_exact
from errortaxa.study.study import run_study

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from synthetic import make_images, make_predictions  # noqa: E402

# ------------------------------------------------------------------ statistics


def test_clopper_pearson_hand_computed() -> None:
    # k = 0: [0, 1 - (alpha/2)^(1/n)]; k = n: [(alpha/2)^(1/n), 1]
    lo, hi = clopper_pearson([0, 10, 5, 0], [10, 10, 10, 0])
    assert lo[0] == 0.0 and hi[0] == pytest.approx(1 - 0.025 ** (1 / 10), abs=1e-9)
    assert lo[1] == pytest.approx(0.025 ** (1 / 10), abs=1e-9) and hi[1] == 1.0
    # 5 / 10: the textbook interval (0.1871, 0.8129), symmetric about 1/2
    assert lo[2] == pytest.approx(0.187086, abs=1e-6) and hi[2] == pytest.approx(0.812914, abs=1e-6)
    assert np.isnan(lo[3]) and np.isnan(hi[3])
    # 1 / 2 at 95%: lower end solves x^... = beta.ppf(0.025, 1, 2) = 1 - sqrt(0.975)
    lo, hi = clopper_pearson(1, 2)
    assert float(lo) == pytest.approx(1 - np.sqrt(0.975), abs=1e-9)
    assert float(hi) == pytest.approx(np.sqrt(0.975), abs=1e-9)
    with pytest.raises(ValueError):
        clopper_pearson(3, 2)


def test_mcnemar_exact_hand_computed() -> None:
    # discordant: 1 only-A, 5 only-B -> p = 2 * P(X <= 1 | Bin(6, 1/2)) = 2 * 7/64
    a = np.array([1, 1, 0, 0, 0, 0, 0, 1, 0], bool)
    b = np.array([1, 0, 1, 1, 1, 1, 1, 1, 0], bool)
    r = mcnemar_exact(a, b)
    assert (r.both_correct, r.only_a, r.only_b, r.both_wrong) == (2, 1, 5, 1)
    assert r.p_value == pytest.approx(14 / 64)
    # 0 vs 5 -> 2 / 32
    assert mcnemar_exact(np.zeros(5, bool), np.ones(5, bool)).p_value == pytest.approx(2 / 32)
    # no discordant pair -> 1
    assert mcnemar_exact(np.ones(4, bool), np.ones(4, bool)).p_value == 1.0
    # symmetric
    assert mcnemar_exact(b, a).p_value == pytest.approx(r.p_value)
    with pytest.raises(ValueError):
        mcnemar_exact(np.ones(3, bool), np.ones(4, bool))


# ------------------------------------------------------------------ the study


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tax = default_compiled()
    images = make_images(tax, 600, seed=3)
    preds = make_predictions(tax, images, 6, seed=4).astype(np.int32)
    root = tmp_path_factory.mktemp("models")
    for m in range(6):
        if m % 2 == 0:  # 50,000 validation rows in file order (rows without labels are ignored)
            full = np.zeros(50_000, np.int16)
            full[: len(images)] = preds[m]
            np.savez(root / f"model{m}.npz", top1=full)
        else:  # explicit image names, shuffled, as logits
            order = np.random.default_rng(m).permutation(len(images))
            logits = np.zeros((len(images), 1000), np.float32)
            logits[np.arange(len(images)), preds[m][order]] = 1.0
            np.savez(root / f"model{m}.npz", logits=logits, images=np.array(images.images)[order])
    meta = pd.DataFrame({"name": [f"model{m}" for m in range(6)], "family": ["cnn", "vit"] * 3,
                         "params": [10, 20, 30, 40, 50, 60]})
    meta.to_csv(root / "meta.csv", index=False)
    (root / "imagenet_m.txt").write_text("\n".join(images.images[:68]) + "\n")
    return {"tax": tax, "images": images, "preds": preds, "root": root}


def test_class_mean_accuracy_hand_computed() -> None:
    from errortaxa.engine.results.accuracy import class_mean_accuracy

    # class 0: 1 of 2 correct, class 1: 1 of 1, class 2: 0 of 1 -> (1/2 + 1 + 0) / 3, not 2/4
    correct = np.array([True, False, True, False])
    target = np.array([0, 0, 1, 2])
    assert class_mean_accuracy(correct, target, np.ones(4, bool), 3) == pytest.approx(0.5)
    masks = np.array([[True, True, True, True], [True, True, False, False], [False] * 4])
    got = class_mean_accuracy(np.stack([correct, ~correct]), target, masks, 3)
    assert got.shape == (2, 3)
    assert got[0, 0] == pytest.approx(0.5) and got[0, 1] == pytest.approx(0.5) and np.isnan(got[0, 2])
    assert got[1, 0] == pytest.approx((0.5 + 0 + 1) / 3)


def test_group_cells_match_masks_on_subsets() -> None:
    """Sums over cells (per group, per group and class) equal the same sums over the masks, also for
    a subset of the samples (a model that covers some images) and for empty groups."""
    from errortaxa.engine.results.accuracy import GroupCells

    rng = np.random.default_rng(3)
    n, classes = 400, 7
    masks = rng.random((4, n)) < [[0.5], [0.3], [0.9], [0.0]]  # overlapping, the last one empty
    target = rng.integers(0, classes, n)
    cells = GroupCells(masks, target, classes)
    subset = np.flatnonzero(rng.random(n) < 0.6)
    correct = rng.random((2, subset.shape[0])) < 0.5
    cell = cells.cell[subset]
    hits = np.stack([cells.count(cell, row) for row in correct])
    got = cells.class_means(hits, cells.count(cell))
    assert np.array_equal(cells.per_group(cells.count(cell)), masks[:, subset].sum(axis=1))
    for k in range(2):
        for g in range(3):
            inside = masks[g, subset]
            shares = [correct[k][inside & (target[subset] == c)].mean() for c in range(classes)
                      if (inside & (target[subset] == c)).any()]
            assert got[k, g] == pytest.approx(np.mean(shares))
    assert np.isnan(got[:, 3]).all()


def test_read_model_both_layouts(generated: dict) -> None:
    iset = ImageSet(generated["images"])
    for m in (0, 1):
        got = read_model(generated["root"] / f"model{m}.npz", iset)
        assert np.array_equal(got, generated["preds"][m])


def test_study_table_matches_engine_summary(generated: dict) -> None:
    tax, images, preds = generated["tax"], generated["images"], generated["preds"]
    models = discover_models([generated["root"]])
    assert [m.name for m in models] == [f"model{m}" for m in range(6)]
    meta = pd.read_csv(generated["root"] / "meta.csv")
    listed = read_image_list(generated["root"] / "imagenet_m.txt")
    result = run_study(tax, ImageSet(images), models, metadata=meta.rename(columns={"name": "model"}),
                       image_list=listed, progress=False)
    table = result.table
    assert list(table["model"]) == [f"model{m}" for m in range(6)]
    assert list(table["family"]) == ["cnn", "vit"] * 3
    for m in range(6):
        row = table.iloc[m]
        expected = summarize(tax, evaluate(tax, images.take(np.arange(len(images)), preds[m])))
        head = expected["headline"]
        assert row["all.samples"] == head["samples"]
        assert row["all.mla_share"] == pytest.approx(head["mla_share"], abs=1e-6)
        for stat in ("mla", "mla_minor", "mla_explainable"):
            assert row[f"all.{stat}"] == pytest.approx(head[stat], abs=1e-6)
        assert row["all.top1"] == pytest.approx(head["top1_accuracy"], abs=1e-6)
        assert row["all.top1_errors"] == row["all.samples"] - round(head["top1_accuracy"] * head["samples"])
        for cat, c in head["categories"].items():
            assert row[f"all.n.{cat}"] == c["count"]
        for kind, suffix in (("groups_by_any_label", "_by_label"), ("groups_by_target", "_by_target")):
            for group, block in head[kind].items():
                assert row[f"{group}{suffix}.samples"] == block["samples"]
                assert row[f"{group}{suffix}.mla"] == pytest.approx(block["mla"], abs=1e-6)
                for cat, c in block["categories"].items():
                    assert row[f"{group}{suffix}.n.{cat}"] == c["count"]
        assert row["problematic.samples"] == expected["problematic"]["samples"]
        decided = evaluate(tax, images.take(np.arange(len(images)), preds[m])).primary
        rules = decided.rules
        headline = ~images.problematic
        for rule_id in ("fine_grained_oov", "non_prototypical"):
            skipped = decided.rule_not_evaluated(rules.index(rule_id))
            assert row[f"all.not_evaluated.{rule_id}"] == np.count_nonzero(skipped[headline])
        assert row["all.not_evaluated.fine_grained_oov"] > 0  # no OOV provider in this study
        assert row["all.mla_share_lo"] <= row["all.mla_share"] <= row["all.mla_share_hi"]
        assert row["all.mla"] <= row["all.mla_minor"] <= row["all.mla_explainable"]
        listed = np.zeros(len(images), bool)
        listed[:68] = True
        listed &= headline
        assert row["image_list.samples"] == listed.sum()
        in_labels = np.array([int(preds[m][i]) in images.labels_of(i) for i in range(len(images))])
        assert row["image_list.errors"] == np.count_nonzero(listed & ~in_labels)
        assert row["all.listed_errors"] == row["image_list.errors"]
        parts = sum(row[f"{g}_by_target.samples"] for g in ("dogs", "other_animals", "objects"))
        assert parts == row["all.samples"]  # by target: a partition
        overlapping = sum(row[f"{g}_by_label.samples"] for g in ("organism", "artifact", "other"))
        assert overlapping >= row["all.samples"]  # by any label: groups overlap
        shares = sum(row[f"error_share.{c}"] for c in result.error_categories)
        assert shares == pytest.approx(1.0)
    # the most common errors are real errors of that category with class names
    assert result.top_errors
    for cat, entries in result.top_errors.items():
        assert cat in result.categories
        for e in entries:
            assert e["target_name"] == tax.vocabulary.names[e["target"]] and e["errors"] >= 1


def test_study_cli_writes_csv_and_parquet(generated: dict, tmp_path: Path) -> None:
    from errortaxa.cli import main

    tax, images = generated["tax"], generated["images"]
    labels = tmp_path / "labels.jsonl"
    # a JSONL file of the images defines the image set when no --labels is given
    import json

    with labels.open("w") as f:
        for i in range(len(images)):
            f.write(json.dumps({"image": images.images[i], "target": int(images.target[i]),
                                "labels": images.labels_of(i), "pred": int(images.target[i]),
                                "problematic": bool(images.problematic[i])}) + "\n")
    src = tmp_path / "models"
    src.mkdir()
    (src / "model0.npz").write_bytes((generated["root"] / "model0.npz").read_bytes())
    (src / "model1.npz").write_bytes((generated["root"] / "model1.npz").read_bytes())
    (src / "truth.jsonl").write_bytes(labels.read_bytes())
    out = tmp_path / "out"
    assert main(["study", str(src), "--out", str(out), "--metadata", str(generated["root"] / "meta.csv"),
                 "--no-progress"]) == 0
    csv_table = pd.read_csv(out / "models.csv")
    parquet = pd.read_parquet(out / "models.parquet")
    assert list(csv_table["model"]) == ["model0", "model1", "truth"]
    assert parquet.shape == csv_table.shape
    assert parquet.loc[2, "all.mla"] == 1.0 and parquet.loc[2, "all.mla_share"] == 1.0
    assert parquet.loc[2, "all.n.correct"] == parquet.loc[2, "all.samples"]
    assert len(tax.vocabulary) == 1000


def test_reserved_decisions_are_sliced_not_stacked() -> None:
    from errortaxa.study.tabulate import Accumulator

    rng = np.random.default_rng(3)
    rows = [(rng.integers(-1, 9, 12), rng.integers(-1, 999, 12)) for _ in range(5)]
    reserved, plain = Accumulator(), Accumulator()
    reserved.reserve(3, 12, np.int16)  # room for three: the last two rows are copies
    for values, preds in rows:
        reserved.add_decisions(values, preds)
        plain.add_decisions(values, preds.astype(np.int16))
    first = reserved.decisions(0)
    assert not np.shares_memory(first[0], reserved.values[0])  # stacked: more rows than were reserved
    for acc in (reserved, plain):
        values, preds = acc.decisions(1)
        assert np.array_equal(values, np.stack([v for v, _ in rows[1:]])) and values.dtype == np.int16
        assert np.array_equal(preds, np.stack([p for _, p in rows[1:]]))
    sliced = Accumulator()
    sliced.reserve(5, 12, np.int16)
    for values, preds in rows:
        sliced.add_decisions(values, preds)
    values, preds = sliced.decisions(2)
    assert values.base is sliced.decisions(0)[0].base and np.shares_memory(values, sliced.values[2])
    assert np.array_equal(preds, np.stack([p for _, p in rows[2:]]))
    with pytest.raises(ValueError, match="before the first model"):
        sliced.reserve(1, 12, np.int16)
