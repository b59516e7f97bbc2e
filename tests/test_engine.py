"""Schema, loader and compiler: validation errors, extends, three-valued evaluation, explanations."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from errortaxa.engine import (
    FeatureResult,
    SampleBatch,
    SampleError,
    TaxonomyError,
    compile_path,
    default_compiled,
    evaluate,
    explain,
    load_taxonomy,
)
from errortaxa.engine.language.schema import json_schema
from errortaxa.engine.run.imageset import ImageSetClassifier
from hypothesis import given, settings
from hypothesis import strategies as st

HEADER = "schema: errortaxa/v1\nname: tiny\n"
TINY = HEADER + """\
superclasses:
  terrier:
    members: {ancestor: terrier.n.01}
  car:
    members:
      any: [{ancestor: car.n.01}]
      except: [{classes: [n03100240]}]
axes:
  category:
    values:
      - {id: right, tags: [mla_correct]}
      - {id: near}
      - {id: wrong}
    rules:
      - {id: right, when: {pred_in_labels: true}, then: right}
      - {id: near, when: {pred_vs_label: {same_superclass: true}}, then: near}
      - {id: wrong, when: {always: true}, then: wrong}
"""

# ImageNet classes used below: 189 Lakeland terrier, 190 Sealyham terrier, 817 sports car,
# 511 convertible (n03100240), 0 tench.


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(text: str, tmp_path: Path) -> list[str]:
    with pytest.raises(TaxonomyError) as info:
        compile_path(write(tmp_path, "t.yaml", text))
    return [str(p) for p in info.value.problems]


def test_tiny_taxonomy_classifies_a_batch(tmp_path: Path) -> None:
    tx = compile_path(write(tmp_path, "t.yaml", TINY))
    batch = SampleBatch.from_lists(target=[189, 189, 189, 817], labels=[[189], [189], [189], [817]],
                                   pred=[189, 190, 0, 511])
    decisions = evaluate(tx, batch)
    assert decisions.primary.value_names().tolist() == ["right", "near", "wrong", "wrong"]
    record = decisions.record(1)
    assert record["rule"] == "near"
    assert record["evidence"]["with_class"] == 189
    assert record["evidence"]["superclasses"] == ["terrier"]
    assert 511 not in tx.superclass_members("car")  # except removed the convertible
    assert 817 in tx.superclass_members("car")
    assert tx.superclasses_of(190) == ["terrier"]


def test_errors_name_file_line_and_key_path(tmp_path: Path) -> None:
    text = TINY.replace("{pred_in_labels: true}", "{pred_inlabels: true}")
    [problem] = problems_of(text, tmp_path)
    line = text.splitlines().index(next(x for x in text.splitlines() if "pred_inlabels" in x)) + 1
    assert f"t.yaml:{line}:" in problem
    assert "axes.category.rules[0].when" in problem
    assert "exactly one of" in problem


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("terrier.n.01", "terrierx.n.01", "unknown synset 'terrierx.n.01'"),
        ("then: near", "then: nearby", "unknown value 'nearby'"),
        ("n03100240", "n99999999", "unknown class 'n99999999'"),
        ("{same_superclass: true}", "{same_superclass: [terriers]}", "unknown superclass 'terriers'"),
        ("{pred_in_labels: true}", "{in_sample_list: missing}", "no sample_list resource named 'missing'"),
        ("{pred_in_labels: true}", "{pred_vs_label: {cooccurs: {table: t, min_count: 2}}}",
         "no cooccurrence resource named 't'"),
        ("name: tiny", "name: tiny\nname: again", "duplicate key"),
        ("rules:\n      - {id: right", "rules: [\n      - {id: right", "invalid YAML"),
    ],
)
def test_compile_errors(tmp_path: Path, old: str, new: str, message: str) -> None:
    assert old in TINY
    problems = problems_of(TINY.replace(old, new, 1), tmp_path)
    assert any(message in p for p in problems), problems


def test_shadowed_rule_and_missing_fallback_are_warnings(tmp_path: Path) -> None:
    text = TINY.replace(
        "      - {id: wrong, when: {always: true}, then: wrong}\n",
        "      - {id: narrower, when: {all: [{pred_in_labels: true}, {problematic: true}]}, then: right}\n",
    )
    tx = compile_path(write(tmp_path, "t.yaml", text))
    warnings = [str(w) for w in tx.warnings]
    assert any("'narrower' can never fire" in w and "'right'" in w for w in warnings)
    assert any("not 'always: true'" in w for w in warnings)
    decisions = evaluate(tx, SampleBatch.from_lists(target=[1], labels=[[1]], pred=[0]))
    assert decisions.record(0)["category"] is None


def test_extends_overrides_only_what_changes(tmp_path: Path) -> None:
    base = write(tmp_path, "base.yaml", TINY)
    child = write(tmp_path, "child.yaml", HEADER.replace("tiny", "child") + f"""\
