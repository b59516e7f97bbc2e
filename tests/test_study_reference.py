"""The reference tables of a study against an independent, row-by-row re-implementation of the
reference's aggregation (written from reading eth-sri/automated-error-analysis src/evaluation.py),
and the group sizes on the real multi-label images against the published tables."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from errortaxa.engine import CompiledTaxonomy, SampleBatch, default_compiled, evaluate
from errortaxa.engine.features import FeatureResult
from errortaxa.engine.knowledge.vocabulary import Vocabulary
from errortaxa.engine.knowledge.wordnet import WordNet
from errortaxa.study.models import ImageSet, ModelFile
from errortaxa.study.reference import COUNT_COLUMNS, GROUPS, ReferenceTablesError, reference_tables
from errortaxa.study.study import run_study

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from synthetic import make_images, make_predictions

# the reference's error types, by our default taxonomy's value ids
REFERENCE_TYPE = {
    "correct": "correct", "overlapping_classes": "collapsed", "multi_label": "multi_label",
    "fine_grained": "same_superclass", "fine_grained_oov": "oov", "spurious_correlation": "co_occ",
    "non_prototypical": "non_proto", "model_failure": "not_classified",
}
COLUMN_OF_TYPE = {"collapsed": "num_collapsed_mappings", "multi_label": "num_ambiguous",
                  "same_superclass": "num_same_superclass", "co_occ": "num_common_co_occ",
                  "non_proto": "num_non_prototypical", "oov": "num_OOV_clip", "not_classified": "num_not_classified"}


class HashOOV:
    """A deterministic stand-in for the open-world model: the error is OOV for a fixed fifth of the
    (target, prediction) pairs. A real provider implementation (the protocol is the interface)."""

    name = "oov"

    def evaluate(self, test: str, params: Mapping[str, Any], batch: SampleBatch, rows: np.ndarray) -> FeatureResult:
        holds = (batch.target[rows].astype(np.int64) * 7 + batch.pred[rows]) % 5 == 0
        return FeatureResult(holds, np.ones(rows.shape[0], bool), [None] * rows.shape[0], [None] * rows.shape[0])


def _lemma_group_classes(vocab: Vocabulary) -> dict[str, set[int]]:
    """As the reference: a class is in a group when a lemma name on its hypernym paths is the group's."""
    wn = WordNet.load()
    groups: dict[str, set[int]] = {"all": set(), "organism": set(), "artifact": set(), "other": set()}
    for c, wnid in enumerate(vocab.wnids):
        nodes = {node for path in wn.hypernym_paths(wnid) for node in path}
        lemmas = {lemma for node in nodes for lemma in wn.graph.nodes[node]["lemmas"]}
        groups["all"].add(c)
        if "organism" in lemmas:
            groups["organism"].add(c)
        if "artifact" in lemmas:
            groups["artifact"].add(c)
        if "organism" not in lemmas and "artifact" not in lemmas:
            groups["other"].add(c)
    return groups


def _compute_mla(rows: list[dict[str, Any]], method: str) -> float:
    """The TFDS / reference multi-label accuracy: per target class, then averaged, in percent."""
    correct_types = {"correct", "collapsed", "multi_label"}
    if method in ("minor", "explainable"):
        correct_types |= {"same_superclass", "oov"}
    if method == "explainable":
        correct_types |= {"non_proto", "co_occ"}
    per_class_correct: dict[int, int] = {}
    per_class_images: dict[int, int] = {}
    for row in rows:
        per_class_images[row["target"]] = per_class_images.get(row["target"], 0) + 1
        per_class_correct[row["target"]] = per_class_correct.get(row["target"], 0) + (row["type"] in correct_types)
    total = 0.0
    for c in per_class_correct:
        total += per_class_correct[c] / per_class_images[c]
    return 100.0 * total / len(per_class_correct)


def _reference_rows(tax: CompiledTaxonomy, images: SampleBatch, pred: np.ndarray, providers: Any,
                    listed: set[str], groups: dict[str, set[int]]) -> dict[str, dict[str, Any]]:
    decided = evaluate(tax, images.take(np.arange(len(images)), pred), providers).primary.value_names()
    model_rows = []
    for i in range(len(images)):
        if images.problematic[i]:
            continue
        model_rows.append({"file": images.images[i], "target": int(images.target[i]), "top1": int(pred[i]),
                           "labels": images.labels_of(i), "type": REFERENCE_TYPE[str(decided[i])]})
    out = {}
    mla_all = [_compute_mla(model_rows, m) for m in ("no_error", "minor", "explainable")]
    all_errors = sum(r["top1"] != r["target"] for r in model_rows)
    for group, allowed in groups.items():
        rows = [r for r in model_rows if any(label in allowed for label in r["labels"])]
        summary: dict[str, Any] = {
            "num_all_samples": len(model_rows), "num_group_samples": len(rows),
            "num_group_correct": sum(r["type"] == "correct" for r in rows),
            "num_all_top1_errors": all_errors, "num_group_top1_errors": sum(r["top1"] != r["target"] for r in rows),
            "mla_all": mla_all[0], "mla_all_minor_error": mla_all[1], "mla_all_explainable_error": mla_all[2],
            "mla_group": _compute_mla(rows, "no_error"), "mla_group_minor_error": _compute_mla(rows, "minor"),
            "mla_group_explainable_error": _compute_mla(rows, "explainable"),
        }
        for kind, column in COLUMN_OF_TYPE.items():
            summary[column] = sum(r["type"] == kind for r in rows)
        listed_rows = [r for r in rows if r["file"] in listed]
        summary["num_all_imagenet-m_samples"] = sum(r["file"] in listed for r in model_rows)
        summary["num_group_imagenet-m_samples"] = len(listed_rows)
        summary["num_imagenet-m_errors"] = sum(r["top1"] not in r["labels"] for r in listed_rows)
        assert summary["num_group_samples"] == summary["num_group_correct"] + summary["num_group_top1_errors"]
        assert summary["num_group_top1_errors"] == sum(summary[c] for c in COLUMN_OF_TYPE.values())
        out[group] = summary
    return out


