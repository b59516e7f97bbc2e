"""The study's per-image analyses, each recomputed independently on small generated studies: shared
errors (counts per (image, prediction) and per image), intervals (Clopper-Pearson coverage on
simulated binomials, the bootstrap against a plain loop over its resamples and its coverage, the
baseline's paired differences and McNemar p-values), and trend fits."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from errortaxa.engine import default_compiled, evaluate
from errortaxa.study.intervals import bootstrap, mcnemar_p, resample_weights
from errortaxa.study.models import ImageSet, ModelFile
from errortaxa.study.stats import clopper_pearson, linear_trend, mcnemar_exact
from errortaxa.study.study import run_study
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from synthetic import make_images, make_predictions

MODELS = 8


@pytest.fixture(scope="module")
def study() -> dict:
    tax = default_compiled()
    images = make_images(tax, 800, seed=21)
    preds = make_predictions(tax, images, MODELS, seed=22).astype(np.int32)
    headline = np.flatnonzero(~images.problematic)
    # three images every model gets wrong (a class far from any label), one model without a prediction
    for row in headline[:3]:
        labels = set(images.labels_of(int(row)))
        preds[:, row] = next(c for c in range(999, 0, -1) if c not in labels)
    preds[MODELS - 1, headline[10]] = -1
    names = [f"m{i}" for i in range(MODELS)]
    result = run_study(tax, ImageSet(images), [ModelFile(n, "") for n in names], progress=False,
                       predictions=lambda m: preds[names.index(m.name)], baseline="m0", resamples=1000, seed=5)
    return {"tax": tax, "images": images, "preds": preds, "names": names, "result": result}


def _decisions(study: dict, m: int) -> tuple[np.ndarray, np.ndarray]:
    """(value per image, rows with a prediction) of model m, decided by the engine alone."""
    tax, images, pred = study["tax"], study["images"], study["preds"][m]
    rows = np.flatnonzero(pred >= 0)
    value = np.full(len(images), -1, np.int64)
    value[rows] = evaluate(tax, images.take(rows, pred[rows])).primary.value
    return value, rows


# ------------------------------------------------------------------ shared errors


def test_shared_errors_match_a_direct_count(study: dict) -> None:
    tax, images, preds, result = study["tax"], study["images"], study["preds"], study["result"]
    axis = tax.axes[tax.primary_axis]
    correct = axis.mla_correct
    pairs: Counter[tuple[str, int]] = Counter()
    category: dict[tuple[str, int], str] = {}
    wrong = Counter[str]()
    predicted = Counter[str]()
    for m in range(MODELS):
        value, rows = _decisions(study, m)
        for i in rows.tolist():
            if images.problematic[i]:
                continue
            name = images.images[i]
            predicted[name] += 1
            if not correct[value[i]]:
                key = (name, int(preds[m, i]))
                pairs[key] += 1
                category[key] = axis.values[value[i]].id
                wrong[name] += 1
    common = result.common_errors
    assert len(common) == len(pairs)
    got = {(str(r.image), int(r.pred)): r for r in common.itertuples(index=False)}
    for key, count in pairs.items():
        row = got[key]
        assert row.models_count == count and row.category == category[key]
        assert row.models_share == pytest.approx(count / predicted[key[0]])
        assert row.target == images.target[images.images.index(key[0])]
    assert list(common["models_count"]) == sorted(common["models_count"], reverse=True)
    per_image = result.image_errors.set_index("image")
    assert len(per_image) == int((~images.problematic).sum())
    for name in per_image.index:
        assert per_image.loc[name, "models_wrong"] == wrong[name]
    # the three images every model gets wrong, and nothing else
    every = {n for n in per_image.index if wrong[n] == MODELS}
    assert set(result.all_wrong["image"]) == every and len(every) >= 3


def test_study_writes_shared_error_files(study: dict, tmp_path: Path) -> None:
    paths = study["result"].write(tmp_path)
    common = pd.read_csv(paths["common_errors"])
    assert list(common.columns) == ["image", "target", "pred", "category", "models_count", "models_share"]
    assert len(common) == len(study["result"].common_errors)
    table = study["result"].table
    errors = table["all.samples"] - np.rint(table["all.samples"] * table["all.mla_share"])
    assert common["models_count"].sum() == errors.sum()
    images = pd.read_csv(paths["images"])
    assert list(images.columns) == ["image", "target", "models_wrong", "models_share"]


# ------------------------------------------------------------------ intervals


def test_clopper_pearson_covers_simulated_binomials() -> None:
    rng = np.random.default_rng(0)
    for p, n in ((0.02, 50), (0.3, 19), (0.5, 200), (0.9, 1000), (0.99, 300)):
        k = rng.binomial(n, p, size=4000)
        lo, hi = clopper_pearson(k, np.full_like(k, n))
        coverage = np.mean((lo <= p) & (p <= hi))
        assert 0.95 <= coverage <= 0.995, (p, n, coverage)  # exact: at least the nominal level


def test_models_table_shares_have_their_clopper_pearson_interval(study: dict) -> None:
    table = study["result"].table
    for cat in study["result"].categories:
        lo, hi = clopper_pearson(table[f"all.n.{cat}"], table["all.samples"])
        assert np.allclose(table[f"all.share.{cat}_lo"], lo) and np.allclose(table[f"all.share.{cat}_hi"], hi)
    for cat in study["result"].error_categories:
        errors = table["all.samples"] - table["all.samples"] * table["all.mla_share"]
        lo, _ = clopper_pearson(table[f"all.n.{cat}"], np.rint(errors))
        assert np.allclose(table[f"error_share.{cat}_lo"], lo, equal_nan=True)


def test_resample_weights_keep_every_stratum_size() -> None:
    strata = np.array([3, 1, 3, 3, 7, 1, 7, 3, 9])
    w = resample_weights(strata, 500, seed=1)
    for s in np.unique(strata):
        assert np.all(w[:, strata == s].sum(axis=1) == np.count_nonzero(strata == s))
    assert np.all(w[:, strata == 9] == 1)  # a stratum of one image is always itself
    assert np.array_equal(w, resample_weights(strata, 500, seed=1))  # seeded


def _class_mean(correct: np.ndarray, target: np.ndarray, weight: np.ndarray) -> float:
    """A per-class mean of a resample, by plain loops: per class, weighted correct / weighted images."""
    shares = []
    for c in sorted(set(target.tolist())):
        members = [i for i in range(len(target)) if target[i] == c]
        images = sum(weight[i] for i in members)
        shares.append(sum(weight[i] * correct[i] for i in members) / images)
    return float(np.mean(shares))


@pytest.mark.parametrize("by_class", [False, True])
def test_bootstrap_matches_a_loop_over_its_resamples(by_class: bool) -> None:
    rng = np.random.default_rng(3)
    n, models = 60, 4
    target = rng.integers(0, 5, n)
    # organisms by image, or by class (classes 0-1, whose images are all in the group) plus two images
    organism = (target < 2) | (np.arange(n) < 2) if by_class else rng.random(n) < 0.5
    artifact = (target >= 3) if by_class else ~organism
    masks = {"all": np.ones(n, bool), "organism_by_label": organism, "artifact_by_label": artifact}
    values = rng.integers(0, 4, (models, n))  # value v counted correct at level k when v <= k
    levels = np.array([[v <= k for v in range(4)] + [False] for k in range(3)])
    correct = levels[:, values]
    boot = bootstrap(values, levels, np.ones((models, n), bool), target, masks, resamples=40, seed=9)
    # the same resamples, recomputed by loops: strata are (group membership, target)
    pattern = (1 + 2 * organism.astype(int) + 4 * artifact.astype(int)) * 5 + target
    weights = resample_weights(pattern, 40, seed=9)
    for m in range(models):
        for k, stat in enumerate(("mla", "mla_minor", "mla_explainable")):
            for group, mask in masks.items():
                draws = [_class_mean(correct[k, m][mask], target[mask], weights[b][mask]) for b in range(40)]
                lo, hi = np.percentile(draws, [2.5, 97.5])
                assert boot.intervals[f"{group}.{stat}"][0][m] == pytest.approx(lo, abs=1e-6)
                assert boot.intervals[f"{group}.{stat}"][1][m] == pytest.approx(hi, abs=1e-6)


def test_bootstrap_interval_covers_the_true_class_mean() -> None:
    # 300 replicate "models" on the same 40 classes x 12 images, each image correct with its class' p
    rng = np.random.default_rng(11)
    classes, per_class, replicates = 40, 12, 300
    target = np.repeat(np.arange(classes), per_class)
    p = rng.uniform(0.4, 0.95, classes)
    correct = rng.random((replicates, target.shape[0])) < p[target]
    levels = np.array([[False, True, False]] * 3)  # value 1: correct at every level
    boot = bootstrap(correct.astype(np.int64), levels, np.ones_like(correct), target,
                     {"all": np.ones(target.shape[0], bool)}, resamples=1000, seed=2)
    lo, hi = boot.intervals["all.mla"]
    coverage = np.mean((lo <= p.mean()) & (p.mean() <= hi))
    assert 0.88 <= coverage <= 0.99, coverage  # percentile bootstrap: close to 95%


def test_baseline_differences_and_mcnemar(study: dict) -> None:
    result, preds, images = study["result"], study["preds"], study["images"]
    table = result.table
    assert result.baseline == "m0"
    tax = study["tax"]
    correct = tax.axes[tax.primary_axis].mla_correct
    base_value, base_rows = _decisions(study, 0)
    headline = ~images.problematic
    for m in range(MODELS):
        row = table.iloc[m]
        for stat in ("top1", "mla_share", "mla", "mla_minor", "mla_explainable"):
            assert row[f"vs_baseline.{stat}"] == pytest.approx(row[f"all.{stat}"] - table.iloc[0][f"all.{stat}"])
        value, rows = _decisions(study, m)
        both = headline.copy()
        both[np.setdiff1d(np.arange(len(images)), np.intersect1d(rows, base_rows))] = False
        top_m = preds[m] == images.target
        top_b = preds[0] == images.target
        assert row["vs_baseline.top1_p"] == pytest.approx(mcnemar_exact(top_m[both], top_b[both]).p_value)
        mla_m, mla_b = correct[value], correct[base_value]
        assert row["vs_baseline.mla_p"] == pytest.approx(mcnemar_exact(mla_m[both], mla_b[both]).p_value)
        if m == MODELS - 1:  # a prediction missing: no bootstrap interval
            assert np.isnan(row["vs_baseline.mla_lo"]) and np.isnan(row["all.mla_lo"])
        else:
            assert row["vs_baseline.mla_lo"] <= row["vs_baseline.mla"] <= row["vs_baseline.mla_hi"]
            assert row["all.mla_lo"] <= row["all.mla"] <= row["all.mla_hi"]
            assert row["organism_by_label.mla_lo"] <= row["organism_by_label.mla"] <= row["organism_by_label.mla_hi"]
    assert table.iloc[0]["vs_baseline.mla_lo"] == 0 and table.iloc[0]["vs_baseline.mla_p"] == 1


def test_vectorised_mcnemar_matches_the_exact_test() -> None:
    rng = np.random.default_rng(5)
    for _ in range(30):
        a, b = rng.random(40) < 0.6, rng.random(40) < 0.5
        only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
        assert mcnemar_p(np.array([only_a]), np.array([only_b]))[0] == pytest.approx(mcnemar_exact(a, b).p_value)


def test_linear_trend_against_scipy() -> None:
    rng = np.random.default_rng(4)
    x = rng.uniform(0.6, 0.9, 50)
    y = 0.2 + 0.5 * x + rng.normal(0, 0.02, 50)
    fit = linear_trend(x, y)
    ref = stats.linregress(x, y)
    t = stats.t.ppf(0.975, 48)
    assert fit["slope"] == pytest.approx(ref.slope) and fit["intercept"] == pytest.approx(ref.intercept)
    assert fit["slope_lo"] == pytest.approx(ref.slope - t * ref.stderr)
    assert fit["at_0.90"] == pytest.approx(ref.intercept + 0.9 * ref.slope)
    assert fit["at_0.90_lo"] < fit["at_0.90"] < fit["at_0.90_hi"]
    assert np.isnan(linear_trend([0.5, 0.6], [0.1, 0.2])["slope"])


def test_report_trends_and_shared_sections(study: dict, tmp_path: Path) -> None:
    from errortaxa.study.report import write_report

    paths = write_report(study["result"], tmp_path)
    trends = pd.read_csv(paths["trends"])
    assert set(trends["plot"]) == {"error_share_vs_mla", "organism_vs_artifact"}
    table = study["result"].table
    first = trends[trends["plot"] == "error_share_vs_mla"].iloc[0]
    ref = linear_trend(table["all.mla"], table[f"error_share.{first['panel']}"])
    assert first["slope"] == pytest.approx(ref["slope"])
    page = Path(paths["report"]).read_text(encoding="utf-8")
    assert "id='shared-errors'" in page and "id='all-wrong'" in page and "class='trends'" in page


def test_cli_baseline_must_name_a_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from errortaxa.cli import main

    tax = default_compiled()
    images = make_images(tax, 50, seed=1)
    full = np.zeros(50_000, np.int16)
    full[:50] = make_predictions(tax, images, 1, seed=2)[0]
    np.savez(tmp_path / "a.npz", top1=full)
    labels = tmp_path / "labels.csv"
    labels.write_text("id,original_label,proposed_labels,unclear_multi_labels,is_problematic\n" + "".join(
        f"{images.images[i]},{images.target[i]},{images.target[i]},,False\n" for i in range(50)))
    code = main(["study", str(tmp_path / "a.npz"), "--labels", str(labels), "--out", str(tmp_path / "o"),
                 "--baseline", "zzz", "--no-progress"])
    assert code == 2
    assert "--baseline 'zzz': no such model" in capsys.readouterr().err


# ------------------------------------------------------------------ error consistency


def _kappa_loops(a: list[bool], b: list[bool], both: list[bool]) -> tuple[int, float, float, float]:
    """Cohen's kappa of two indicator lists over the images both predict, by plain loops."""
    n = agree = ones_a = ones_b = 0
    for x, y, shared in zip(a, b, both, strict=True):
        if not shared:
            continue
        n += 1
        agree += x == y
        ones_a += x
        ones_b += y
    observed = agree / n
    expected = (ones_a / n) * (ones_b / n) + (1 - ones_a / n) * (1 - ones_b / n)
    kappa = (observed - expected) / (1 - expected) if expected < 1 else float("nan")
    return n, kappa, observed, expected


