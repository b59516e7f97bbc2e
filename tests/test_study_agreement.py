"""Agreement with an external categorisation in the google-research/imagenet-mistakes format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from errortaxa.cli import main
from errortaxa.engine import compile_path
from errortaxa.engine.inputs import LabeledImages, read_sample_list
from errortaxa.study.agreement import EXTERNAL_CATEGORIES, agreement, format_agreement, normalise, read_external
from scipy.stats import beta

ROOT = Path(__file__).resolve().parents[1]
SEVERITY = ROOT / "rules" / "imagenet" / "vasudevan2022_severity.yaml"

# Entries as in metadata/vit3b_mistakes.json and greedy_soups_mistakes.json (keys with spaces, the
# files' category and severity vocabulary), with each image's original label and correct labels
# from the multi-label CSV.
REAL = {
    "ILSVRC2012_val_00000612.JPEG": ({"top_prediction": 192, "failure category": "Fine-grained error",
                                      "failure severity": "Minor"}, 186, [186]),
    "ILSVRC2012_val_00001409.JPEG": ({"top_prediction": 843, "failure category": "Fine-grained error",
                                      "failure severity": "Major"}, 872, [872]),
    "ILSVRC2012_val_00002021.JPEG": ({"top_prediction": 198, "failure category": "Fine-grained error",
                                      "failure severity": "Borderline"}, 196, [196]),
    "ILSVRC2012_val_00003699.JPEG": ({"top_prediction": 937, "failure category": "Fine-grained error with OOV",
                                      "failure severity": "Minor"}, 938, [938]),
    "ILSVRC2012_val_00003189.JPEG": ({"top_prediction": 29, "failure category": "Non-prototypical",
                                      "failure severity": "Borderline"}, 26, [26]),
    "ILSVRC2012_val_00011933.JPEG": ({"top_prediction": 804, "failure category": "Spurious Correlation",
                                      "failure severity": "Major"}, 414, [414, 896]),
    "ILSVRC2012_val_00039424.JPEG": ({"top_prediction": 904, "failure category": "Fine-grained with Multilabel Options",
                                      "failure severity": "Major"}, 825, [825, 905]),
    "ILSVRC2012_val_00003209.JPEG": ({"top_prediction": 444, "failure category": "Fine-grained with OOV",
                                      "failure severity": "Major"}, 920, [518, 920]),
}


def _labels(rows: dict[str, tuple[int, list[int]]]) -> LabeledImages:
    names = list(rows)
    return LabeledImages.from_lists(images=names, target=[rows[n][0] for n in names],
                                    labels=[rows[n][1] for n in names])


def test_agreement_on_the_real_format(tmp_path: Path) -> None:
    path = tmp_path / "vit3b_mistakes.json"
    path.write_text(json.dumps({
        **{name: entry for name, (entry, _, _) in REAL.items()},
        "ILSVRC2012_val_00000413.JPEG": {"top_prediction": 807, "failure category": "Fine-grained error with OOV",
                                         "failure severity": "Major"},  # not in the label file: skipped
    }))
    tax = compile_path(SEVERITY)
    assert set(EXTERNAL_CATEGORIES.values()) <= set(tax.axes[tax.primary_axis].value_ids)
    result = agreement(tax, _labels({n: (t, ls) for n, (_, t, ls) in REAL.items()}), read_external([path]))
    assert (result["entries"], result["compared"], result["skipped"]) == (9, 8, 1)
    cat = result["category"]
    # without an OOV model, 3209 (external: fine-grained OOV) reaches the unevaluated OOV rule: left
    # out and reported, not a disagreement; 3699 is decided fine-grained before it, a disagreement
    assert result["not_evaluated"] == {"fine_grained_oov": 1}
    assert cat["external"] == ["fine_grained", "fine_grained_oov", "non_prototypical", "spurious_correlation"]
    assert cat["taxonomy"] == ["fine_grained", "model_failure", "spurious_correlation"]
    assert cat["matrix"] == [[3, 1, 0], [1, 0, 0], [1, 0, 0], [0, 0, 1]]
    assert cat["same"] == 4 and cat["agreement"] == pytest.approx(4 / 7)
    fine = result["per_category"]["fine_grained"]["category"]
    assert (fine["entries"], fine["same"], fine["agreement"]) == (4, 3, 0.75)
    # Clopper-Pearson for 3 of 4: the beta quantiles, computed here directly
    assert fine["agreement_lo"] == pytest.approx(beta.ppf(0.025, 3, 2))
    assert fine["agreement_hi"] == pytest.approx(beta.ppf(0.975, 4, 1))
    # Cohen's kappa by hand: observed 4/7; expected (4*5 + 1*1) / 49 (fine-grained 4 vs 5, spurious 1 vs 1)
    assert cat["kappa"] == pytest.approx((4 / 7 - 21 / 49) / (1 - 21 / 49))
    assert cat["agreement_lo"] == pytest.approx(beta.ppf(0.025, 4, 4))
    info = result["sample_lists"]["non_prototypical"]
    assert info["images"] == 36 and info["found"].endswith("non_prototypical.txt")
    assert "imagenet-mistakes" in info["source"] and info["category"] == "non_prototypical"
    assert (info["in_external"], info["external_same_category"], info["derived_from_external"]) == (1, 1, False)
    sev = result["severity"]  # "Borderline" counts as minor (the paper's analysis)
    assert sev["external"] == ["major", "minor"] and sev["taxonomy"] == ["major", "minor"]
    assert sev["matrix"] == [[1, 3], [0, 4]] and sev["borderline_as_minor"] == 2
    assert sev["agreement"] == pytest.approx(5 / 8)
    assert sev["kappa"] == pytest.approx((5 / 8 - 0.5) / 0.5)  # expected (4*1 + 4*7) / 64
    per_severity = result["per_severity"]
    assert set(per_severity) == {"major", "minor"}
    assert (per_severity["major"]["severity"]["same"], per_severity["major"]["severity"]["entries"]) == (1, 4)
    assert (per_severity["minor"]["severity"]["same"], per_severity["minor"]["severity"]["entries"]) == (4, 4)
    assert per_severity["minor"]["severity"]["agreement_hi"] == 1.0
    # per severity, the category agreement on the compared (evaluated) entries of that severity
    assert sum(b["category"]["entries"] for b in per_severity.values()) == 7
    assert sum(b["category"]["same"] for b in per_severity.values()) == cat["same"]
    assert "Cohen's kappa 0.250" in format_agreement(result)


def test_agreement_says_when_a_sample_list_is_the_experts_own(tmp_path: Path) -> None:
    from errortaxa.engine.language.loader import rules_dir

    listed = sorted(read_sample_list(rules_dir() / "imagenet" / "non_prototypical.txt"))
    # every image of the shipped list, as the expert files have it, predicted as an unrelated class
    external = {name: {"top_prediction": 999, "failure category": "Non-prototypical"} for name in listed}
    labels = LabeledImages.from_lists(images=listed, target=[0] * len(listed), labels=[[0]] * len(listed))
    path = tmp_path / "greedy_soups_mistakes.json"
    path.write_text(json.dumps(external))
    result = agreement(compile_path(SEVERITY), labels, read_external([path]), sources=[str(path)])
    assert result["category"]["agreement"] == 1.0  # circular: the list is the experts' own
    assert result["category_without_sample_lists"]["taxonomy"] == ["model_failure"]
    assert result["category_without_sample_lists"]["agreement"] == 0.0
    info = result["sample_lists"]["non_prototypical"]
    assert info["in_external"] == info["external_same_category"] == 36 and info["derived_from_external"]
    assert result["external_files"] == [str(path)]
    assert "partly circular" in format_agreement(result)


def test_agreement_tolerates_aliases(tmp_path: Path) -> None:
    names = [f"ILSVRC2012_val_{i:08d}.JPEG" for i in (1, 2, 3, 4)]
    labels = LabeledImages.from_lists(images=names, target=[207, 207, 1, 1], labels=[[207], [207], [1], [1]])
    external = {
        "ILSVRC2012_val_00000001.JPEG": {"top_prediction": 817, "category": "model failure", "severity": "major"},
        "ILSVRC2012_val_00000002": {"top_prediction": "sports_car.n.01", "category": "fine-grained",
                                    "severity": "minor"},
        "ILSVRC2012_val_00000003.JPEG": {"top_prediction": "n04285008", "failure_category": "Model Failure",
                                         "failure_severity": "MAJOR"},
    }
    path = tmp_path / "x_mistakes.json"
    path.write_text(json.dumps(external))
    result = agreement(compile_path(SEVERITY), labels, read_external([path]))
    assert (result["compared"], result["skipped"]) == (3, 0)
    cat = result["category"]
    assert cat["external"] == ["fine_grained", "model_failure"] and cat["taxonomy"] == ["model_failure"]
    assert cat["matrix"] == [[1], [2]] and cat["agreement"] == pytest.approx(2 / 3)
    assert result["severity"]["matrix"] == [[2], [1]]
    assert normalise("Fine-grained with OOD") == "fine_grained_oov"
    assert normalise("Fine-grained error with out-of-vocabulary object") == "fine_grained_oov"
    assert normalise("Food") == "food"  # only the token 'ood' means OOV


def test_agreement_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "multi.csv"
    csv.write_text("id,category,original_label,proposed_labels,manually_validated,unclear_multi_labels,"
                   "wrong_multi_labels,is_problematic\n"
                   'ILSVRC2012_val_00000612.JPEG,A,186,186,True,,192,False\n')
    ext = tmp_path / "m.json"
    ext.write_text(json.dumps({"ILSVRC2012_val_00000612.JPEG": REAL["ILSVRC2012_val_00000612.JPEG"][0]}))
    out = tmp_path / "a.json"
    assert main(["agreement", str(ext), "--labels", str(csv), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "agreement: 1 (100.0%, 95% CI 2.5%-100.0%)" in printed and f"external files: {ext}" in printed
    assert "sample list 'non_prototypical' (36 images" in printed and "imagenet-mistakes" in printed
    data = json.loads(out.read_text())
    assert data["category"]["matrix"] == [[1]] and data["category"]["external"] == ["fine_grained"]
