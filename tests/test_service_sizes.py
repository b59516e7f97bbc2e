"""A ClassifyResponse's size: the bound taken before the work holds on real encoded responses of
worst-case records, a request whose response could be over the limit is refused before the
evaluation runs, and an answer found over the limit after the work is refused with a detail that
names it (real servers on 127.0.0.1, the real default taxonomy)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
import pytest
from errortaxa.client import Client, ResourceExhausted
from errortaxa.engine import SampleBatch, default_compiled, evaluate
from errortaxa.engine.predicates import base, cooccurrence, pair_logic, superclass
from errortaxa.server import RunningServer, ServerConfig, build_server, convert, service, sizes
from errortaxa.server.taxonomies import info_of
from errortaxa.v1 import samples_pb2, service_pb2, service_pb2_grpc


def worst_case_batch(compiled: Any, seed: int = 0) -> SampleBatch:
    """Samples that reach every rule with witnesses and the largest pair evidence: each class as
    target against the classes sharing the most superclasses with it, the pairs that co-occur the
    most, random pairs; label sets of several classes; ids with quotes, backslashes, control
    characters and characters of four UTF-8 bytes; some problematic samples."""
    rng = np.random.default_rng(seed)
    membership = compiled.membership.astype(np.int64)
    shared = membership @ membership.T
    np.fill_diagonal(shared, -1)
    pairs = [(t, int(p)) for t in range(compiled.vocabulary.size if hasattr(compiled.vocabulary, "size") else
                                         len(compiled.vocabulary.wnids)) for p in np.argsort(-shared[t])[:3]]
    for table in compiled.cooccurrence.values():
        flat = np.argsort(-table, axis=None)[:500]
        pairs += [(int(a), int(b)) for b, a in zip(*np.unravel_index(flat, table.shape), strict=True)]
    pairs += [(int(a), int(b)) for a, b in rng.integers(0, len(compiled.vocabulary.wnids), (2000, 2))]
    target = np.array([t for t, _ in pairs])
    pred = np.array([p for _, p in pairs])
    labels = [sorted({int(t), *rng.integers(0, 1000, int(rng.integers(0, 4))).tolist()}) for t in target]
    weird = ['"\\', "\x01\x1f", "\U0001f600" * 3, "ü"]
    ids = [f"{weird[i % 4]}-{i}" + "x" * int(rng.integers(0, 40)) for i in range(len(pairs))]
    return SampleBatch.from_lists(target=target.tolist(), pred=pred.tolist(), labels=labels, ids=ids,
                                  problematic=(rng.random(len(pairs)) < 0.1).tolist())


OPTIONS = [service_pb2.ResultOptions(records=r, evidence=e, structured=s)
           for r, e, s in itertools.product([False, True], repeat=3)]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: str(o).replace("\n", " ") or "columns")
def test_the_bound_holds_on_real_encoded_responses(options: service_pb2.ResultOptions) -> None:
    compiled = default_compiled()
    bound = sizes.record_bound(compiled)
    batch = worst_case_batch(compiled)
    decisions = evaluate(compiled, batch)
    response = service_pb2.ClassifyResponse(taxonomy=info_of(compiled), count=len(batch), sequence=-1)
    convert.fill_decisions(response, decisions, options)
    total = response.taxonomy.ByteSize() + sizes.response_bound(bound, batch, options)
    assert response.ByteSize() <= total
    if options.records:  # a bound, not a wall: within a few times what the worst case takes
        assert total <= 4 * response.ByteSize()


def test_the_largest_record_bounds_every_real_record() -> None:
    compiled = default_compiled()
    bound = sizes.record_bound(compiled)
    batch = worst_case_batch(compiled, seed=1)
    decisions = evaluate(compiled, batch)
    records = [{k: v for k, v in r.items() if k != "id"} for r in decisions.records()]
    not_evaluated = sum(bool(r["evidence"].get("not_evaluated")) for r in records)
    witnessed = sum("superclasses" in r["evidence"] or "cooccurrence" in r["evidence"] for r in records)
    assert not_evaluated > 100 and witnessed > 100  # the batch reaches what the bound covers
    assert max(len(convert.dumps(r)) for r in records) <= bound.record_json
    assert max(convert.struct(r).ByteSize() for r in records) <= bound.record_struct
    assert max(len(convert.dumps(r["evidence"])) for r in records) <= bound.evidence_json
    assert max(convert.struct(r["evidence"]).ByteSize() for r in records) <= bound.evidence_struct


def test_every_pair_predicate_with_evidence_bounds_it() -> None:
    def subclasses(cls: type) -> Iterator[type]:
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    for cls in subclasses(base.PairNode):  # who reports evidence declares its largest
        if cls.evidence is not base.PairNode.evidence:
            assert cls.evidence_bound is not base.PairNode.evidence_bound, cls
    compiled = default_compiled()
    rng = np.random.default_rng(2)
    table = next(iter(compiled.cooccurrence.values()))
    nodes: list[base.PairNode] = [
        superclass.SharedSuperclass(compiled.same_superclass, compiled.membership, compiled.superclass_names),
        cooccurrence.Cooccurs(table, 1)]
    nodes.append(pair_logic.PairJunction(nodes[0].matrix | nodes[1].matrix, list(nodes)))
    for node in nodes:
        bound = node.evidence_bound()
        held = np.argwhere(node.matrix)
        for a, b in held[rng.integers(0, len(held), 5000)]:
            for key, value in node.evidence(int(a), int(b)).items():
                assert len(convert.dumps(value)) <= len(convert.dumps(bound[key])), (type(node), key)


def start(**settings: Any) -> RunningServer:
    return build_server(ServerConfig(host="127.0.0.1", port=0, drain_seconds=0.0, grace_seconds=1.0, **settings))


@pytest.fixture(scope="module")
def small_limit() -> Iterator[RunningServer]:
    running = start(max_message_mb=1)
    yield running
    running.stop(0)


def columns(n: int) -> dict[str, Any]:
    rng = np.random.default_rng(3)
    target = rng.integers(0, 1000, n)
    return dict(target=target, pred=rng.integers(0, 1000, n), label_offsets=np.arange(n + 1), label_values=target)


def test_a_big_request_is_refused_before_the_evaluation(small_limit: RunningServer,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The 1.2M-sample case scaled down to a 1 MB limit: refused with RESOURCE_EXHAUSTED naming the
    limit, and the evaluation never ran; a request that fits runs."""
    evaluations: list[int] = []
    real = service.evaluate

    def counted(compiled: Any, batch: SampleBatch, *args: Any, **kwargs: Any) -> Any:
        evaluations.append(len(batch))
        return real(compiled, batch, *args, **kwargs)

    monkeypatch.setattr(service, "evaluate", counted)
    with Client(f"127.0.0.1:{small_limit.port}", retries=0, timeout=30) as c:
        for n, records in ((5_000, True), (100_000, False)):
            with pytest.raises(ResourceExhausted) as refused:
                c.classify(**columns(n), records=records)
            assert refused.value.reason == "RESPONSE_TOO_LARGE" and refused.value.field == "options"
            assert "max_message_mb = 1" in refused.value.message and f"for {n} samples" in refused.value.message
        assert evaluations == []  # refused before the work
        assert len(c.classify(**columns(1000), records=True).category) == 1000
        assert evaluations == [1000]