@pytest.mark.parametrize("missing", [False, True])
def test_error_consistency_against_two_loops(study: dict, missing: bool, tmp_path: Path) -> None:
    tax, images, names = study["tax"], study["images"], study["names"]
    preds = study["preds"].copy()
    if not missing:
        preds[preds < 0] = 0  # every model predicts every image: the one-product path
    result = run_study(tax, ImageSet(images), [ModelFile(n, "") for n in names], progress=False, resamples=0,
                       predictions=lambda m: preds[names.index(m.name)], consistency=True)
    pairs = result.consistency.frame(names)
    assert len(pairs) == MODELS * (MODELS - 1) // 2
    headline = ~images.problematic
    decided = [_decisions({**study, "preds": preds}, m)[0] for m in range(MODELS)]
    axis = tax.axes[tax.primary_axis]
    for row in pairs.itertuples(index=False):
        a, b = names.index(row.model_a), names.index(row.model_b)
        both = (headline & (preds[a] >= 0) & (preds[b] >= 0)).tolist()
        err_a = (preds[a] != images.target).tolist()
        err_b = (preds[b] != images.target).tolist()
        n, kappa, observed, expected = _kappa_loops(err_a, err_b, both)
        assert row.images == n
        assert row.kappa == pytest.approx(kappa) and row.observed == pytest.approx(observed)
        assert row.expected == pytest.approx(expected)
        for cat in result.error_categories:
            j = [v.id for v in axis.values].index(cat)
            n, kappa, observed, _ = _kappa_loops((decided[a] == j).tolist(), (decided[b] == j).tolist(), both)
            record = pairs.loc[(pairs.model_a == row.model_a) & (pairs.model_b == row.model_b)].iloc[0]
            assert record[f"observed.{cat}"] == pytest.approx(observed)
            assert record[f"kappa.{cat}"] == pytest.approx(kappa, nan_ok=True)
    paths = result.write(tmp_path, csv=True)
    assert pd.read_parquet(paths["error_consistency"]).shape == pairs.shape
    assert pd.read_csv(paths["error_consistency_csv"]).shape == pairs.shape