extends: {base.name}
superclasses:
  car: null
axes:
  category:
    values:
      - {{id: oops}}
    rules:
      - {{id: oops, before: near, when: {{pred_is_target: false}}, then: oops}}
      - {{id: right, when: {{pred_is_target: true}}, then: right}}
""")
    tx = compile_path(child)
    assert tx.name == "child"
    assert tx.axes["category"].rule_ids == ["right", "oops", "near", "wrong"]
    assert tx.superclass_names == ["terrier"]
    assert tx.axes["category"].rules[0].file == str(child)
    assert tx.axes["category"].rules[2].file == str(base)
    # an error in an inherited rule points at the base file's line
    loaded = load_taxonomy(child)
    file, line = loaded.locate(("axes", "category", "rules", 2, "when"))
    assert file == str(base)
    assert TINY.splitlines()[line - 1].strip().startswith("- {id: near")


def _merged_by_lists(base: list[str], updates: list[dict[str, Any]]) -> tuple[list[str], list[int]]:
    """The rule ids of ``extends`` with ``updates``, by plain list operations; and the updates that
    are problems (unknown id to remove, unknown anchor)."""
    ids, bad = list(base), []
    for j, update in enumerate(updates):
        rid, anchor = update["id"], update.get("before") or update.get("after")
        if update.get("remove"):
            if rid in ids:
                ids.remove(rid)
            else:
                bad.append(j)
            continue
        if rid in ids and anchor is None:
            continue
        if rid in ids:
            ids.remove(rid)
        if anchor is None:
            ids.append(rid)
        elif anchor not in ids:
            bad.append(j)
        else:
            ids.insert(ids.index(anchor) + (1 if update.get("after") else 0), rid)
    return ids, bad


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["replace", "remove", "before", "after"]),
                          st.integers(0, 9), st.integers(0, 9)), max_size=14))
def test_extends_merges_rules_as_list_operations_would(tmp_path_factory: pytest.TempPathFactory,
                                                       ops: list[tuple[str, int, int]]) -> None:
    """Replace, remove, move and insert before / after, in any order, against a plain re-implementation;
    every rule keeps pointing at the file that last wrote it."""
    tmp_path = tmp_path_factory.mktemp("merge")
    base_ids = [f"r{k}" for k in range(6)]
    rules = "".join(f"      - {{id: {r}, when: {{pred_in_labels: true}}, then: right}}\n" for r in base_ids)
    base = write(tmp_path, "base.yaml", TINY.split("    rules:\n")[0] + "    rules:\n" + rules
                 + "      - {id: last, when: {always: true}, then: wrong}\n")
    updates: list[dict[str, Any]] = []
    for kind, a, b in ops:
        update: dict[str, Any] = {"id": f"r{a}"}
        if kind == "remove":
            update["remove"] = True
        elif kind in ("before", "after"):
            update[kind] = f"r{b}"
        updates.append(update)
    lines = []
    for u in updates:
        extra = "".join(f", {k}: {str(v).lower() if isinstance(v, bool) else v}" for k, v in u.items() if k != "id")
        body = "" if u.get("remove") else ", when: {pred_is_target: true}, then: near"
        lines.append(f"      - {{id: {u['id']}{extra}{body}}}\n")
    child = write(tmp_path, "child.yaml", HEADER.replace("tiny", "child") + f"extends: {base.name}\n"
                  + "axes:\n  category:\n    rules:" + ("\n" + "".join(lines) if lines else " []\n"))
    expected, bad = _merged_by_lists([*base_ids, "last"], updates)
    if bad:
        with pytest.raises(TaxonomyError) as info:
            load_taxonomy(child)
        assert sorted(p.key_path[-1] for p in info.value.problems) == bad
        return
    loaded = load_taxonomy(child)
    merged = loaded.document.axes["category"].rules
    assert [r.id for r in merged] == expected
    written = {u["id"] for u in updates if not u.get("remove")}
    for i, rule in enumerate(merged):
        file, _ = loaded.locate(("axes", "category", "rules", i))
        assert file == str(child if rule.id in written else base)


@pytest.mark.parametrize("part", ["rules:", "rules: 3", "values: {a: 1}"])
def test_extends_with_a_list_that_is_not_one_names_it(tmp_path: Path, part: str) -> None:
    base = write(tmp_path, "base.yaml", TINY)
    child = write(tmp_path, "child.yaml", HEADER + f"extends: {base.name}\naxes:\n  category:\n    {part}\n")
    with pytest.raises(TaxonomyError) as info:
        load_taxonomy(child)
    [problem] = info.value.problems
    assert problem.key_path == ("axes", "category", part.split(":")[0]) and problem.line == 6
    assert "must be a list" in problem.message


def test_cyclic_extends_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", TINY + "extends: b.yaml\n")
    write(tmp_path, "b.yaml", TINY + "extends: a.yaml\n")
    problems = problems_of(TINY + "extends: a.yaml\n", tmp_path)
    assert any("cyclic extends" in p for p in problems)


def test_rule_files_never_execute_code(tmp_path: Path) -> None:
    text = TINY + "evil: !!python/object/apply:os.system ['touch pwned']\n"
    problems = problems_of(text, tmp_path)
    assert any("invalid YAML" in p for p in problems)
    assert not Path("pwned").exists()


class ParityProvider:
    """A real provider: the test holds for even predictions, cannot be evaluated for pred 7."""

    name = "parity"

    def evaluate(self, test: str, params: Mapping[str, Any], batch: SampleBatch,
                 rows: np.ndarray) -> FeatureResult:
        pred = batch.pred[rows]
        known = pred != 7
        return FeatureResult(holds=pred % 2 == 0, known=known,
                             reason=[None if k else "seven is unknowable" for k in known.tolist()],
                             evidence=[{"pred": int(p)} for p in pred.tolist()])


FEATURE = HEADER + """\
axes:
  category:
    values: [{id: even}, {id: odd_or_unknown}, {id: last}]
    rules:
      - {id: even, when: {feature: {provider: parity, test: even}}, then: even}
      - {id: not_even, when: {not: {feature: {provider: parity, test: even}}}, then: odd_or_unknown}
      - {id: last, when: {always: true}, then: last}
