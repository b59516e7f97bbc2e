"""The explorer's JSON API over a real HTTP server on 127.0.0.1 and the real engine: a small generated
study (five models on the bundled example, placeholder JPEGs), the numbers checked against a real
``errortaxa study`` run on the same inputs, edits, galleries, explanations, comparisons, notes, saving."""

from __future__ import annotations

import csv
import io
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from docs_screenshots import ROOT, write_demo_study

pytest.importorskip("PIL", reason="Pillow (the explore extra) is not installed")
from errortaxa.cli import build_parser, main
from errortaxa.cli.explore import make_server

TAXONOMY = ROOT / "rules" / "imagenet" / "peychev2023.yaml"
RULE = "{cooccurs: {table: real_val, min_count: 2}}\n              - {not: {same_superclass: true}}"
EDITED_RULE = "{cooccurs: {table: real_val, min_count: 40}}\n              - {not: {same_superclass: true}}"


class Client:
    """Requests to one explorer; answers (status, headers, body)."""

    def __init__(self, base: str, headers: dict[str, str] | None = None) -> None:
        self.base = base
        self.headers = headers or {}

    def call(self, path: str, body: bytes | str | None = None, headers: dict[str, str] | None = None,
             method: str | None = None) -> tuple[int, Any, bytes]:
        data = body.encode() if isinstance(body, str) else body
        request = urllib.request.Request(self.base + path, data=data, method=method or ("POST" if data is not None
                                                                                         else "GET"),
                                         headers={**self.headers, **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=120) as answer:
                return answer.status, answer.headers, answer.read()
        except urllib.error.HTTPError as error:
            return error.code, error.headers, error.read()

    def json(self, path: str, body: bytes | str | None = None, status: int = 200, **kw: Any) -> Any:
        code, _, data = self.call(path, body, **kw)
        assert code == status, (code, data[:500])
        return json.loads(data)


@pytest.fixture(scope="module", autouse=True)
def data_dirs() -> Iterator[None]:
    """The explorer adds folders to this process's $ERRORTAXA_DATA_DIR (for edits): restored after."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ERRORTAXA_DATA_DIR", "")
        yield


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Five models (one of them with images left out), images (some missing, one in a class folder,
    a link out of the folder), a copy of the default taxonomy, and `errortaxa study --out` on them."""
    root = tmp_path_factory.mktemp("explore-api")
    models, images = write_demo_study(root, images=500, missing_every=9)
    short = models / "efficientnet_b0.jsonl"
    short.write_text("".join(short.read_text().splitlines(keepends=True)[:450]))
    records = [json.loads(line) for line in (models / "resnet50.jsonl").read_text().splitlines()]
    # one image only in its class folder (ImageNet's val/ in class folders), one link out of the folder
    from errortaxa.engine import default_compiled

    wnids = default_compiled().vocabulary.wnids
    moved = records[3]
    folder = images / wnids[moved["target"]]
    folder.mkdir()
    (images / moved["image"]).rename(folder / moved["image"])
    secret = root / "secret.jpg"
    (images / records[4]["image"]).rename(secret)
    (images / records[4]["image"]).symlink_to(secret)
    taxonomy = root / "taxonomy.yaml"
    taxonomy.write_text(TAXONOMY.read_text(encoding="utf-8"), encoding="utf-8")
    (root / "non_prototypical.txt").write_text((TAXONOMY.parent / "non_prototypical.txt").read_text())
    out = root / "study"
    assert main(["study", str(models), "--taxonomy", str(taxonomy), "--out", str(out), "-q"]) == 0
    return {"root": root, "models": models, "images": images, "taxonomy": taxonomy, "study": out,
            "notes": root / "notes.jsonl", "records": records, "moved": moved, "linked": records[4]}


def serve(args: list[str]) -> Iterator[str]:
    server = make_server(build_parser().parse_args(["explore", *args, "--port", "0"]))
    server.serve_in_thread()
    try:
        yield server.url.rstrip("/")
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def api(study: dict[str, Path]) -> Iterator[Client]:
    yield from (Client(base) for base in serve([str(study["models"]), "--taxonomy", str(study["taxonomy"]),
                                                "--images", str(study["images"]), "--notes", str(study["notes"]),
                                                "--allow-save"]))


@pytest.fixture(scope="module")
def plain(study: dict[str, Path]) -> Iterator[Client]:
    """Without --notes, --allow-save and --images."""
    yield from (Client(base) for base in serve([str(study["models"]), "--taxonomy", str(study["taxonomy"])]))


def rule_values(taxonomy: Path) -> dict[str, str]:
    """The primary-axis category each rule of the taxonomy file decides."""
    from errortaxa.engine import compile_path

    compiled = compile_path(taxonomy)
    axis = compiled.axes[compiled.primary_axis]
    return {rule.id: axis.value_ids[rule.value] for rule in axis.rules}


def study_rows(study: dict[str, Path]) -> dict[str, dict[str, str]]:
    with open(study["study"] / "models.csv", newline="") as stream:
        return {row["model"]: row for row in csv.DictReader(stream)}


def assert_rows_match_study(rows: list[dict[str, Any]], expected: dict[str, dict[str, str]],
                            categories: list[str], rule_values: dict[str, str]) -> None:
    assert sorted(r["model"] for r in rows) == sorted(expected)
    for row in rows:
        want = expected[row["model"]]
        assert row["samples"] == int(float(want["all.samples"]))
        # an MLA figure a rule not evaluated on some samples might change is null
        unsure = int(float(want.get("all.mla_not_evaluated", 0)))
        assert row["mla_not_evaluated"] == unsure
        for key, column in (("top1", "all.top1"), ("top1_lo", "all.top1_lo"), ("top1_hi", "all.top1_hi"),
                            ("mla", "all.mla_share"), ("mla_lo", "all.mla_share_lo"), ("mla_hi", "all.mla_share_hi")):
            if unsure and key.startswith("mla"):
                assert row[key] is None, (row["model"], key)
            else:
                assert row[key] == pytest.approx(float(want[column]), abs=1e-12), (row["model"], key)
        # a category decided by a rule the study could not evaluate on some image has no share
        unknown: dict[str, dict[str, int]] = {}
        for column, value in want.items():
            if column.startswith("all.not_evaluated.") and float(value) > 0:
                rule = column.removeprefix("all.not_evaluated.")
                unknown.setdefault(rule_values[rule], {})[rule] = int(float(value))
        assert row["not_evaluated"] == unknown
        for cat in categories:
            assert row["counts"][cat] == int(float(want[f"all.n.{cat}"]))
            share = None if cat in unknown else pytest.approx(float(want[f"all.share.{cat}"]), abs=1e-12)
            assert row["shares"][cat] == share, (row["model"], cat)


# ---------------------------------------------------------------------- numbers


def test_models_are_the_study_numbers(api: Client, study: dict[str, Path]) -> None:
    state = api.json("/api/state")
    assert state["models"] == ["convnext_tiny", "deit_small", "efficientnet_b0", "resnet50", "vit_b16"]
    assert state["images"] == 500 and state["can_save"] and state["notes_enabled"] and not state["token_required"]
    assert "errortaxa study" in state["command"]
    expected = study_rows(study)
    models = api.json("/api/models")
    assert models["tx"] == state["taxonomy"]["tx"]
    values = rule_values(study["taxonomy"])
    assert_rows_match_study(models["rows"], expected, state["categories"], values)
    # no OOV provider here: its rule is not evaluated, and its category has no share
    assert any(r["shares"]["fine_grained_oov"] is None and r["not_evaluated"]["fine_grained_oov"]
               for r in models["rows"])
    for row in models["rows"]:
        assert row["mla_class"] == pytest.approx(float(expected[row["model"]]["all.mla"]), abs=1e-12)
    # the edit path (counts from the shared per-pair decisions) gives the same table
    applied = api.json("/api/taxonomy", study["taxonomy"].read_text())
    assert applied["ok"] and applied["tx"] == state["taxonomy"]["tx"]
    assert_rows_match_study(applied["table"], expected, state["categories"], values)
    plots = api.json("/api/plots")["plots"]
    assert plots and all(len(p["points"]) == 5 for p in plots)
    assert not any(p["y"] == "fine_grained_oov" for p in plots)  # no model has that share
    one = next(p for p in plots if p["id"] == "fine_grained-vs-mla")
    by_model = {r["model"]: r for r in models["rows"]}
    assert all(pt["y"] == by_model[pt["model"]]["shares"]["fine_grained"] for pt in one["points"])


def test_edited_taxonomy_numbers_are_the_study_numbers(api: Client, study: dict[str, Path],
                                                       tmp_path: Path) -> None:
    edited = study["taxonomy"].read_text().replace(RULE, EDITED_RULE)
    applied = api.json("/api/taxonomy", edited)
    assert applied["ok"]
    copy = study["taxonomy"].parent / "edited.yaml"
    copy.write_text(edited)
    out = tmp_path / "edited-study"
    assert main(["study", str(study["models"]), "--taxonomy", str(copy), "--out", str(out), "-q"]) == 0
    expected = study_rows({"study": out})
    values = rule_values(copy)
    assert_rows_match_study(applied["table"], expected, applied["categories"], values)
    assert_rows_match_study(api.json(f"/api/models?tx={applied['tx']}")["rows"], expected, applied["categories"],
                            values)


# ---------------------------------------------------------------------- errors


def test_all_models_gallery_groups_by_image_and_prediction(api: Client, study: dict[str, Path]) -> None:
    preds: dict[tuple[str, int], int] = {}
    targets = {}
    for path in sorted(study["models"].glob("*.jsonl")):
        for line in path.read_text().splitlines():
            r = json.loads(line)
            targets[r["image"]] = r["target"]
            if r["pred"] != r["target"]:
                preds[(r["image"], r["pred"])] = preds.get((r["image"], r["pred"]), 0) + 1
    first = api.json("/api/errors?limit=500")
    assert first["total"] == len(preds)
    pages = [api.json(f"/api/errors?limit=60&offset={o}")["records"] for o in (0, 60)]
    assert pages[0] + pages[1] == first["records"][:120]
    counts = [r["models_count"] for r in first["records"]]
    assert counts == sorted(counts, reverse=True)
    for r in first["records"]:
        assert r["model"] is None
        assert r["models_count"] == preds[(r["image"], r["pred"]["id"])]
        assert set(r) >= {"image", "target", "labels", "pred", "category", "rule", "evidence", "evidence_text"}
    top = first["records"][0]
    listed = api.json(f"/api/error_models?image={top['image']}&pred={top['pred']['id']}")["models"]
    assert len(listed) == top["models_count"]
    by_image = api.json("/api/errors?limit=500&sort=image")["records"]
    order = [(r["image"], r["pred"]["id"]) for r in by_image]
    assert order == sorted(order)


def test_filters(api: Client) -> None:
    state = api.json("/api/state")
    all_errors = api.json("/api/errors?limit=500")["records"]
    for category in ("fine_grained", "model_failure", "multi_label"):
        got = api.json(f"/api/errors?limit=500&category={category}")
        assert got["total"] == sum(r["category"] == category for r in all_errors)
        assert all(r["category"] == category for r in got["records"])
    got = api.json("/api/errors?limit=500&rule=fine_grained")
    assert got["total"] and all(r["rule"] == "fine_grained" for r in got["records"])
    got = api.json("/api/errors?limit=500&min_models=3")
    assert got["total"] == sum(r["models_count"] >= 3 for r in all_errors)
    sample = all_errors[0]
    got = api.json(f"/api/errors?limit=500&target={sample['target']['wnid']}")
    assert got["total"] and all(r["target"]["id"] == sample["target"]["id"] for r in got["records"])
    got = api.json(f"/api/errors?limit=500&pred={sample['pred']['id']}")
    assert got["total"] and all(r["pred"]["id"] == sample["pred"]["id"] for r in got["records"])
    fine = next(r for r in all_errors if r["evidence"].get("superclasses"))
    superclass = fine["evidence"]["superclasses"][0]
    got = api.json(f"/api/errors?limit=500&superclass={superclass}")
    assert any(r["image"] == fine["image"] for r in got["records"])
    groups = {g: api.json(f"/api/errors?limit=500&group={g}")["total"] for g in state["groups"]}
    assert all(0 < n < len(all_errors) for n in groups.values())  # by any label: overlapping, none when no label
    # one model: its own errors, with how many models make each
    model = api.json("/api/errors?model=resnet50&limit=500")
    assert model["total"] == sum(1 for _ in model["records"]) and model["records"]
    assert all(r["model"] == "resnet50" for r in model["records"])
    table = {r["model"]: r for r in api.json("/api/models")["rows"]}["resnet50"]
    per_category = api.json("/api/errors?model=resnet50&category=fine_grained&limit=500")["records"]
    headline = [r for r in per_category if not r["evidence"].get("problematic")]
    assert len(headline) >= table["counts"]["fine_grained"] - 5 and per_category
    for status, query, field in ((400, "category=nope", "category"), (400, "limit=0", "limit"),
                                 (400, "offset=x", "offset"), (404, "model=nope", "model"),
                                 (400, "target=not_a_class", "target"), (400, "group=plants", "group"),
                                 (400, "superclass=nope", "superclass"), (400, "sort=size", "sort"),
                                 (404, "tx=0123456789abcdef", "tx")):
        answer = api.json(f"/api/errors?{query}", status=status)
        assert answer["error"]["field"] == field


def test_explain_and_evidence(api: Client) -> None:
    record = api.json("/api/errors?model=vit_b16&category=fine_grained&limit=1")["records"][0]
    assert any("share the superclass" in text for text in record["evidence_text"])
    explained = api.json(f"/api/explain?model=vit_b16&image={urllib.parse.quote(record['image'])}")
    assert explained["category"] == "fine_grained" and explained["rule"] == "fine_grained"
    outcomes = {t["rule"]: t["outcome"] for t in explained["traces"]}
    assert outcomes["fine_grained"] == "held" and outcomes["correct"] == "failed"
    assert "vit_b16" in explained["models"] and "errortaxa rules explain" in explained["command"]
    assert api.json("/api/explain?model=vit_b16&image=nope.JPEG", status=404)["error"]["field"] == "image"


# ---------------------------------------------------------------------- rules


def test_edit_transitions_open_the_moved_errors(api: Client, study: dict[str, Path]) -> None:
    state = api.json("/api/state")
    edited = study["taxonomy"].read_text().replace(RULE, EDITED_RULE)
    applied = api.json("/api/taxonomy?model=resnet50", edited)
    assert applied["ok"] and applied["from_tx"] == state["taxonomy"]["tx"] and applied["tx"] != applied["from_tx"]
    t = applied["transitions"]
    total = api.json("/api/errors?limit=1")["total"]
    weights = {(r["image"], r["pred"]["id"]): r["models_count"] for r in api.json("/api/errors?limit=500")["records"]}
    assert sum(map(sum, t["all"])) == sum(weights.values())
    assert total == len(weights)
    resnet = api.json("/api/errors?model=resnet50&limit=1")["total"]
    assert sum(map(sum, t["model"])) == resnet
    i, j = t["from"].index("spurious_correlation"), t["to"].index("model_failure")
    moved = t["all"][i][j]
    assert moved > 0
    cell = api.json(f"/api/errors?tx={applied['tx']}&from_tx={applied['from_tx']}&from_category=spurious_correlation"
                    f"&category=model_failure&limit=500")
    assert sum(r["models_count"] for r in cell["records"]) == moved
    assert all(r["category"] == "model_failure" for r in cell["records"])
    old = {(r["image"], r["pred"]["id"]) for r in api.json("/api/errors?category=spurious_correlation&limit=500")
           ["records"]}
    assert {(r["image"], r["pred"]["id"]) for r in cell["records"]} <= old
    one = api.json(f"/api/errors?tx={applied['tx']}&from_tx={applied['from_tx']}&from_category=spurious_correlation"
                   f"&category=model_failure&model=resnet50&limit=500")
    assert one["total"] == t["model"][i][j]
    assert {c["status"] for c in applied["cases"]} <= {"passed", "failed", "skipped"} and applied["cases"]
    code, headers, body = api.call(f"/api/taxonomy?tx={applied['tx']}")
    assert code == 200 and body.decode() == edited and "attachment" in headers["Content-Disposition"]
    # the plots follow for the new taxonomy
    assert api.json(f"/api/plots?tx={applied['tx']}")["tx"] == applied["tx"]


def test_bad_edits_are_located_problems(api: Client, study: dict[str, Path]) -> None:
    text = study["taxonomy"].read_text()
    broken = text.replace("then: fine_grained\n", "then: no_such_value\n", 1)
    for path in ("/api/validate", "/api/taxonomy"):
        answer = api.json(path, broken)
        assert answer["ok"] is False
        problem = next(p for p in answer["problems"] if p["severity"] == "error")
        assert problem["line"] == text[: text.index("then: fine_grained\n")].count("\n") + 1
        assert "then" in problem["key"]
    syntax = api.json("/api/taxonomy", "axes: [unclosed\n  - x: {")
    assert syntax["ok"] is False and syntax["problems"][0]["line"]
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n" for p, c in zip("abcdefgh", "bcdefghi",
                                                                                           strict=True))
    limited = api.json("/api/taxonomy", bomb)
    assert limited["ok"] is False and "limit" in limited["problems"][0]["message"]
    vocab = api.json("/api/validate", text.replace("vocabulary: imagenet1k", "vocabulary: [n01440764, n01443537]"))
    assert vocab["ok"] is False
    assert api.json("/api/validate", b"\xff\xfe", status=400)["error"]["field"] == "body"
    big = api.call("/api/taxonomy", b"x" * (2 * 1024 * 1024))
    assert big[0] == 413
    assert api.json("/api/validate", text)["ok"] is True