def test_identical_models_are_fully_consistent() -> None:
    from errortaxa.study.consistency import error_consistency

    rng = np.random.default_rng(1)
    errors = rng.random((3, 200)) < 0.3
    errors[1] = errors[0]
    errors[2] = ~errors[0]
    c = error_consistency(errors, np.ones_like(errors))
    assert c.kappa[0, 1] == pytest.approx(1.0) and c.observed[0, 2] == 0 and c.kappa[0, 2] < 0


# ------------------------------------------------------------------ MLA figures a rule not evaluated might change


def test_mla_figures_say_what_an_unevaluated_rule_might_change(study: dict) -> None:
    """No OOV provider: the minor and explainable figures count fine_grained_oov's value (minor)
    correct, so an error that fell through it might have counted; plain MLA counts nothing after it."""
    tax, images, names = study["tax"], study["images"], study["names"]
    table = study["result"].table.set_index("model")
    axis = tax.axes[tax.primary_axis]
    oov = axis.rule_ids.index("fine_grained_oov")
    tags = [set(v.tags) for v in axis.values]
    counted = {"mla": {"mla_correct"}, "mla_minor": {"mla_correct", "minor"},
               "mla_explainable": {"mla_correct", "minor", "explainable"}}
    for m, name in enumerate(names):
        value, rows = _decisions(study, m)
        pred = study["preds"][m]
        skipped = evaluate(tax, images.take(rows, pred[rows])).primary.rule_not_evaluated(oov)
        for stat, correct in counted.items():
            oov_counts = bool(tags[axis.rules[oov].value] & correct)
            want = sum(1 for i, row in enumerate(rows.tolist()) if skipped[i] and not images.problematic[row]
                       and bool(tags[value[row]] & correct) != oov_counts)
            assert table.loc[name, f"all.{stat}_not_evaluated"] == want, (name, stat)
    assert (table["all.mla_not_evaluated"] == 0).all() and (table["all.mla_minor_not_evaluated"] > 0).all()