def test_an_answer_over_the_limit_after_the_work_is_refused_with_the_limit(small_limit: RunningServer) -> None:
    """Evidence sent with the samples is counted at its size before the work; numbers written
    short (``1e5``) come back longer (``100000.0``), so this answer is found too large only once
    built: RESOURCE_EXHAUSTED with the limit named, not gRPC's own error."""
    evidence = '{"oov": {"fine_grained_oov": true, "v": [' + ",".join(["1e5"] * 700) + "]}}"

    def request(n: int) -> service_pb2.ClassifyRequest:
        return service_pb2.ClassifyRequest(
            samples=samples_pb2.SampleColumns(target=[0] * n, pred=[500] * n, label_offsets=list(range(n + 1)),
                                              label_values=[0] * n,
                                              oov=samples_pb2.OovEvidence(evidence_json=[evidence] * n)),
            options=service_pb2.ResultOptions(records=True))

    with grpc.insecure_channel(f"127.0.0.1:{small_limit.port}") as channel:
        stub = service_pb2_grpc.ErrorTaxaStub(channel)
        one = stub.Classify(request(1), timeout=30)
        assert one.axes[0].values[one.axes[0].value[0]] == "fine_grained_oov"  # the evidence is in the record
        assert len(one.record_json[0]) > 6000 > len(evidence) > 2000
        with pytest.raises(grpc.RpcError) as refused:
            stub.Classify(request(200), timeout=30)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    details = str(refused.value.details())
    assert "max_message_mb = 1" in details and "takes" in details
