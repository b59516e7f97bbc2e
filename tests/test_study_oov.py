"""Studies with the OOV provider: every model classified in one pass, the OOV features shared.

A tiny randomly initialised open_clip model on the CPU, generated images and a small kNN index (as in
tests/test_oov_pipeline.py); nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("open_clip")
import yaml
from errortaxa.cli import main
from errortaxa.engine import CompiledTaxonomy, SampleBatch, compile_path, default_compiled, evaluate, summarize
from errortaxa.engine.features import FeatureResult
from errortaxa.engine.providers import registry
from errortaxa.engine.providers.factory import ProviderUnavailable
from errortaxa.providers.oov.knn import build_index
from errortaxa.study.models import ImageSet, discover_models
from errortaxa.study.study import run_study
from errortaxa.study.tabulate import Tabulator
from test_oov_pipeline import TINY, write_images

LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to reach another host fails the test (loopback stays open for Ray)."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in LOOPBACK:
            raise AssertionError(f"network access attempted: {address}")
        real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


# (target, prediction) pairs whose errors reach fine_grained_oov in the default taxonomy: no label
# shares a superclass with the prediction, no overlap, no co-occurrence (checked in the fixture)
SWING, ROCK_BEAUTY, WARDROBE, AIRCRAFT_CARRIER = 843, 392, 894, 403
TARGETS = [872, 973, 651, 471, 189, 207, 872, 973]  # tripod, coral reef, microwave, cannon, terrier, retriever
INDEXED = (SWING, ROCK_BEAUTY)  # the kNN index holds these classes only: the gate passes for them alone
# per model, its prediction on each image; image 7 has no file (its OOV rows are "not evaluated")
PREDS = np.array([
    [SWING, ROCK_BEAUTY, WARDROBE, AIRCRAFT_CARRIER, 190, 207, 872, SWING],
    [SWING, ROCK_BEAUTY, 651, AIRCRAFT_CARRIER, 191, 207, ROCK_BEAUTY, SWING],
    [ROCK_BEAUTY, SWING, WARDROBE, ROCK_BEAUTY, 190, 208, SWING, 973],
    [SWING, SWING, SWING, AIRCRAFT_CARRIER, SWING, 207, ROCK_BEAUTY, ROCK_BEAUTY],
], dtype=np.int32)
MISSING = "img_0007.png"


class Counting:
    """A FeatureProvider that hands every call to the real OOV provider and records its rows."""

    name = "oov"

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.rows: list[tuple[str, int, bool]] = []  # (image, prediction, evaluated)
        self.encoded = 0  # images embedded (not read from the cache)

    def evaluate(self, test: str, params: Mapping[str, Any], batch: SampleBatch, rows: np.ndarray) -> FeatureResult:
        result = self.inner.evaluate(test, params, batch, rows)
        self.encoded += self.inner.last_stats.get("embedding", {}).get("encoded", 0)
        assert batch.images is not None
        self.rows += [(batch.images[int(r)], int(batch.pred[int(r)]), bool(result.known[i]))
                      for i, r in enumerate(rows)]
        return result


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("study_oov")
    tax = default_compiled()
    names = [os.path.basename(p) for p in write_images(root / "val", len(TARGETS) - 1)] + [MISSING]
    settings: dict[str, Any] = {
        "model_config": TINY, "pretrained": None, "random_init": True, "seed": 0, "device": "cpu",
        "num_workers": 0, "batch_size": 8, "cache_dir": str(root / "cache"), "images": [str(root / "val")],
    }
    # ImageFolder-style training set, class directories named by wnid; 6 images <= the rule's k = 10,
    # so every image's neighbours include both indexed classes
    for c in INDEXED:
        write_images(root / "train" / tax.vocabulary.wnids[c], 3, start=100 + c)
    build_index(root / "train", root / "index", config=settings)
    settings["index"] = str(root / "index")
    cfg = root / "oov.yaml"
    cfg.write_text(yaml.safe_dump(settings))
    models = root / "models"
    models.mkdir()
    batches = []
    for m, pred in enumerate(PREDS):
        batch = SampleBatch.from_lists(target=TARGETS, labels=[[t] for t in TARGETS], pred=pred.tolist(),
                                       images=names)
        batches.append(batch)
        with (models / f"m{m}.jsonl").open("w") as f:
            for i in range(len(TARGETS)):
                f.write(json.dumps({"image": names[i], "target": TARGETS[i], "labels": [TARGETS[i]],
                                    "pred": int(pred[i])}) + "\n")
    # guard: the chosen errors do reach the OOV rule (no provider: "not evaluated")
    oov_rule = tax.axes[tax.primary_axis].rule_ids.index("fine_grained_oov")
    plain = evaluate(tax, batches[0])
    assert plain.primary.rule_not_evaluated(oov_rule)[[0, 1, 2, 3, 7]].all()
    return {"root": root, "tax": tax, "cfg": cfg, "models": models, "batches": batches, "names": names,
            "oov_rule": oov_rule}


def _reference(setup: dict[str, Any]) -> list[Any]:
    """Each model classified on its own with an identically configured, separate provider."""
    tax: CompiledTaxonomy = setup["tax"]
    provider = registry.build("oov", setup["cfg"], tax)
    return [evaluate(tax, batch, {"oov": provider}) for batch in setup["batches"]]


def _assert_table_equals(table: Any, tax: CompiledTaxonomy, reference: list[Any]) -> None:
    assert list(table["model"]) == [f"m{m}" for m in range(len(reference))]
    for m, decisions in enumerate(reference):
        row = table.iloc[m]
        head = summarize(tax, decisions)["headline"]
        assert row["all.samples"] == head["samples"] == len(TARGETS)
        for cat in tax.axes[tax.primary_axis].value_ids:
            assert row[f"all.n.{cat}"] == head["categories"].get(cat, {"count": 0})["count"], (m, cat)
        for kind, suffix in (("groups_by_any_label", "_by_label"), ("groups_by_target", "_by_target")):
            for group, block in head[kind].items():
                for cat, c in block["categories"].items():
                    assert row[f"{group}{suffix}.n.{cat}"] == c["count"], (m, group, cat)


def test_study_with_oov_equals_per_model_evaluation(setup: dict[str, Any]) -> None:
    tax: CompiledTaxonomy = setup["tax"]
    images = ImageSet(setup["batches"][0])
    counting = Counting(registry.build("oov", setup["cfg"], tax))
    models = discover_models([setup["models"]])
    result = run_study(tax, images, models, progress=False, providers={"oov": counting})
    reference = _reference(setup)
    _assert_table_equals(result.table, tax, reference)

    # (b) the OOV rule really ran: rows evaluated (known), some held, some did not pass the gate
    assert any(known for _, _, known in counting.rows)
    assert result.table["all.n.fine_grained_oov"].sum() > 0
    oov_rule = setup["oov_rule"]
    rules = np.concatenate([d.primary.rule for d in reference])
    skipped = np.concatenate([d.primary.rule_not_evaluated(oov_rule) for d in reference])
    reached = rules >= oov_rule
    assert (reached & ~skipped & (rules > oov_rule)).any()  # evaluated and did not hold
    assert (reached & skipped).any()  # the missing image: not evaluated, with the reason
    missing = reference[0].record(7)["evidence"]["not_evaluated"]
    assert missing[0]["rule"] == "fine_grained_oov" and "image not found" in missing[0]["reason"]

    # (c) each distinct (image, prediction) pair that reaches the rule was asked about once, for all models
    pairs = [(img, pred) for img, pred, _ in counting.rows]
    assert len(pairs) == len(set(pairs))
    names = setup["names"]
    expected = {(names[i], int(PREDS[m, i])) for m, d in enumerate(reference)
                for i in np.flatnonzero(d.primary.rule >= oov_rule).tolist()}
    assert set(pairs) == expected
    assert int(reached.sum()) > len(expected)  # models share pairs: fewer provider rows than predictions
    assert counting.encoded <= len(TARGETS) - 1  # each image embedded once at most (0 when already cached)

    # the top errors use the same decisions
    top = {cat: sum(e["errors"] for e in entries) for cat, entries in result.top_errors.items()}
    assert top.get("fine_grained_oov", 0) == result.table["all.n.fine_grained_oov"].sum()


def test_shared_memo_gives_each_model_its_full_decisions(setup: dict[str, Any]) -> None:
    """Evidence and not-evaluated reasons too (the table only counts categories)."""
    tax: CompiledTaxonomy = setup["tax"]
    tab = Tabulator(tax, ImageSet(setup["batches"][0]), providers=registry.build_all({"oov": setup["cfg"]}, tax))
    for m, decisions in enumerate(_reference(setup)):
        shared = list(tab.classifier.classify(PREDS[m]).records())
        for i, (got, want) in enumerate(zip(shared, decisions.records(), strict=True)):
            assert _rounded(got) == _rounded(want), (m, i)


def _rounded(record: dict[str, Any]) -> dict[str, Any]:
    """A record with its OOV probabilities to 4 places: the zero-shot softmax is one matmul over the
    rows of a provider call, so other rows in the call may move the 6th printed digit."""
    out = json.loads(json.dumps(record))
    for p in out["evidence"].get("feature", {}).get("proposals", []):
        p["probability"] = round(p["probability"], 4)
    return out


def test_study_cli_oov_config(setup: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import pandas as pd

    tax: CompiledTaxonomy = setup["tax"]
    out = tmp_path / "out"
    assert main(["study", str(setup["models"]), "--out", str(out), "--oov-config", str(setup["cfg"]),
                 "--no-progress"]) == 0
    capsys.readouterr()
    _assert_table_equals(pd.read_csv(out / "models.csv"), tax, _reference(setup))

    # weights that are not there, a config with an unknown key, no config file: one line, exit status 2
    bad = tmp_path / "missing.yaml"
    bad.write_text(yaml.safe_dump({"checkpoint": str(tmp_path / "ViT-L-14-336.pt"), "device": "cpu"}))
    typo = tmp_path / "typo.yaml"
    typo.write_text(yaml.safe_dump({"modle": "ViT-B-32"}))
    for cfg, message in ((bad, "checkpoint not found"), (typo, "unknown oov configuration keys"),
                         (tmp_path / "nope.yaml", "--oov-config " + str(tmp_path / "nope.yaml") + ": no such file")):
        assert main(["study", str(setup["models"]), "--out", str(tmp_path / "o2"), "--oov-config", str(cfg),
                     "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and err.startswith("errortaxa: error: ") and message in err, err
    assert not (tmp_path / "o2").exists()


def test_taxonomy_comparison_uses_the_providers(setup: dict[str, Any]) -> None:
    """Compared with itself, a taxonomy agrees on every error only when both sides get the OOV provider."""
    tax: CompiledTaxonomy = setup["tax"]
    again = compile_path(None)
    result = run_study(tax, ImageSet(setup["batches"][0]), discover_models([setup["models"]]), progress=False,
                       providers=registry.build_all({"oov": setup["cfg"]}, tax), compare=again)
    assert result.diff is not None and result.diff.samples > 0
    assert result.diff.agreement == 1.0
    row = result.diff.values_a.index("fine_grained_oov")
    assert result.diff.matrix[row].sum() == result.table["all.n.fine_grained_oov"].sum() > 0


def test_oov_config_errors(setup: dict[str, Any], tmp_path: Path) -> None:
    tax: CompiledTaxonomy = setup["tax"]
    images, models = ImageSet(setup["batches"][0]), discover_models([setup["models"]])
    providers = registry.build_all({"oov": setup["cfg"]}, tax)
    with pytest.raises(ValueError, match="pass provider_configs"):
        run_study(tax, images, models, progress=False, providers=providers, ray_address="local")
    # a study does not quietly leave the rule unevaluated where the model cannot run
    bad = tmp_path / "missing.yaml"
    bad.write_text(yaml.safe_dump({"checkpoint": str(tmp_path / "ViT-L-14-336.pt"), "device": "cpu"}))
    with pytest.raises(ProviderUnavailable, match="checkpoint not found"):
        run_study(tax, images, models, progress=False, provider_configs={"oov": bad})


def test_study_on_ray_with_oov_config(setup: dict[str, Any], tmp_path: Path, ray_local: Any) -> None:
    tax: CompiledTaxonomy = setup["tax"]
    images = ImageSet(setup["batches"][0])
    models = discover_models([setup["models"]])
    # in-process, from the file
    single = run_study(tax, images, models, progress=False, provider_configs={"oov": setup["cfg"]})
    assert single.table["all.n.fine_grained_oov"].sum() > 0
    _assert_table_equals(single.table, tax, _reference(setup))
    distributed = run_study(tax, images, models, progress=False, ray_address="local", chunks=2,
                            provider_configs={"oov": str(setup["cfg"])})
    assert distributed.table.equals(single.table)
    assert distributed.top_errors == single.top_errors
    # a worker where the model cannot run fails the study with the reason
    bad = tmp_path / "missing.yaml"
    bad.write_text(yaml.safe_dump({"checkpoint": str(tmp_path / "ViT-L-14-336.pt"), "device": "cpu"}))
    with pytest.raises(ProviderUnavailable, match=r"on Ray worker .*checkpoint not found"):
        run_study(tax, images, models, progress=False, ray_address="local", chunks=1, provider_configs={"oov": bad})
