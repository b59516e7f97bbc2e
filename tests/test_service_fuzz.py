"""Bad input never reaches INTERNAL or UNKNOWN: the listed hostile cases, data directories, and a
fuzz of every RPC with hypothesis-generated messages (a real server on 127.0.0.1)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from errortaxa.client import Client, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from errortaxa.server import RunningServer, ServerConfig, build_server
from errortaxa.v1 import samples_pb2, service_pb2
from fuzz_messages import SERVICE, messages
from hypothesis import HealthCheck, given, settings
from raw_calls import raw_call

BAD_CODES = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}




@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    (root / "targets.txt").write_text("1\n2\n3\n")
    (root / "secret.txt").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (root / "labels").mkdir()
    return root


@pytest.fixture(scope="module")
def server(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = build_server(ServerConfig(host="127.0.0.1", port=0, drain_seconds=0.0, grace_seconds=1.0,
                                        store=tmp_path_factory.mktemp("store"), data_dirs=(data,),
                                        datasets={"multilabel": str(data / "targets.txt")}))
    yield running
    running.stop(0)


@pytest.fixture()
def client(server: RunningServer) -> Iterator[Client]:
    with Client(f"127.0.0.1:{server.port}", retries=0, timeout=30) as c:
        yield c


def call(server: RunningServer, method: str, request: Any, timeout: float = 20) -> grpc.StatusCode:
    """Call ``method`` (a stream with ``request`` as its batches for ClassifyStream); its status code."""
    m = SERVICE.methods_by_name[method]
    from google.protobuf import message_factory

    reply = message_factory.GetMessageClass(m.output_type)
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        path = f"/{SERVICE.full_name}/{method}"
        try:
            if m.client_streaming:
                stub = channel.stream_stream(path, request_serializer=lambda r: r.SerializeToString(),
                                             response_deserializer=reply.FromString)
                list(stub(iter(request), timeout=timeout))
            else:
                stub = channel.unary_unary(path, request_serializer=lambda r: r.SerializeToString(),
                                           response_deserializer=reply.FromString)
                stub(request, timeout=timeout)
        except grpc.RpcError as exc:
            code = exc.code()
            assert code not in BAD_CODES, f"{method}: {code}: {exc.details()}\nrequest: {request}"
            details = str(exc.details())
            assert len(details) <= 1100, f"{method}: a {len(details)}-character message"
            return code
    return grpc.StatusCode.OK


# ------------------------------------------------------------------------------ the listed cases
def test_logits_with_rows_and_no_columns(server: RunningServer) -> None:
    request = service_pb2.ClassifyRequest(dataset=samples_pb2.DatasetPredictions(
        dataset="multilabel", logits=samples_pb2.FloatMatrix(rows=2, cols=0)))
    with pytest.raises(InvalidArgument) as caught:
        raw_call(server.port, "Classify", request)
    assert caught.value.field == "dataset.logits"


def test_deeply_nested_evidence(client: Client) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(InvalidArgument) as caught:
        client.classify(target=[250], labels=[[250]], pred=[700], evidence=[deep])
    assert caught.value.field == "samples.oov.evidence_json" and "nested too deeply" in caught.value.message


def test_remove_without_extends(client: Client) -> None:
    text = ('schema: errortaxa/v1\nname: t\nversion: "1"\nvocabulary: imagenet1k\naxes:\n  category:\n'
            '    values: [{id: a}]\n    rules:\n      - {id: x, remove: true}\n'
            '      - {id: y, when: {always: true}, then: a}\n')
    result = client.validate_taxonomy(text)
    assert not result.ok and any("remove: true" in p.message and "extends" in p.message for p in result.problems)
    with pytest.raises(InvalidArgument) as caught:
        client.put_taxonomy(text)
    assert caught.value.reason == "TAXONOMY_INVALID"


def test_a_long_version_name_is_not_echoed(client: Client) -> None:
    version = "v" * 100_000
    with pytest.raises(NotFound) as caught:
        client.classify(target=[250], labels=[[250]], pred=[248], taxonomy=f"peychev2023@{version}")
    assert caught.value.field == "taxonomy.version" and len(caught.value.message) < 300


def test_register_dataset_reads_only_the_data_directories(client: Client, data: Path) -> None:
    assert client.register_dataset("targets", "targets.txt").size == 3  # relative to a data directory
    for outside in ("/etc/passwd", "/proc/self/environ", str(data / ".." / "elsewhere.txt"), "../../etc/passwd"):
        with pytest.raises(PermissionDenied) as caught:
            client.register_dataset("x", outside)
        assert "root:" not in caught.value.message and caught.value.reason == "OUTSIDE_DATA_DIRS"
    with pytest.raises(NotFound) as long_name:  # a name the system refuses (ENAMETOOLONG), found by the long fuzz
        client.register_dataset("x", "[" * 5000)
    assert long_name.value.field == "path" and len(long_name.value.message) < 300
    with pytest.raises(InvalidArgument) as bad:  # inside, but not a label file: its content is not shown
        client.register_dataset("x", str(data / "secret.txt"))
    assert "root:x" not in str(bad.value) and "/bin/bash" not in str(bad.value)


def test_register_dataset_needs_data_directories() -> None:
    running = build_server(ServerConfig(host="127.0.0.1", port=0, drain_seconds=0.0))
    try:
        with Client(f"127.0.0.1:{running.port}", retries=0) as c, pytest.raises(FailedPrecondition):
            c.register_dataset("x", "/etc/passwd")
    finally:
        running.stop(0)


# ------------------------------------------------------------------------------ the fuzz
FUZZ = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("method", [m.name for m in SERVICE.methods])
def test_fuzz_every_rpc(server: RunningServer, method: str) -> None:
    m = SERVICE.methods_by_name[method]
    strategy = messages(m.input_type)
    codes: set[grpc.StatusCode] = set()
    started = time.monotonic()

    if m.client_streaming:
        from hypothesis import strategies as st

        @FUZZ
        @given(st.lists(strategy, min_size=1, max_size=3))
        def run(batches: list[Any]) -> None:
            codes.add(call(server, method, batches))
    else:
        @FUZZ
        @given(strategy)
        def run(request: Any) -> None:
            codes.add(call(server, method, request))

    run()
    assert time.monotonic() - started < 15, f"{method}: the fuzz took too long"
    with Client(f"127.0.0.1:{server.port}", retries=0) as c:  # a correct request still answers
        assert c.classify(target=[250], labels=[[250]], pred=[248]).category == ["overlapping_classes"]
        assert c.health() == "SERVING"
