"""The predicate registry: every predicate compiled and evaluated through it, evidence from the node
that held, not-evaluated rules without a limit (locally and over gRPC), explain from one evaluation."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from errortaxa.engine import (
    FeatureResult,
    SampleBatch,
    compile_path,
    default_compiled,
    evaluate,
    explain,
    summarize,
)
from errortaxa.engine.language.loader import load_taxonomy
from errortaxa.engine.language.schema import TAG_KEYS, json_schema
from errortaxa.engine.predicates.registry import PAIR, SAMPLE
from errortaxa.engine.run.imageset import ImageSetClassifier

HEADER = "schema: errortaxa/v1\nname: relations\n"

# ImageNet classes: 0 tench, 1 goldfish (siblings), 390 eel (deepest common ancestor at depth 13
# with the tench, not a sibling), 207 golden retriever, 151 Chihuahua and 158 toy terrier (both in
# the default taxonomy's toy_dog and small_shorthaired_dog).
RELATIONS = HEADER + """\
axes:
  category:
    values: [{id: same}, {id: ancestor}, {id: descendant}, {id: sibling}, {id: deep}, {id: other}]
    rules:
      - {id: same, when: {pred_vs_target: {same_class: true}}, then: same}
      - {id: ancestor, when: {pred_vs_label: {ancestor: true}}, then: ancestor}
      - {id: descendant, when: {pred_vs_label: {descendant: true}}, then: descendant}
      - {id: sibling, when: {pred_vs_label: {sibling: true}}, then: sibling}
      - {id: deep, when: {pred_vs_target: {lca_depth: {min: 12}}}, then: deep}
      - id: unrelated
        when: {pred_vs_target: {all: [{ancestor: false}, {descendant: false}, {not: {same_class: true}}]}}
        then: other
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_language_is_derived_from_the_registry() -> None:
    text = str(json_schema())
    for key in (*SAMPLE, *PAIR):
        assert f"'{key}'" in text, key
    assert set(SAMPLE) | set(PAIR) <= TAG_KEYS
    assert list(SAMPLE)[:3] == ["pred_is_target", "pred_in_labels", "target_in_labels"]


def test_every_predicate_module_is_in_the_registry() -> None:
    import importlib
    import pkgutil

    from errortaxa.engine import predicates

    listed = {id(e) for e in (*SAMPLE.values(), *PAIR.values())}
    for info in pkgutil.iter_modules(predicates.__path__):
        module = importlib.import_module(f"errortaxa.engine.predicates.{info.name}")
        for entry in getattr(module, "ENTRIES", []):
            assert id(entry) in listed, (info.name, entry.key)


def test_wordnet_relations_and_same_class_decide_with_their_witness(tmp_path: Path) -> None:
    tx = compile_path(write(tmp_path, "r.yaml", RELATIONS))
    batch = SampleBatch.from_lists(target=[207, 0, 0, 207], labels=[[207], [0], [0], [207]], pred=[207, 1, 390, 0])
    decisions = evaluate(tx, batch)
    assert decisions.primary.value_names().tolist() == ["same", "sibling", "deep", "other"]
    records = [decisions.record(i) for i in range(4)]
    assert [r["rule"] for r in records] == ["same", "sibling", "deep", "unrelated"]
    assert [r["evidence"]["with_class"] for r in records] == [207, 0, 0, 207]
    assert records[1]["evidence"] == {"with_class": 0, "with_wnid": "n01440764", "with_name": "tench"}
    # the ImageNet classes are WordNet leaves: no class is an ancestor or descendant of another
    ancestor = tx.axes["category"].rules[1]
    traces = explain(tx, batch, 1).traces
    assert [(t.rule, t.result) for t in traces][:4] == [
        ("same", "fails"), ("ancestor", "fails"), ("descendant", "fails"), ("sibling", "holds")]
    assert traces[3].evidence["with_class"] == 0 and traces[4].result == "not reached"
    assert ancestor.node.describe() == 'prediction vs some label: {"ancestor": true}'