def test_an_unevaluated_rule_changes_mla_on_exactly_the_images_counted(tmp_path: Path) -> None:
    """A sample-list rule giving an MLA-correct value, before the errors: without its list it is not
    evaluated; with a list of every image it holds wherever it is reached. The images whose MLA count
    differs between the two studies are the ones the first counted as ``mla_not_evaluated``."""
    from errortaxa.engine.compile.compiler import compile_path
    from errortaxa.engine.language.loader import rules_dir

    source = rules_dir() / "imagenet"
    text = (source / "peychev2023.yaml").read_text()
    text = text.replace("resources:\n", "resources:\n  listed: {kind: sample_list, file: listed.txt, optional: true, "
                                         "source: this test}\n", 1)
    rule = "      - id: fine_grained_oov\n        description: Step 6"
    assert text.count(rule) == 1
    text = text.replace(rule, "      - id: listed\n        when: {in_sample_list: listed}\n"
                              "        then: multi_label\n" + rule)
    (tmp_path / "non_prototypical.txt").write_text((source / "non_prototypical.txt").read_text())
    (tmp_path / "mine.yaml").write_text(text)
    tax = default_compiled()
    images = make_images(tax, 600, seed=31)
    preds = make_predictions(tax, images, 4, seed=32).astype(np.int32)
    names = [f"m{i}" for i in range(4)]

    def decide() -> tuple[pd.DataFrame, np.ndarray]:
        mine = compile_path(tmp_path / "mine.yaml")
        result = run_study(mine, ImageSet(images), [ModelFile(n, "") for n in names], progress=False, resamples=0,
                           predictions=lambda m: preds[names.index(m.name)])
        axis = mine.axes[mine.primary_axis]
        counted = np.stack([axis.mla_correct[evaluate(mine, images.take(np.arange(len(images)), p)).primary.value]
                            for p in preds])
        return result.table.set_index("model"), counted

    without, counted_without = decide()
    (tmp_path / "listed.txt").write_text("".join(f"{name}\n" for name in images.images))
    with_list, counted_with = decide()
    headline = ~images.problematic
    changed = ((counted_without != counted_with) & headline[None, :]).sum(axis=1)
    assert (changed > 0).all()
    assert without["all.mla_not_evaluated"].tolist() == changed.tolist()
    assert (with_list["all.mla_not_evaluated"] == 0).all() and (with_list["all.mla"] > without["all.mla"]).all()
    for group in ("organism_by_label", "artifact_by_label"):
        assert (without[f"{group}.mla_not_evaluated"] <= without["all.mla_not_evaluated"]).all()