@pytest.fixture(scope="module")
def generated() -> dict[str, Any]:
    tax = default_compiled()
    images = make_images(tax, 4000, seed=11)
    preds = make_predictions(tax, images, 5, seed=12).astype(np.int32)
    names = [f"model{m}" for m in range(5)]
    meta = pd.DataFrame({"model": names, "arch": ["cnn", "vit", "cnn", "mlp", "vit"], "num_params": [1, 2, 3, 4, 5]})
    listed = list(images.images[:80:2])

    def study(providers: Any) -> Any:
        return run_study(tax, ImageSet(images), [ModelFile(n, "") for n in names], metadata=meta,
                         image_list=listed, predictions=lambda m: preds[int(m.name[5:])], progress=False,
                         providers=providers)

    return {"tax": tax, "images": images, "preds": preds, "listed": set(listed), "study": study,
            "groups": _lemma_group_classes(tax.vocabulary)}


def test_reference_tables_equal_a_row_by_row_reimplementation(generated: dict[str, Any]) -> None:
    tax, images, preds = generated["tax"], generated["images"], generated["preds"]
    providers = {"oov": HashOOV()}
    tables = reference_tables(generated["study"](providers), tax)
    assert list(tables) == ["all", "organism", "artifact", "other"]
    for group, table in tables.items():
        assert list(table.columns[:3]) == ["model_dir_id", "arch", "num_params"]
        assert "top1_val_acc" not in table.columns  # no --val-labels on ImageNet: absent
        for m in range(len(preds)):
            expected = _reference_rows(tax, images, preds[m], providers, generated["listed"], generated["groups"])
            row = table.iloc[m]
            assert row["model_dir_id"] == f"model{m}"
            for column, value in expected[group].items():
                if isinstance(value, float):
                    assert abs(float(row[column]) - value) <= 1e-9, (group, m, column)
                else:
                    assert int(row[column]) == value, (group, m, column)
            assert int(row["num_OOV_clip"]) > 0 or group == "other"


def test_reference_tables_leave_unevaluated_counts_empty(generated: dict[str, Any], tmp_path: Path) -> None:
    from errortaxa.study.reference import write_reference_tables

    result = generated["study"](None)  # no OOV provider: fine_grained_oov is never evaluated
    paths = write_reference_tables(result, generated["tax"], tmp_path)
    for group in ("all", "organism", "artifact", "other"):
        text = Path(paths[f"reference_{group}"]).read_text()
        header = text.splitlines()[0].split(",")
        assert header[header.index("num_non_prototypical") + 1] == "num_OOV_clip"
        table = pd.read_csv(paths[f"reference_{group}"])
        assert table["num_OOV_clip"].isna().all()  # empty, never 0
        # and the MLA figures its minor errors would change (not plain MLA: it counts nothing after the rule)
        unsure = result.table[f"{GROUPS[group]}.mla_minor_not_evaluated"] > 0
        assert unsure.any() and table["mla_group_minor_error"].isna().tolist() == unsure.tolist()
        assert table["mla_all_minor_error"].isna().all() and table["mla_group"].notna().all()
        assert (table["num_not_classified"] > 0).all() and table["mla_all"].between(0, 100).all()
        # the other counts still add up: top-1 errors = the evaluated categories
        others = [c for c in COUNT_COLUMNS if c != "num_OOV_clip"]
        assert (table["num_group_top1_errors"] == table[others].sum(axis=1)).all()


def test_reference_tables_need_reference_columns(generated: dict[str, Any], tmp_path: Path) -> None:
    from errortaxa.engine.compile.compiler import compile_path
    from errortaxa.engine.language.loader import rules_dir

    text = (rules_dir() / "imagenet" / "peychev2023.yaml").read_text().replace(
        "        reference_column: num_same_superclass\n", "")
    (tmp_path / "non_prototypical.txt").write_text("ILSVRC2012_val_00003189.JPEG\n")
    (tmp_path / "mine.yaml").write_text(text)
    mine = compile_path(tmp_path / "mine.yaml")
    with pytest.raises(ReferenceTablesError, match="fine_grained"):
        reference_tables(generated["study"](None), mine)


def test_group_sizes_on_the_real_images_equal_the_published_ones(shared_data: Path) -> None:
    from errortaxa.engine.inputs.formats.multilabel_csv import load_multilabel_csv

    tax = default_compiled()
    labels = load_multilabel_csv(shared_data / "imagenet2012_multilabel_validation.csv")
    images = ImageSet.from_labels(labels)
    result = run_study(tax, images, [ModelFile("oracle", "")], predictions=lambda m: labels.target.copy(),
                       progress=False)
    tables = reference_tables(result, tax)
    # stats-imagenet/non_problematic_stats_*.csv of eth-sri/automated-error-analysis, every model
    published = {"all": 18692, "organism": 7624, "artifact": 10184, "other": 1596}
    for group, size in published.items():
        row = tables[group].iloc[0]
        assert row["num_all_samples"] == 18692 and row["num_group_samples"] == size, group
        assert row["num_group_correct"] == size and row["mla_group"] == 100.0
