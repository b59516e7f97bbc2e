"""errortaxa.client without a server: column encoding, typed errors, the health codec, results,
its dependencies, and the committed generated code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import grpc
import numpy as np
import pytest
from errortaxa.client import ClassifyResult, InvalidArgument, NotFound, Samples, _core, dataset_predictions
from errortaxa.client.errors import ErrorTaxaError, make_error
from errortaxa.v1 import samples_pb2, service_pb2, taxonomy_pb2
from errortaxa.v1.codec import STATUS_DETAILS_KEY, encode_status, extend_ints

ROOT = Path(__file__).resolve().parents[1]


def test_samples_from_lists_and_csr_agree() -> None:
    lists = Samples.build(target=[1, 2, 3], labels=[[1], [], [3, 4]], pred=[1, 5, 3],
                          problematic=[False, True, False], images=["a", "b", "c"])
    csr = Samples.build(target=np.array([1, 2, 3]), label_offsets=[0, 1, 1, 3], label_values=[1, 3, 4],
                        pred=np.array([1, 5, 3], np.int16), problematic=np.array([0, 1, 0]), images=["a", "b", "c"])
    assert lists.to_proto() == csr.to_proto()
    msg = lists.to_proto()
    assert list(msg.label_offsets) == [0, 1, 1, 3] and list(msg.label_values) == [1, 3, 4]
    assert list(msg.problematic) == [False, True, False] and not msg.HasField("oov")


def test_packed_columns_are_compact() -> None:
    n = 10_000
    samples = Samples.build(target=np.full(n, 999), pred=np.full(n, 998), label_offsets=np.arange(n + 1),
                            label_values=np.full(n, 999))
    size = samples.to_proto().ByteSize()
    assert size < n * 12  # packed varints: no per-sample message overhead


def test_slice_rebases_label_offsets() -> None:
    samples = Samples.build(target=[1, 2, 3, 4], labels=[[1], [2, 9], [], [4]], pred=[1, 2, 3, 4],
                            ids=["w", "x", "y", "z"], evidence=[None, {"oov": {}}, "{}", None])
    part = samples.slice(1, 3)
    assert part.label_offsets.tolist() == [0, 2, 2] and part.label_values.tolist() == [2, 9]
    assert list(part.ids or []) == ["x", "y"]
    msg = part.to_proto()
    assert list(msg.oov.evidence_json) == ['{"oov":{}}', "{}"]


@pytest.mark.parametrize("values", [
    np.array([], np.int32), np.array([0, 5, 127], np.int16), np.array([True, False]), np.array([0, 1 << 6], np.uint64),
    np.array([0, 128, 16384], np.int64), np.array([-1, 3], np.int32), np.array([0, 1 << 62], np.uint64)])
def test_small_int_columns_take_the_numpy_path_and_agree_with_lists(values: np.ndarray) -> None:

    field = {"b": "problematic", "u": "rows"}.get(values.dtype.kind, "witness")
    make = {"problematic": samples_pb2.SampleColumns, "rows": service_pb2.ClassifyResponse}.get(
        field, service_pb2.AxisDecisions)
    fast, slow = make(), make()
    extend_ints(fast, field, values)
    getattr(slow, field).extend(values.tolist())
    assert fast == slow and fast.SerializeToString() == slow.SerializeToString()
    extend_ints(fast, field, values)  # appends, like extend
    assert list(getattr(fast, field)) == values.tolist() * 2


def test_oov_inputs_pack_cut_and_attach() -> None:
    emb = np.arange(12, dtype=np.float32).reshape(3, 4)
    samples = Samples.build(target=[1, 2, 3], labels=[[1], [2], [3]], pred=[1, 2, 3], oov_embeddings=emb,
                            knn_classes=[[5, 6, 7], None, [8]], image_bytes=[b"a", None, b"c"])
    msg = samples.to_proto().oov
    assert (msg.embeddings.rows, msg.embeddings.cols, list(msg.embeddings.values)) == (3, 4, emb.ravel().tolist())
    assert (msg.knn_classes.rows, msg.knn_classes.cols) == (3, 3)
    assert list(msg.knn_classes.values) == [5, 6, 7, -1, -1, -1, 8, -1, -1]
    assert list(msg.image_bytes) == [b"a", b"", b"c"] and not len(msg.evidence_json)
    part = samples.slice(1, 3).to_proto().oov
    assert part.embeddings.rows == 2 and list(part.knn_classes.values) == [-1, -1, -1, 8, -1, -1]
    assert list(part.image_bytes) == [b"", b"c"]
    # OOV inputs beside given samples (an engine batch, Samples or dataset predictions)
    plain = Samples.build(target=[1], labels=[[1]], pred=[1])
    request = _core.classify_request(_core.batch_item(plain, {"knn_classes": np.array([[3, 4]])}))
    assert list(request.samples.oov.knn_classes.values) == [3, 4]
    keyed = _core.batch_item(dataset_predictions("d", pred=[1, 2]), {"image_bytes": [b"x", b"y"]})
    assert list(keyed.oov.image_bytes) == [b"x", b"y"] and list(keyed.pred) == [1, 2]
    with pytest.raises(TypeError, match="only provider_inputs and the OOV inputs"):
        _core.batch_item(plain, {"target": [2]})
    with pytest.raises(ValueError, match="2-d"):
        Samples.build(target=[1], pred=[1], oov_embeddings=np.ones(4))
    parts, total = _core.dataset_chunks("d", pred=[1, 2, 3], logits=None, images=None, batch_size=2,
                                        oov={"oov_embeddings": emb, "image_bytes": [b"a", b"b", b"c"]})
    chunks = list(parts)
    assert total == 3 and [c.oov.embeddings.rows for c in chunks] == [2, 1] and [c.offset for c in chunks] == [0, 2]
    assert [list(c.oov.image_bytes) for c in chunks] == [[b"a", b"b"], [b"c"]]


def test_samples_of_duck_types_an_engine_batch() -> None:
    class Batch:
        target = np.array([1])
        pred = np.array([2])
        label_offsets = np.array([0, 1])
        label_values = np.array([1])
        problematic = np.array([True])
        images = ("img",)
        ids = None

    msg = Samples.of(Batch()).to_proto()
    assert list(msg.target) == [1] and list(msg.images) == ["img"] and list(msg.problematic) == [True]


def test_dataset_predictions_one_of_pred_or_logits() -> None:
    assert list(dataset_predictions("d", pred=[3, 4], offset=10).pred) == [3, 4]
    logits = dataset_predictions("d", logits=np.eye(3, dtype=np.float32))
    assert (logits.logits.rows, logits.logits.cols) == (3, 3)
    with pytest.raises(ValueError):
        dataset_predictions("d")
    with pytest.raises(ValueError):
        dataset_predictions("d", pred=[1], logits=np.eye(1))


def test_dataset_chunks_carry_offsets() -> None:
    parts, total = _core.dataset_chunks("d", pred=np.arange(25), logits=None, images=None, batch_size=10)
    assert total == 25 and [(c.offset, len(c.pred)) for c in parts] == [(0, 10), (10, 10), (20, 5)]
    with pytest.raises(ValueError, match="no predictions given"):  # before any stream is opened
        _core.dataset_chunks("d", pred=[], logits=None, images=None, batch_size=10)
    with pytest.raises(TypeError, match="classify_many takes samples"):
        _core.many_samples(dataset_predictions("d", pred=[1]), {})


def test_taxonomy_refs() -> None:
    assert _core.taxonomy_ref(None) is None and _core.taxonomy_ref("") is None
    assert _core.taxonomy_ref("peychev2023") == taxonomy_pb2.TaxonomyRef(name="peychev2023")
    assert _core.taxonomy_ref("a@1.2") == taxonomy_pb2.TaxonomyRef(name="a", version="1.2")


def test_error_details_round_trip() -> None:
    detail = service_pb2.ErrorDetail(field="samples.pred", reason="CLASS_OUT_OF_RANGE", sample_index=7)
    detail.problems.add(file="f.yaml", line=3, key_path="axes.x", message="bad",
                        severity=taxonomy_pb2.SEVERITY_ERROR)
    blob = encode_status(grpc.StatusCode.INVALID_ARGUMENT.value[0], "nope", detail)
    error = make_error(grpc.StatusCode.INVALID_ARGUMENT, "nope", [(STATUS_DETAILS_KEY, blob)])
    assert isinstance(error, InvalidArgument)
    assert (error.field, error.sample_index, error.row, error.reason) == ("samples.pred", 7, None,
                                                                          "CLASS_OUT_OF_RANGE")
    assert str(error.problems[0]) == "f.yaml:3 [axes.x]: error: bad"
    plain = make_error(grpc.StatusCode.NOT_FOUND, "gone", [(STATUS_DETAILS_KEY, b"\xff\xff garbage")])
    assert isinstance(plain, NotFound) and plain.field == "" and plain.sample_index is None
    other = make_error(grpc.StatusCode.DATA_LOSS, "?")
    assert type(other) is ErrorTaxaError


def test_status_is_wire_compatible_with_google_rpc_status() -> None:
    from google.protobuf import any_pb2

    blob = encode_status(grpc.StatusCode.NOT_FOUND.value[0], "m", service_pb2.ErrorDetail(field="f"))
    # google.rpc.Status: code = 1 (int32), message = 2 (string), details = 3 (repeated Any)
    status = service_pb2.Status.FromString(blob)
    assert status.code == grpc.StatusCode.NOT_FOUND.value[0] and status.message == "m"
    assert isinstance(status.details[0], any_pb2.Any)
    assert status.details[0].type_url == "type.googleapis.com/errortaxa.v1.ErrorDetail"


def test_health_codec() -> None:
    assert _core.encode_health_request("") == b""
    assert _core.encode_health_request("errortaxa.v1.ErrorTaxa") == b"\n\x16errortaxa.v1.ErrorTaxa"
    assert _core.decode_health_status(b"\x08\x01") == "SERVING"
    assert _core.decode_health_status(b"\x08\x02") == "NOT_SERVING"
    assert _core.decode_health_status(b"") == "UNKNOWN"


def test_backoff_is_bounded_and_grows() -> None:
    backoff = _core.Backoff(retries=5, initial=0.1, maximum=0.5)
    for attempt in range(10):
        assert 0 <= backoff.delay(attempt) <= min(0.5, 0.1 * 2**attempt)


def _response(values: list[int], version: str = "1.0") -> service_pb2.ClassifyResponse:
    response = service_pb2.ClassifyResponse(count=len(values))
    response.taxonomy.name, response.taxonomy.version = "t", version
    axis = response.axes.add(axis="category", values=["a", "b"], rules=["r0", "r1"])
    axis.value.extend(values)
    axis.rule.extend(values)
    axis.witness.extend([-1] * len(values))
    response.record_json.extend(json.dumps({"category": "ab"[v] if v >= 0 else None}) for v in values)
    return response


def test_results_decode_and_concatenate() -> None:
    first = ClassifyResult.from_proto(_response([0, 1, -1]))
    assert first.category == ["a", "b", None] and first.rule == ["r0", "r1", None]
    assert first.axes["category"].counts() == {"a": 1, "b": 1}
    assert first.axes["category"].not_evaluated.tolist() == [[False, False]] * 3
    assert first.evidence is None and first.records[1] == {"category": "b"}
    both = ClassifyResult.concat([first, ClassifyResult.from_proto(_response([1]))])
    assert both.category == ["a", "b", None, "b"] and len(both.records) == 4
    with pytest.raises(ValueError):
        ClassifyResult.concat([first, ClassifyResult.from_proto(_response([1], version="2.0"))])
    empty = _response([0])
    del empty.record_json[:]
    with pytest.raises(ValueError):
        _ = ClassifyResult.from_proto(empty).records


def test_client_imports_neither_the_engine_nor_torch() -> None:
    code = ("import sys, errortaxa.client, errortaxa.client.aio; "
            "bad = sorted(m for m in sys.modules if m.startswith(('errortaxa.engine', 'errortaxa.server', "
            "'torch', 'pandas', 'pydantic'))); print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_client_distribution_depends_on_grpc_protobuf_numpy_only() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "clients" / "python" / "pyproject.toml").read_text())["project"]
    names = {dep.split(">")[0].split("=")[0].split("<")[0].strip() for dep in project["dependencies"]}
    assert names == {"grpcio", "protobuf", "numpy"}


def test_generated_code_is_up_to_date() -> None:
    """In the generator's own environment (make codegen), as make lint runs it."""
    codegen = Path(os.environ.get("ERRORTAXA_CODEGEN_PYTHON", ROOT / ".venv-codegen" / "bin" / "python"))
    if not codegen.is_file():
        pytest.skip("no codegen environment: make codegen")
    result = subprocess.run([str(codegen), str(ROOT / "scripts" / "gen_protos.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_protos_use_packed_columns() -> None:
    field = samples_pb2.SampleColumns.DESCRIPTOR.fields_by_name["target"]
    assert field.is_repeated and field.is_packed
    assert service_pb2.AxisDecisions.DESCRIPTOR.fields_by_name["value"].is_packed


def test_every_rpc_of_the_proto_has_one_entry_serving_both_clients() -> None:
    import inspect

    from errortaxa.client import AsyncClient, Client
    from errortaxa.client.rpcs import Batched, Stream, Unary, entries

    table = entries()
    service = service_pb2.DESCRIPTOR.services_by_name["ErrorTaxa"]
    described = {e.method.path for e in table.values() if isinstance(e, (Unary, Stream))}
    assert described - {_core.HEALTH_METHOD} == {f"/errortaxa.v1.ErrorTaxa/{m.name}" for m in service.methods}
    for name, entry in table.items():
        assert isinstance(entry, (Unary, Stream, Batched))
        with Client("localhost:1") as client:
            unopened = object.__new__(AsyncClient)  # an AsyncClient needs a running loop to open
            methods = [getattr(client, name), getattr(AsyncClient, name).__get__(unopened, AsyncClient)]
            for method in methods:
                assert method.__doc__ and method.__name__ == entry.build.__name__
                assert inspect.signature(method) == inspect.signature(entry.build)


def test_a_client_call_builds_its_request_when_run() -> None:
    import asyncio

    from errortaxa.client import AsyncClient, Client

    with Client("localhost:1") as client, pytest.raises(ValueError, match="exactly one of pred and logits"):
        client.classify_dataset("d")

    async def main() -> None:
        client = AsyncClient("localhost:1")
        pending = client.classify_dataset("d")  # nothing raised before it is awaited
        with pytest.raises(ValueError, match="exactly one of pred and logits"):
            await pending
        await client.close()

    asyncio.run(main())
