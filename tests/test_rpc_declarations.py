"""Every RPC is declared once (the ``(errortaxa.v1.rpc)`` option in the .proto) and the server, the
client and the handlers agree with the declarations; a method without one is refused on a running
server whatever the token (real servers on 127.0.0.1, raw gRPC channels)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from errortaxa.client import Client
from errortaxa.client.rpcs import HEALTH, Stream, Unary, entries, methods
from errortaxa.server import RunningServer, ServerConfig, build_server
from errortaxa.server.declarations import (
    DECLARATIONS,
    FOREIGN,
    SERVICE,
    SERVICE_NAME,
    STREAM,
    declaration,
    declared,
)
from errortaxa.server.service import Service
from errortaxa.v1 import options_pb2, service_pb2_grpc
from google.protobuf import descriptor_pb2, descriptor_pool, empty_pb2, text_format

READER, ADMIN = "reader-token", "admin-token"
SMALL = dict(target=[250, 65], labels=[[250], [65]], pred=[248, 65])


def test_every_method_is_declared_and_has_a_handler_and_a_client_entry() -> None:
    paths = {f"/{SERVICE_NAME}/{m.name}" for m in SERVICE.methods}
    assert SERVICE_NAME == "errortaxa.v1.ErrorTaxa"
    assert set(DECLARATIONS) == paths  # no method without a complete declaration
    for m in SERVICE.methods:  # the handler: Service overrides the generated servicer's UNIMPLEMENTED one
        assert getattr(Service, m.name) is not getattr(service_pb2_grpc.ErrorTaxaServicer, m.name), m.name
    client = {e.method.path: e.method for e in entries().values() if isinstance(e, (Unary, Stream))}
    assert set(client) - {HEALTH.path} == paths  # every declared method has a client entry
    for path, server_side in DECLARATIONS.items():  # the client reads the same declaration
        assert (client[path].authorization, client[path].idempotent) == \
            (server_side.authorization, server_side.idempotent), path
        assert methods()[path] == client[path]
    assert declaration(HEALTH.path) == FOREIGN["grpc.health.v1.Health"]
    assert HEALTH.authorization == "public" and HEALTH.idempotent
    assert {p for p, d in DECLARATIONS.items() if d.admission == STREAM} == {f"/{SERVICE_NAME}/ClassifyStream"}
    assert {p.rsplit("/", 1)[1] for p, d in DECLARATIONS.items() if d.authorization == "admin"} == {
        "PutTaxonomy", "ActivateTaxonomy", "DeleteTaxonomy", "RegisterDataset"}
    assert {p.rsplit("/", 1)[1] for p, d in DECLARATIONS.items() if not d.idempotent} == {
        "DeleteTaxonomy", "RegisterDataset"}


def _service(methods: list[tuple[str, tuple[bool, bool], str]]) -> Any:
    """A service of methods (name, (request stream, response stream), option text) in a file of its
    own, added to the default pool beside options.proto and empty.proto."""
    proto = descriptor_pb2.FileDescriptorProto(name="errortaxa/tests/declared.proto", package="errortaxa.tests",
                                               syntax="proto3", dependency=[options_pb2.DESCRIPTOR.name,
                                                                            empty_pb2.DESCRIPTOR.name])
    service = proto.service.add(name="Declared")
    for name, (requests, answers), option in methods:
        method = service.method.add(name=name, input_type=".google.protobuf.Empty",
                                    output_type=".google.protobuf.Empty", client_streaming=requests,
                                    server_streaming=answers)
        if option:
            method.options.Extensions[options_pb2.rpc].CopyFrom(text_format.Parse(option, options_pb2.RpcDeclaration()))
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName(proto.name)
    except KeyError:
        pool.Add(proto)
    return pool.FindServiceByName("errortaxa.tests.Declared")


def test_a_declaration_needs_a_level_and_an_admission_that_fits_the_method() -> None:
    unary, bidi = (False, False), (True, True)
    service = _service([
        ("Full", unary, "authorization: READ admission: COMPUTING idempotent: true"),
        ("None", unary, ""),
        ("NoLevel", unary, "admission: COMPUTING"),
        ("NoAdmission", unary, "authorization: ADMIN"),
        ("StreamUnary", unary, "authorization: READ admission: STREAM"),
        ("ComputedStream", bidi, "authorization: READ admission: COMPUTING"),
        ("ComputedAnswers", (False, True), "authorization: READ admission: COMPUTING"),
        ("RequestsOnly", (True, False), "authorization: READ admission: STREAM"),
        ("Stream", bidi, "authorization: READ admission: STREAM"),
        ("Listing", (False, True), "authorization: PUBLIC admission: UNCOUNTED"),
    ])
    found = {m.name: declared(m) for m in service.methods}
    assert found["Full"] is not None and (found["Full"].authorization, found["Full"].idempotent) == ("read", True)
    assert found["Stream"] is not None and found["Stream"].admission == STREAM and not found["Stream"].idempotent
    assert found["Listing"] is not None and found["Listing"].authorization == "public"
    assert [name for name, d in found.items() if d is None] == [
        "None", "NoLevel", "NoAdmission", "StreamUnary", "ComputedStream", "ComputedAnswers", "RequestsOnly"]


def _extra_handlers(ran: threading.Event) -> list[grpc.GenericRpcHandler]:
    """A unary Ping and a stream Echo registered under the ErrorTaxa service's name (as a new RPC
    whose .proto method lacks its option would be) and under a service of no .proto here."""
    def ping(request: bytes, context: grpc.ServicerContext) -> bytes:
        ran.set()
        return b"pong"

    def echo(requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        ran.set()
        yield from requests

    identity = dict(request_deserializer=None, response_serializer=None)
    handlers = {"Ping": grpc.unary_unary_rpc_method_handler(ping, **identity),
                "Echo": grpc.stream_stream_rpc_method_handler(echo, **identity)}
    return [grpc.method_handlers_generic_handler(name, handlers) for name in (SERVICE_NAME, "errortaxa.tests.Extra")]


@pytest.mark.parametrize("tokens", [True, False], ids=["tokens", "no-tokens"])
def test_an_undeclared_method_is_refused_whatever_the_token(tokens: bool) -> None:
    settings: dict[str, Any] = dict(read_tokens={"lab": READER}, admin_tokens={"ops": ADMIN}) if tokens else {}
    running: RunningServer = build_server(ServerConfig(host="127.0.0.1", port=0, drain_seconds=0.0,
                                                       grace_seconds=1.0, public_health=True, **settings))
    ran = threading.Event()
    running.server.add_generic_rpc_handlers(_extra_handlers(ran))
    callers = [(("authorization", f"Bearer {ADMIN}"),), (("authorization", f"Bearer {READER}"),), ()]
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            for service in (SERVICE_NAME, "errortaxa.tests.Extra"):
                ping = channel.unary_unary(f"/{service}/Ping")
                echo = channel.stream_stream(f"/{service}/Echo")
                for metadata in callers:
                    with pytest.raises(grpc.RpcError) as unary:
                        ping(b"ping", metadata=metadata, timeout=5)
                    assert unary.value.code() == grpc.StatusCode.PERMISSION_DENIED
                    assert "has no declaration" in str(unary.value.details())
                    with pytest.raises(grpc.RpcError) as streamed:
                        list(echo(iter([b"a", b"b"]), metadata=metadata, timeout=5))
                    assert streamed.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert not ran.is_set()  # no handler ran
            missing = channel.unary_unary(f"/{SERVICE_NAME}/NoSuchMethod")  # no handler at all: grpc's answer
            with pytest.raises(grpc.RpcError) as unknown:
                missing(b"", timeout=5)
            assert unknown.value.code() == grpc.StatusCode.UNIMPLEMENTED
        metrics = running.metrics.render()
        for service in (SERVICE_NAME, "errortaxa.tests.Extra"):
            assert (f'errortaxa_undeclared_calls_total{{grpc_service="{service}",grpc_method="Ping",'
                    f'grpc_type="unary"}} 3') in metrics
            assert (f'errortaxa_undeclared_calls_total{{grpc_service="{service}",grpc_method="Echo",'
                    f'grpc_type="bidi_stream"}} 3') in metrics
        assert 'grpc_method="Ping",grpc_type="unary",grpc_code="PERMISSION_DENIED"} 3' in metrics
        # the declared methods answer as before: a read token (or none without tokens), health public
        with Client(f"127.0.0.1:{running.port}", token=READER if tokens else None, retries=0) as c:
            assert c.classify(**SMALL).category == ["overlapping_classes", "correct"]
        with Client(f"127.0.0.1:{running.port}", retries=0) as anonymous:
            assert anonymous.health() == "SERVING"
    finally:
        running.stop(0)