def test_evidence_is_that_of_the_superclasses_the_rule_names(tmp_path: Path) -> None:
    child = write(tmp_path, "toy.yaml", HEADER.replace("relations", "toy") + """\
extends: imagenet/peychev2023
axes:
  category:
    values: [{id: toy_confusion}]
    rules:
      - {id: toy, before: fine_grained, when: {pred_vs_label: {same_superclass: [toy_dog]}}, then: toy_confusion}
      - id: not_fine
        before: fine_grained
        when: {all: [{problematic: true}, {not: {pred_vs_label: {same_superclass: true}}}]}
        then: toy_confusion
""")
    tx = compile_path(child)
    batch = SampleBatch.from_lists(target=[151, 207, 151], labels=[[151], [207], [151]], pred=[158, 208, 0],
                                   problematic=[False, False, True])
    decisions = evaluate(tx, batch)
    first = decisions.record(0)
    assert first["rule"] == "toy"
    assert first["evidence"]["superclasses"] == ["toy_dog"]  # not small_shorthaired_dog, which it shares too
    assert decisions.record(1)["rule"] == "fine_grained"
    assert decisions.record(1)["evidence"]["superclasses"] == ["retriever"]
    negated = decisions.record(2)
    assert negated["rule"] == "not_fine"
    assert {k: v for k, v in negated["evidence"].items() if k != "not_evaluated"} == {}  # nothing of what it negates


def test_a_negated_pair_predicate_reports_nothing_of_what_it_negates() -> None:
    tx = default_compiled()
    # spurious_correlation: pred_vs_label all [cooccurs, not same_superclass]
    rule = next(r for r in tx.axes["category"].rules if r.id == "spurious_correlation")
    [leaf] = rule.witness_leaves
    pred, label = (int(x) for x in np.argwhere(leaf.pair.matrix)[0])
    record = evaluate(tx, SampleBatch.from_lists(target=[label], labels=[[label]], pred=[pred])).record(0)
    assert record["rule"] == "spurious_correlation"
    assert record["evidence"]["cooccurrence"] == int(tx.cooccurrence["real_val"][pred, label]) >= 2
    assert "superclasses" not in record["evidence"]


FEATURE_RULES = 70


def many_oov_rules(tmp_path: Path) -> Path:
    """The default taxonomy plus 70 rules that need the OOV provider (71 with its own)."""
    lines = [HEADER.replace("relations", "many_oov"), "extends: imagenet/peychev2023\naxes:\n  category:\n    rules:\n"]
    for k in range(FEATURE_RULES):
        feature = f"{{provider: oov, test: fine_grained_oov, params: {{knn_k: {k + 11}}}}}"
        lines.append(f"      - {{id: oov_{k}, before: model_failure, then: fine_grained_oov,\n"
                     f"         when: {{feature: {feature}}}}}\n")
    return write(tmp_path, "many.yaml", "".join(lines))


def skipped_rule_ids(record: dict[str, Any]) -> list[str]:
    return [s["rule"] for s in record["evidence"]["not_evaluated"]]


def test_a_decision_lists_every_rule_not_evaluated_beyond_64(tmp_path: Path) -> None:
    tx = compile_path(many_oov_rules(tmp_path))
    axis = tx.axes["category"]
    oov_rules = [r.id for r in axis.rules if r.node.can_be_unknown() and r.id != "non_prototypical"]
    assert len(oov_rules) == FEATURE_RULES + 1 and len(axis.rules) > 64
    batch = SampleBatch.from_lists(target=[1, 1, 207], labels=[[1], [1], [207]], pred=[900, 1, 0])
    decisions = evaluate(tx, batch)
    skipped = skipped_rule_ids(decisions.record(0))
    assert [r for r in skipped if r != "non_prototypical"] == oov_rules
    assert "not_evaluated" not in decisions.record(1)["evidence"]  # correct: decided before any of them
    assert summarize(tx, decisions)["not_evaluated"][oov_rules[-1]] == 2
    # the many-model memo keeps them too
    images = SampleBatch.from_lists(target=[1, 207], labels=[[1], [207]], pred=[1, 207])
    many = ImageSetClassifier(tx, images).classify_many(np.array([[900, 0], [1, 0]]))
    assert skipped_rule_ids(many.model(0).record(0)) == skipped_rule_ids(decisions.record(0))


@pytest.fixture(scope="module")
def many_rules_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from errortaxa.server import ServerConfig, build_server

    path = many_oov_rules(tmp_path_factory.mktemp("many"))
    running = build_server(ServerConfig(host="127.0.0.1", port=0, drain_seconds=0.0, grace_seconds=2.0,
                                        default_taxonomy=str(path)))
    yield running
    running.stop(0)