# ------------------------------------------------------------------ per class and superclass


def test_classes_match_a_direct_count(study: dict, tmp_path: Path) -> None:
    tax, images, preds, names = study["tax"], study["images"], study["preds"], study["names"]
    result = run_study(tax, ImageSet(images), [ModelFile(n, "") for n in names], progress=False, resamples=0,
                       predictions=lambda m: preds[names.index(m.name)], classes=True, worst_k=3, min_images=2)
    breakdown = result.classes
    axis = tax.axes[tax.primary_axis]
    ids = [v.id for v in axis.values]
    table = breakdown.classes.set_index(["model", "class"])
    for m in (0, MODELS - 1):
        value, rows = _decisions(study, m)
        per_class: dict[int, Counter[str]] = {}
        for i in rows.tolist():
            if not images.problematic[i]:
                per_class.setdefault(int(images.target[i]), Counter())[ids[value[i]]] += 1
        got = table.loc[names[m]]
        assert sorted(got.index) == sorted(per_class)
        expected_rank = []
        for c, counter in per_class.items():
            n = sum(counter.values())
            k = sum(counter[v.id] for v in axis.values if "mla_correct" in v.tags)
            row = got.loc[c]
            assert row["images"] == n and row["mla"] == pytest.approx(k / n)
            lo, hi = clopper_pearson(k, n)
            assert row["mla_lo"] == pytest.approx(float(lo)) and row["mla_hi"] == pytest.approx(float(hi))
            assert row["wnid"] == tax.vocabulary.wnids[c]
            for v in ids:
                assert row[f"n.{v}"] == counter[v]
            if n >= 2:
                expected_rank.append((float(hi), k / n, c))
        worst = breakdown.worst[breakdown.worst["model"] == names[m]]
        assert list(worst["class"]) == [c for _, _, c in sorted(expected_rank)[:3]]
        assert list(worst["rank"]) == [1, 2, 3]
        supers = breakdown.superclasses[breakdown.superclasses["model"] == names[m]].set_index("superclass")
        for s, name in enumerate(tax.superclass_names[:40]):
            members = set(np.flatnonzero(tax.membership[:, s]).tolist())
            n = sum(sum(per_class[c].values()) for c in members if c in per_class)
            if n == 0:
                assert name not in supers.index
                continue
            assert supers.loc[name, "images"] == n
            shares = [got.loc[c, "mla"] for c in members if c in per_class]
            assert supers.loc[name, "mla"] == pytest.approx(np.mean(shares))
            assert supers.loc[name, "classes"] == len(shares)
    paths = result.write(tmp_path)
    assert pd.read_parquet(paths["classes"]).shape == breakdown.classes.shape
    assert list(pd.read_csv(paths["worst_classes"]).columns) == ["model", "rank", "class", "wnid", "name", "images",
                                                                 "mla", "mla_lo", "mla_hi"]