def test_save_only_with_allow_save_and_only_to_the_taxonomy(api: Client, plain: Client,
                                                             study: dict[str, Path]) -> None:
    original = study["taxonomy"].read_text()
    edited = original.replace(RULE, RULE.replace("min_count: 2", "min_count: 7"))
    tx = api.json("/api/taxonomy", edited)["tx"]
    assert plain.json(f"/api/save?tx={tx}", b"", status=403)["error"]["field"] == "tx"  # refused before any lookup
    tx_plain = plain.json("/api/taxonomy", edited)["tx"]
    assert plain.json(f"/api/save?tx={tx_plain}", b"", status=403)["error"]["field"] == "tx"
    assert not plain.json("/api/state")["can_save"]
    try:
        saved = api.json(f"/api/save?tx={tx}", b"")
        assert saved["path"] == str(study["taxonomy"]) and study["taxonomy"].read_text() == edited
        assert sorted(p.name for p in study["taxonomy"].parent.glob("*.yaml")) <= ["edited.yaml", "taxonomy.yaml"]
    finally:
        study["taxonomy"].write_text(original)


# ---------------------------------------------------------------------- compare, export, notes


def test_compare_is_errortaxa_mcnemar(api: Client, study: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    got = api.json("/api/compare?a=resnet50&b=vit_b16")
    capsys.readouterr()
    assert main(["mcnemar", str(study["models"] / "resnet50.jsonl"), str(study["models"] / "vit_b16.jsonl"),
                 "--taxonomy", str(study["taxonomy"]), "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert got["mcnemar"]["b"] == cli["only_a"] and got["mcnemar"]["c"] == cli["only_b"]
    assert got["mcnemar"]["p"] == pytest.approx(cli["p_value"])
    assert got["fixed"] == cli["only_b"] and got["introduced"] == cli["only_a"]
    for kind in ("fixed", "introduced", "changed"):
        listed = api.json(f"/api/errors?compare={kind}&a=resnet50&b=vit_b16&limit=500")
        assert listed["total"] == got[kind]
        assert all(r["model"] == ("resnet50" if kind == "fixed" else "vit_b16") for r in listed["records"])
    assert api.json("/api/compare?a=resnet50&b=nope", status=404)["error"]["field"] == "b"


def test_export(api: Client) -> None:
    total = api.json("/api/errors?category=fine_grained&limit=1")["total"]
    code, headers, body = api.call("/api/export?format=jsonl&category=fine_grained")
    assert code == 200 and "attachment" in headers["Content-Disposition"]
    lines = [json.loads(line) for line in body.decode().splitlines()]
    assert len(lines) == total and all(r["category"] == "fine_grained" for r in lines)
    code, _, body = api.call("/api/export?format=csv&category=fine_grained")
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert code == 200 and len(rows) == total and rows[0]["category"] == "fine_grained"
    assert api.json("/api/export?format=xml", status=400)["error"]["field"] == "format"


def test_notes_only_to_the_notes_file(api: Client, plain: Client, study: dict[str, Path]) -> None:
    image = study["records"][0]["image"]
    note = json.dumps({"image": image, "kind": "label_problem", "note": "two dogs"})
    assert plain.json("/api/notes", note, status=403)["error"]["field"] == "notes"
    assert api.json("/api/notes", note)["ok"]
    assert api.json("/api/notes", json.dumps({"image": image, "kind": "non_prototypical"}))["ok"]
    lines = [json.loads(line) for line in study["notes"].read_text().splitlines()]
    assert [(n["image"], n["kind"]) for n in lines] == [(image, "label_problem"), (image, "non_prototypical")]
    assert len(api.json("/api/notes")["notes"]) == 2
    for body, field in (({"image": image, "kind": "nice"}, "kind"), ({"image": "../x", "kind": "label_problem"},
                                                                        "image"),
                        ({"image": image, "kind": "label_problem", "note": "x" * 5000}, "note")):
        assert api.json("/api/notes", json.dumps(body), status=400)["error"]["field"] == field
    assert api.json("/api/notes", "not json", status=400)["error"]["field"] == "body"


def test_mla_is_null_where_an_unevaluated_rule_might_change_it(api: Client, study: dict[str, Path]) -> None:
    # a rule giving an MLA-correct value from a sample list that is not there: not evaluated
    text = study["taxonomy"].read_text()
    text = text.replace("resources:\n", "resources:\n  absent: {kind: sample_list, file: absent.txt, optional: true, "
                                         "source: nowhere}\n", 1)
    rule = "      - id: model_failure\n        description: Step 9.\n"
    text = text.replace(rule, "      - id: absent\n        when: {in_sample_list: absent}\n"
                              "        then: multi_label\n" + rule)
    applied = api.json("/api/taxonomy", text)
    assert applied["ok"], applied["problems"]
    models = api.json(f"/api/models?tx={applied['tx']}")["rows"]
    assert all(r["mla_not_evaluated"] > 0 and r["mla"] is None and r["mla_class"] is None for r in models)
    # the edit path's counts (from the shared per-pair decisions) are the study's
    edited = {r["model"]: r for r in applied["table"]}
    assert {r["model"]: r["mla_not_evaluated"] for r in models} == \
        {m: r["mla_not_evaluated"] for m, r in edited.items()}
    assert all(r["mla"] is None and r["mla_lo"] is None for r in edited.values())
    # every MLA plot is left out (no model has the figure), the top-1 plots stay
    plots = [p["x"] for p in api.json(f"/api/plots?tx={applied['tx']}")["plots"]]
    assert "top1" in plots and "mla" not in plots


def test_notes_are_a_sample_list_for_the_rules(api: Client, study: dict[str, Path]) -> None:
    failure = api.json("/api/errors?category=model_failure&limit=1")["records"][0]
    assert api.json("/api/notes", json.dumps({"image": failure["image"], "kind": "non_prototypical"}))["ok"]
    text = study["taxonomy"].read_text()
    text = text.replace("resources:\n", "resources:\n  reviewed: {kind: sample_list, file: notes.jsonl, "
                                         "source: the explorer's notes}\n", 1)
    rule = "      - id: model_failure\n        description: Step 9.\n"
    assert rule in text
    text = text.replace(rule, "      - id: reviewed\n        when: {in_sample_list: reviewed}\n"
                              "        then: non_prototypical\n" + rule)
    applied = api.json("/api/taxonomy", text)
    assert applied["ok"], applied["problems"]
    moved = api.json(f"/api/errors?tx={applied['tx']}&rule=reviewed&limit=500")["records"]
    assert failure["image"] in {r["image"] for r in moved}
    assert all(r["category"] == "non_prototypical" for r in moved)


# ---------------------------------------------------------------------- images and safety


def test_thumbnails(api: Client, plain: Client, study: dict[str, Path]) -> None:
    from PIL import Image

    records = study["records"]
    code, headers, body = api.call("/thumb/" + urllib.parse.quote(records[0]["image"]))
    assert code == 200 and headers["Content-Type"] == "image/jpeg" and "Content-Security-Policy" in headers
    with Image.open(io.BytesIO(body)) as image:
        assert max(image.size) <= 256 and image.size == (256, 192)
    assert api.call("/thumb/" + urllib.parse.quote(records[0]["image"]))[2] == body  # cached, the same
    placeholder = plain.call("/thumb/" + urllib.parse.quote(records[1]["image"]))
    missing = api.call("/thumb/" + urllib.parse.quote(records[8]["image"]))  # every 9th has no file
    assert missing[0] == 200 and missing[2] == placeholder[2] and placeholder[0] == 200
    moved = api.call("/thumb/" + urllib.parse.quote(study["moved"]["image"]))
    assert moved[0] == 200 and moved[2] != placeholder[2]
    full = api.call("/image/" + urllib.parse.quote(records[0]["image"]))
    assert full[0] == 200 and full[2] == (study["images"] / records[0]["image"]).read_bytes()
    outside = study["root"] / "outside.jpg"
    outside.write_bytes((study["images"] / records[0]["image"]).read_bytes())
    for path in ("/thumb/nope.JPEG", "/thumb/" + urllib.parse.quote(study["linked"]["image"]),
                 "/thumb/../secret.jpg", "/thumb/..%2Fsecret.jpg", "/thumb/%2E%2E%2Fsecret.jpg",
                 "/thumb/%252E%252E%252Fsecret.jpg", "/thumb/" + urllib.parse.quote(str(outside), safe=""),
                 "/thumb/%2Fetc%2Fpasswd", "/image/..%2F..%2Fetc%2Fpasswd", "/image/" + urllib.parse.quote(
                     study["linked"]["image"]), "/static/..%2F..%2Fapp.py", "/static/%2Fetc%2Fpasswd"):
        code, _, body = api.call(path)
        assert code == 404, path
        assert b"PRIVATE" not in body


def test_safety_headers_origin_and_host(api: Client) -> None:
    for path in ("/", "/api/state", "/api/errors?limit=1", "/api/nope"):
        code, headers, _ = api.call(path)
        assert "default-src 'self'" in headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
    code, _, body = api.call("/api/validate", "name: x", headers={"Origin": "http://evil.example"})
    assert code == 403 and json.loads(body)["error"]["field"] == "Origin"
    code, _, _ = api.call("/api/notes", "{}", headers={"Sec-Fetch-Site": "cross-site"})
    assert code == 403
    same = api.base.replace("http://", "")
    assert api.call("/api/validate", "name: x", headers={"Origin": f"http://{same}"})[0] == 200
    code, _, body = api.call("/api/state", headers={"Host": "evil.example:8765"})  # DNS rebinding
    assert code == 403 and json.loads(body)["error"]["field"] == "Host"
    assert api.call("/api/state", method="DELETE")[0] == 405


def test_token_mode(study: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ERRORTAXA_TOKEN", "t0ken-for-the-test")
    for base in serve([str(study["models"]), "--images", str(study["images"]), "--token"]):
        anonymous = Client(base)
        image = "/thumb/" + urllib.parse.quote(study["records"][0]["image"])
        for path in ("/api/state", "/api/errors", image, "/api/models"):
            assert anonymous.call(path)[0] == 401, path
        assert anonymous.call("/")[0] in (200, 404)  # the page itself (it asks for the token)
        assert anonymous.json("/api/login", json.dumps({"token": "wrong"}), status=401)["error"]["field"] == "token"
        code, headers, _ = anonymous.call("/api/login", json.dumps({"token": "t0ken-for-the-test"}))
        cookie = headers["Set-Cookie"]
        assert code == 200 and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        with_cookie = Client(base, {"Cookie": cookie.split(";")[0]})
        assert with_cookie.json("/api/state")["token_required"] is True
        assert with_cookie.call(image)[0] == 200
        bearer = Client(base, {"Authorization": "Bearer t0ken-for-the-test"})
        assert bearer.call("/api/errors?limit=1")[0] == 200
        assert "t0ken" not in json.dumps(bearer.json("/api/state"))


def test_unknown_taxonomy_and_views_cache(study: dict[str, Path]) -> None:
    for base in serve([str(study["models"]), "--taxonomy", str(study["taxonomy"]), "--views", "2"]):
        client = Client(base)
        text = study["taxonomy"].read_text()
        first = client.json("/api/taxonomy", text.replace(RULE, RULE.replace("min_count: 2", "min_count: 3")))["tx"]
        second = client.json("/api/taxonomy", text.replace(RULE, RULE.replace("min_count: 2", "min_count: 4")))["tx"]
        assert client.json(f"/api/errors?tx={second}&limit=1")["total"]
        answer = client.json(f"/api/models?tx={first}", status=404)  # evicted: the page re-posts its YAML
        assert answer["error"] == {"message": "unknown taxonomy", "field": "tx"}
        assert client.json("/api/models")["rows"]  # the loaded one stays
        assert client.json("/api/taxonomy", text.replace(RULE, RULE.replace("min_count: 2", "min_count: 3")))[
            "tx"] == first


# ---------------------------------------------------------------------- the command line


def test_study_folder_reopens_and_names_a_changed_source(study: dict[str, Path], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    about = json.loads((study["study"] / "study.json").read_text())
    sources = about["sources"]
    assert [m["name"] for m in sources["models"]] == ["convnext_tiny", "deit_small", "efficientnet_b0", "resnet50",
                                                      "vit_b16"]
    assert all(len(m["sha256"]) == 64 for m in sources["models"])
    assert sources["taxonomy"]["text"] == TAXONOMY.read_text() and sources["taxonomy"]["hash"]
    for base in serve([str(study["study"])]):
        client = Client(base)
        assert_rows_match_study(client.json("/api/models")["rows"], study_rows(study),
                                client.json("/api/state")["categories"], rule_values(study["taxonomy"]))
    # a changed model file: one line naming it, exit status 2
    copy = tmp_path / "study"
    copy.mkdir()
    changed = json.loads(json.dumps(about))
    changed["sources"]["models"][1]["sha256"] = "0" * 64
    (copy / "study.json").write_text(json.dumps(changed))
    capsys.readouterr()
    assert main(["explore", str(copy), "--port", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "deit_small.jsonl changed since the study" in err[0]
    moved = json.loads(json.dumps(about))
    moved["sources"]["models"][0]["path"] = str(tmp_path / "gone.jsonl")
    (copy / "study.json").write_text(json.dumps(moved))
    assert main(["explore", str(copy), "--port", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "gone.jsonl is missing" in err[0]


def test_command_line_refusals(study: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("ERRORTAXA_TOKEN", raising=False)
    cases = [(["--host", "0.0.0.0"], "needs --token"), (["--allow-save"], "--allow-save needs --taxonomy FILE"),
             (["--images", str(study["root"] / "none")], "not a folder")]
    for extra, words in cases:
        capsys.readouterr()
        assert main(["explore", str(study["models"]), "--port", "0", *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0], err
    monkeypatch.setitem(sys.modules, "PIL", None)
    assert main(["explore", str(study["models"]), "--port", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "errortaxa: error: 'explore' needs the explore extra: pip install 'errortaxa[explore]'"


def test_preds_index_matches_files(api: Client, study: dict[str, Path]) -> None:
    """The model left short has fewer predictions: its errors and samples count only what it predicted."""
    rows = {r["model"]: r for r in api.json("/api/models")["rows"]}
    assert rows["efficientnet_b0"]["samples"] < rows["resnet50"]["samples"]
    lines = [json.loads(x) for x in (study["models"] / "efficientnet_b0.jsonl").read_text().splitlines()]
    wrong = sum(r["pred"] != r["target"] for r in lines)
    assert api.json("/api/errors?model=efficientnet_b0&limit=1")["total"] == wrong
    assert np.isfinite(rows["efficientnet_b0"]["mla"])