"""


def test_feature_rules_record_not_evaluated_and_continue(tmp_path: Path) -> None:
    tx = compile_path(write(tmp_path, "f.yaml", FEATURE))
    batch = SampleBatch.from_lists(target=[0, 0, 0], labels=[[0], [0], [0]], pred=[2, 3, 7])
    without = evaluate(tx, batch)
    assert without.primary.value_names().tolist() == ["last"] * 3
    reasons = without.record(0)["evidence"]["not_evaluated"]
    assert [r["rule"] for r in reasons] == ["even", "not_even"]
    assert "no 'parity' feature provider is configured" in reasons[0]["reason"]
    with_provider = evaluate(tx, batch, {"parity": ParityProvider()})
    assert with_provider.primary.value_names().tolist() == ["even", "odd_or_unknown", "last"]
    assert with_provider.record(0)["evidence"]["feature"] == {"pred": 2}
    assert with_provider.record(2)["evidence"]["not_evaluated"][0]["reason"] == "seven is unknowable"
    trace = explain(tx, batch, 2, {"parity": ParityProvider()}).traces
    assert [t.result for t in trace] == ["not evaluated", "not evaluated", "holds"]


def test_bad_samples_name_the_sample_and_field() -> None:
    tx = default_compiled()
    with pytest.raises(SampleError, match="sample 1: field 'pred': class id 1000"):
        evaluate(tx, SampleBatch.from_lists(target=[1, 2], labels=[[1], [2]], pred=[1, 1000]))
    with pytest.raises(SampleError, match="sample 0: field 'labels': class id -3"):
        evaluate(tx, SampleBatch.from_lists(target=[1], labels=[[-3]], pred=[1]))
    with pytest.raises(SampleError, match="field 'labels'"):
        SampleBatch.from_lists(target=[1, 2], labels=[[1]], pred=[1, 2])


def test_json_schema_export_covers_the_language() -> None:
    schema = json_schema()
    text = str(schema)
    for key in ("pred_vs_label", "same_superclass", "cooccurs", "in_sample_list", "feature", "ancestor"):
        assert key in text
    assert schema["title"].startswith("ErrorTaxa")


# ------------------------------------------------------------ generated taxonomies and records

FLAGS = ["pred_is_target", "pred_in_labels", "target_in_labels", "labels_empty", "problematic"]


def reference_flag(flag: str, target: int, labels: list[int], pred: int, problematic: bool) -> bool:
    return {
        "pred_is_target": pred == target, "pred_in_labels": pred in labels,
        "target_in_labels": target in labels, "labels_empty": not labels, "problematic": problematic,
    }[flag]


flag_pred = st.tuples(st.sampled_from(FLAGS), st.booleans())
rule_pred = st.lists(flag_pred, min_size=1, max_size=3)
sample = st.tuples(st.integers(0, 5), st.lists(st.integers(0, 5), max_size=3), st.integers(0, 5), st.booleans())


@settings(max_examples=40, deadline=None)
@given(rules=st.lists(rule_pred, min_size=1, max_size=5), samples=st.lists(sample, min_size=1, max_size=30))
def test_generated_taxonomies_match_a_row_by_row_interpreter(
    tmp_path_factory: pytest.TempPathFactory, rules: list[list[tuple[str, bool]]],
    samples: list[tuple[int, list[int], int, bool]],
) -> None:
    lines = [HEADER, "axes:\n  category:\n    values: [{id: a}, {id: b}, {id: z}]\n    rules:\n"]
    for k, conj in enumerate(rules):
        parts = ", ".join(f"{{{flag}: {str(v).lower()}}}" for flag, v in conj)
        lines.append(f"      - {{id: r{k}, when: {{all: [{parts}]}}, then: {'ab'[k % 2]}}}\n")
    lines.append("      - {id: rest, when: {always: true}, then: z}\n")
    path = tmp_path_factory.mktemp("gen") / "g.yaml"
    path.write_text("".join(lines))
    tx = compile_path(path)
    batch = SampleBatch.from_lists(target=[s[0] for s in samples], labels=[s[1] for s in samples],
                                   pred=[s[2] for s in samples], problematic=[s[3] for s in samples])
    got = evaluate(tx, batch).primary.rule
    for i, (target, labels, pred, problematic) in enumerate(samples):
        expected = next((k for k, conj in enumerate(rules)
                         if all(reference_flag(f, target, labels, pred, problematic) == v for f, v in conj)),
                        len(rules))
        assert got[i] == expected
    # any slice of the batch decides the same as the whole
    half = len(batch) // 2
    assert np.array_equal(evaluate(tx, batch.slice(half, len(batch))).primary.rule, got[half:])


def test_image_set_classifier_equals_plain_evaluation() -> None:
    tx = default_compiled()
    rng = np.random.default_rng(3)
    n = 300
    target = rng.integers(0, 1000, n)
    labels = [[int(t)] + ([int(rng.integers(0, 1000))] if rng.random() < 0.3 else []) for t in target]
    images = SampleBatch.from_lists(target=target, labels=labels, pred=target,
                                    problematic=rng.random(n) < 0.1, images=[f"img{i}" for i in range(n)])
    clf = ImageSetClassifier(tx, images)
    for _ in range(3):
        pred = np.where(rng.random(n) < 0.5, target, rng.integers(0, 1000, n))
        shared = clf.classify(pred)
        plain = evaluate(tx, images.take(np.arange(n), pred))
        assert np.array_equal(shared.primary.rule, plain.primary.rule)
        assert np.array_equal(shared.primary.witness, plain.primary.witness)
        assert [shared.record(i) for i in range(n)] == [plain.record(i) for i in range(n)]
        outcome = clf.primary(pred)  # what a study counts, without the rest
        assert np.array_equal(outcome.value, plain.primary.value)
        assert np.array_equal(outcome.not_evaluated, plain.primary.not_evaluated)
        rows = np.flatnonzero(rng.random(n) < 0.5)
        some = clf.primary(pred[rows], rows)
        assert np.array_equal(some.value, plain.primary.value[rows])
        for r in range(len(tx.axes[tx.primary_axis].rules)):
            assert np.array_equal(some.rule_not_evaluated(r), plain.primary.rule_not_evaluated(r)[rows])
    assert plain.primary.not_evaluated.any()  # the OOV rule, without its provider


def test_classify_many_equals_per_model_classification() -> None:
    tx = default_compiled()
    rng = np.random.default_rng(4)
    n, models = 400, 12
    target = rng.integers(0, 1000, n)
    labels = [[int(t)] + ([int(rng.integers(0, 1000))] if rng.random() < 0.3 else []) for t in target]
    images = SampleBatch.from_lists(target=target, labels=labels, pred=target,
                                    problematic=rng.random(n) < 0.1, images=[f"img{i}" for i in range(n)])
    near = np.clip(target[None, :] + rng.integers(-3, 4, (models, n)), 0, 999)
    preds = np.where(rng.random((models, n)) < 0.6, target[None, :], near).astype(np.int16)
    many = ImageSetClassifier(tx, images).classify_many(preds, threads=3)
    single = ImageSetClassifier(tx, images)
    axis = tx.axes[tx.primary_axis]
    for m in range(models):
        plain = evaluate(tx, images.take(np.arange(n), preds[m]))
        assert np.array_equal(many.rule()[m], plain.primary.rule)
        assert np.array_equal(many.values()[m], plain.primary.value)
        assert many.counts[tx.primary_axis][m].tolist() == list(plain.primary.counts().values())
        assert [many.model(m).record(i) for i in range(n)] == [plain.record(i) for i in range(n)]
        assert np.array_equal(single.classify(preds[m]).primary.rule, plain.primary.rule)
    assert set(many.value_names().ravel()) <= set(axis.value_ids)
    rows = np.array([5, 3, 399])
    subset = many.classifier.classify_many(preds[:2, rows], rows)
    assert np.array_equal(subset.rule(), many.rule()[:2, rows])
    reordered = np.arange(n)[::-1]  # all images, in another order: records follow the rows
    backwards = many.classifier.classify(preds[0, reordered], reordered)
    assert [backwards.record(i) for i in range(n)] == [many.model(0).record(int(r)) for r in reordered]
    bad = preds[:2].copy()
    bad[1, 2] = 1000
    with pytest.raises(ValueError, match=r"preds\[1, 2\]: class id 1000"):
        many.classifier.classify_many(bad)
    with pytest.raises(ValueError, match="expected \\[models, 400\\]"):
        many.classifier.classify_many(preds[0])


def test_sample_list_lookup_is_the_same_on_taken_names() -> None:
    from errortaxa.engine.predicates.base import Context
    from errortaxa.engine.predicates.sample_list import InSampleListNode
    from errortaxa.engine.samples import IndexedNames

    names = [f"img{i}" for i in range(6)]
    base = SampleBatch.from_lists(target=[1] * 6, labels=[[1]] * 6, pred=[1] * 6, images=names)
    taken = base.take(np.array([5, 0, 5, 2, 3]))
    assert isinstance(taken.images, IndexedNames)
    twice = taken.take(np.array([4, 0]))
    assert twice.images == ["img3", "img5"] and taken.images[1:3] == ["img0", "img5"]
    assert taken.images[1:3] != ["img0"] and taken.images != "img5img0img5img2img3"
    plain = SampleBatch.from_lists(target=[1] * 5, labels=[[1]] * 5, pred=[1] * 5, images=list(taken.images))
    node = InSampleListNode("listed", frozenset({"img5", "img2"}))
    rows = np.array([0, 1, 3, 2])
    got = node.eval(Context(taken, {}), rows)
    assert got.true.tolist() == node.eval(Context(plain, {}), rows).true.tolist() == [True, False, True, True]


def test_dataframe_api_returns_decisions_beside_the_input() -> None:
    import pandas as pd
    from errortaxa.engine.run.frame import classify_frame

    frame = pd.DataFrame({"target": [250, 207], "labels": [[250], [207]], "pred": [248, 207]}, index=[10, 11])
    out = classify_frame(frame)
    assert out.loc[10, "category"] == "overlapping_classes" and out.loc[11, "category"] == "correct"
    assert list(out.columns[:3]) == ["target", "labels", "pred"]
    with pytest.raises(KeyError, match="pred"):
        classify_frame(frame.drop(columns=["pred"]))


def test_reprs_are_short_and_name_the_taxonomy() -> None:
    """Not the ~400 KB of the matrices, the wnids and the line maps: name, version, hash, shape."""
    taxonomy = default_compiled()
    batch = SampleBatch.from_lists(target=[1, 2, 3], labels=[[1], [2], [3]], pred=[1, 3, 3])
    decisions = evaluate(taxonomy, batch)
    explanation = explain(taxonomy, batch, 1)
    axis = taxonomy.axes[taxonomy.primary_axis]
    texts = {repr(taxonomy), repr(decisions), repr(explanation)}
    for text in texts:
        assert len(text) < 400 and "\n" not in text, text
        assert f"'{taxonomy.name}'" in text and f"'{taxonomy.version}'" in text and taxonomy.content_hash in text
    assert repr(taxonomy).startswith("CompiledTaxonomy(") and "classes=1000" in repr(taxonomy)
    assert f"{axis.name}: {len(axis.values)} values, {len(axis.rules)} rules" in repr(taxonomy)
    assert repr(decisions).startswith("Decisions(") and "samples=3" in repr(decisions)
    decided = decisions.record(1)["category"]
    assert repr(explanation).startswith("Explanation(") and f"'category': '{decided}'" in repr(explanation)
    assert f"traces={len(explanation.traces)}" in repr(explanation)