def test_cli_writes_every_analysis(tmp_path: Path) -> None:
    from errortaxa.cli import main
    from errortaxa.providers.imagenet_x.annotations import package_file

    tax = default_compiled()
    images = make_images(tax, 300, seed=7)
    labels = tmp_path / "labels.csv"
    labels.write_text("id,original_label,proposed_labels,unclear_multi_labels,is_problematic\n" + "".join(
        f"{images.images[i]},{images.target[i]},\"{', '.join(map(str, images.labels_of(i)))}\",,"
        f"{bool(images.problematic[i])}\n" for i in range(len(images))))
    src = tmp_path / "models"
    src.mkdir()
    for m, pred in enumerate(make_predictions(tax, images, 3, seed=8)):
        full = np.zeros(50_000, np.int16)
        full[: len(images)] = pred
        np.savez(src / f"m{m}.npz", top1=full)
    out = tmp_path / "out"
    factors = ["--factors", "imagenet_x"] if package_file() is not None else []
    assert main(["study", str(src), "--labels", str(labels), "--out", str(out), "--no-progress", "--report",
                 "--baseline", "m1", "--consistency", "--classes", "--csv", "--resamples", "200", "--seed", "3",
                 *factors]) == 0
    for name in ("common_errors.csv", "images.csv", "trends.csv", "error_consistency.parquet",
                 "error_consistency.csv", "classes.parquet", "classes.csv", "superclasses.parquet",
                 "worst_classes.csv", "error_consistency.png", "report.html"):
        assert (out / name).is_file(), name
    table = pd.read_parquet(out / "models.parquet")
    assert table.loc[table["model"] == "m1", "vs_baseline.mla"].iloc[0] == 0
    assert table["all.mla_lo"].notna().all()
    if factors:
        assert (out / "factors.csv").is_file() and (out / "factors.png").is_file()