def test_every_rule_not_evaluated_reaches_the_client(tmp_path: Path, many_rules_server: Any) -> None:
    from errortaxa.client import Client

    tx = compile_path(many_oov_rules(tmp_path))
    columns = {"target": [1, 1, 207], "labels": [[1], [1], [207]], "pred": [900, 1, 0]}
    want = evaluate(tx, SampleBatch.from_lists(**columns))
    with Client(f"127.0.0.1:{many_rules_server.port}", retries=0, timeout=30) as client:
        got = client.classify(**columns, records=True)
    axis = got.axes["category"]
    assert axis.not_evaluated.shape == (3, len(tx.axes["category"].rules))
    for i in range(3):
        assert axis.not_evaluated[i].tolist() == [want.primary.rule_not_evaluated(r)[i]
                                                  for r in range(len(axis.rules))]
        assert got.records[i] == want.record(i)
    assert len(skipped_rule_ids(got.records[0])) == FEATURE_RULES + 2  # and non_prototypical: no image name


class Counting:
    """A real provider that answers from the prediction and records every row it is asked about."""

    name = "parity"

    def __init__(self) -> None:
        self.asked: list[list[int]] = []

    def evaluate(self, test: str, params: Mapping[str, Any], batch: SampleBatch, rows: np.ndarray) -> FeatureResult:
        self.asked.append(rows.tolist())
        pred = batch.pred[rows]
        return FeatureResult(holds=pred % 2 == 0, known=np.ones(rows.shape[0], bool), reason=[None] * rows.shape[0],
                             evidence=[{"pred": int(p)} for p in pred.tolist()])


FEATURE = HEADER.replace("relations", "parity") + """\
axes:
  category:
    values: [{id: even}, {id: rest}]
    rules:
      - {id: even, when: {all: [{pred_is_target: false}, {feature: {provider: parity, test: even}}]}, then: even}
      - {id: rest, when: {always: true}, then: rest}
"""


def test_explain_evaluates_the_one_sample_once(tmp_path: Path) -> None:
    tx = compile_path(write(tmp_path, "p.yaml", FEATURE))
    batch = SampleBatch.from_lists(target=[0, 0, 0], labels=[[0], [0], [0]], pred=[3, 4, 5])
    provider = Counting()
    explanation = explain(tx, batch, 1, {"parity": provider})
    assert provider.asked == [[1]]  # the row of the original batch, once
    even, rest = explanation.traces
    assert (even.result, rest.result) == ("holds", "not reached")
    assert even.detail == "pred_is_target is false: true; feature parity.even: true"
    assert even.evidence == {"feature": {"pred": 4}}
    assert explanation.record() == evaluate(tx, batch, {"parity": Counting()}).record(1)
    short = explain(tx, SampleBatch.from_lists(target=[2], labels=[[2]], pred=[2]), 0, {"parity": provider})
    assert short.traces[0].detail == "pred_is_target is false: false; feature parity.even: not reached"


def test_a_rule_with_several_class_pair_tests_reports_the_one_that_gave_the_witness(tmp_path: Path) -> None:
    tx = compile_path(write(tmp_path, "two.yaml", HEADER.replace("relations", "two") + """\
resources:
  real: {kind: cooccurrence, builtin: real_val, source: test}
superclasses:
  terrier: {members: {ancestor: terrier.n.01}}
axes:
  category:
    values: [{id: near}, {id: far}]
    rules:
      - id: near
        when:
          any:
            - {pred_vs_label: {same_superclass: true}}
            - {pred_vs_target: {cooccurs: {table: real, min_count: 1}}}
        then: near
      - {id: far, when: {always: true}, then: far}
"""))
    cooc = tx.cooccurrence["real"]
    a, b = (int(x) for x in np.argwhere((cooc >= 1) & ~tx.same_superclass)[0])
    batch = SampleBatch.from_lists(target=[189, b], labels=[[189], [b]], pred=[190, a])
    plain = evaluate(tx, batch)
    assert plain.record(0)["evidence"]["superclasses"] == ["terrier"]
    assert plain.record(1)["evidence"] == {"with_class": b, "with_wnid": tx.vocabulary.wnids[b],
                                           "with_name": tx.vocabulary.names[b], "cooccurrence": int(cooc[a, b])}
    many = ImageSetClassifier(tx, batch).classify_many(np.array([[190, a], [189, a]]))
    assert [many.model(0).record(i) for i in range(2)] == [plain.record(i) for i in range(2)]


def test_errors_in_nested_predicates_point_at_their_key(tmp_path: Path) -> None:
    text = RELATIONS.replace("{lca_depth: {min: 12}}", "{lca_depth: {min: deep}}")
    from errortaxa.engine import TaxonomyError

    with pytest.raises(TaxonomyError) as info:
        load_taxonomy(write(tmp_path, "bad.yaml", text))
    [problem] = info.value.problems
    assert problem.key_path == ("axes", "category", "rules", 4, "when", "pred_vs_target", "lca_depth", "min")
