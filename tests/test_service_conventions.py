"""gRPC conventions of the server: reflection v1 and v1alpha as a reflection-only client sees them,
public health for stub and reflection-based probes, the structured messages next to the JSON text,
and the conventional metric names. A real server on 127.0.0.1; the clients know no stubs but the
reflection messages."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from errortaxa.server import RunningServer, ServerConfig, build_server, load_config
from errortaxa.server.metrics import Metrics
from errortaxa.server.process_metrics import process_lines
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.message import Message
from grpc_reflection.v1alpha import reflection_pb2

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "a-read-token-for-the-tests"
#: The same messages serve both protocols: v1 and v1alpha differ only in the package name, and the
#: package name is not on the wire.
PATHS = {"v1": "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
         "v1alpha": "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"}
SMALL = {"target": [250, 65], "pred": [248, 66], "label_offsets": [0, 1, 3], "label_values": [250, 65, 66]}


def start(**settings: Any) -> RunningServer:
    return build_server(ServerConfig(host="127.0.0.1", port=0, drain_seconds=0.0, grace_seconds=1.0, **settings))


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    running = start(metrics_port=0)
    yield running
    running.stop(0)


class ReflectionClient:
    """A client that knows nothing but the reflection protocol (one version, by its method path)."""

    def __init__(self, channel: grpc.Channel, version: str, metadata: tuple[tuple[str, str], ...] = ()) -> None:
        self.call = channel.stream_stream(
            PATHS[version], request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString)
        self.metadata = metadata
        self.pool = descriptor_pool.DescriptorPool()

    def ask(self, **question: Any) -> reflection_pb2.ServerReflectionResponse:
        request = reflection_pb2.ServerReflectionRequest(**question)
        (response,) = list(self.call(iter([request]), metadata=self.metadata, timeout=10))
        assert response.original_request == request
        return response

    def services(self) -> list[str]:
        return [s.name for s in self.ask(list_services="").list_services_response.service]

    def files(self, **question: Any) -> list[descriptor_pb2.FileDescriptorProto]:
        response = self.ask(**question)
        assert response.WhichOneof("message_response") == "file_descriptor_response", response
        files = []
        for blob in response.file_descriptor_response.file_descriptor_proto:
            proto = descriptor_pb2.FileDescriptorProto()
            proto.ParseFromString(blob)
            files.append(proto)
        return files

    def load(self, symbol: str) -> None:
        """Add the file defining ``symbol`` and its imports to this client's own pool."""
        files = {f.name: f for f in self.files(file_containing_symbol=symbol)}

        def add(name: str) -> None:
            try:
                self.pool.FindFileByName(name)
            except KeyError:
                for dependency in files[name].dependency:  # imports first
                    add(dependency)
                self.pool.Add(files[name])

        for name in files:
            add(name)

    def unary(self, channel: grpc.Channel, method: str, request: dict[str, Any]) -> Message:
        """Call ``package.Service.Method`` with message classes built from the served descriptors only."""
        self.load(method)
        service_name, _, name = method.rpartition(".")
        descriptor = self.pool.FindServiceByName(service_name).methods_by_name[name]
        request_class = message_factory.GetMessageClass(descriptor.input_type)
        response_class = message_factory.GetMessageClass(descriptor.output_type)
        call = channel.unary_unary(f"/{service_name}/{name}", request_serializer=request_class.SerializeToString,
                                   response_deserializer=response_class.FromString)
        return call(json_format.ParseDict(request, request_class()), metadata=self.metadata,
                    timeout=30)


def channel_to(running: RunningServer) -> grpc.Channel:
    return grpc.insecure_channel(f"127.0.0.1:{running.port}")


# ------------------------------------------------------------------------------------------- reflection
@pytest.mark.parametrize("version", ["v1", "v1alpha"])
def test_a_reflection_only_client_lists_describes_and_calls(server: RunningServer, version: str) -> None:
    with channel_to(server) as channel:
        client = ReflectionClient(channel, version)
        assert client.services() == ["errortaxa.v1.ErrorTaxa", "grpc.health.v1.Health",
                                     "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"]
        # `grpcurl describe errortaxa.v1.ErrorTaxa.Classify`: a method, fully qualified
        files = client.files(file_containing_symbol="errortaxa.v1.ErrorTaxa.Classify")
        assert files[0].name == "errortaxa/v1/service.proto"
        assert {"errortaxa/v1/samples.proto", "google/protobuf/struct.proto"} <= {f.name for f in files}
        client.load("errortaxa.v1.ErrorTaxa.Classify")
        method = client.pool.FindMethodByName("errortaxa.v1.ErrorTaxa.Classify")
        assert method.input_type.full_name == "errortaxa.v1.ClassifyRequest"
        assert "samples" in method.input_type.fields_by_name
        # a message type decoded from the served descriptors alone
        response = client.unary(channel, "errortaxa.v1.ErrorTaxa.Classify",
                                {"samples": SMALL, "options": {"summary": True}})
        assert type(response).DESCRIPTOR.full_name == "errortaxa.v1.ClassifyResponse"
        decoded = json_format.MessageToDict(response, preserving_proto_field_name=True)
        category = decoded["axes"][0]
        assert category["axis"] == "category"
        assert [category["values"][i] for i in category["value"]] == ["overlapping_classes", "multi_label"]
        assert decoded["summary"]["data"]["samples"] == 2
        assert json.loads(decoded["summary"]["json"]) == decoded["summary"]["data"]


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
def test_every_service_and_method_resolves(server: RunningServer, version: str) -> None:
    with channel_to(server) as channel:
        client = ReflectionClient(channel, version)
        for service in client.services():
            client.load(service)
            methods = client.pool.FindServiceByName(service).methods
            assert methods, service
            for method in methods:
                (file, *_) = client.files(file_containing_symbol=method.full_name)
                assert file.package == service.rpartition(".")[0], method.full_name
        v1 = client.pool.FindServiceByName("grpc.reflection.v1.ServerReflection")
        assert v1.file.name == "grpc/reflection/v1/reflection.proto"
        assert v1.methods_by_name["ServerReflectionInfo"].input_type.full_name == \
            "grpc.reflection.v1.ServerReflectionRequest"
        for symbol in ("errortaxa.v1.ErrorTaxa.NoSuchMethod", "errortaxa.v1.NoSuchThing", "nothing"):
            error = client.ask(file_containing_symbol=symbol).error_response
            assert error.error_code == grpc.StatusCode.NOT_FOUND.value[0], symbol
        assert client.files(file_by_filename="google/protobuf/struct.proto")[0].package == "google.protobuf"


def test_reflection_can_be_switched_off() -> None:
    running = start(reflection=False)
    try:
        with channel_to(running) as channel, pytest.raises(grpc.RpcError) as failed:
            ReflectionClient(channel, "v1").services()
        assert failed.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        running.stop(0)


# ------------------------------------------------------------------------------------------- health
def _probe(running: RunningServer, metadata: tuple[tuple[str, str], ...] = ()) -> str:
    """A reflection-based probe: find grpc.health.v1.Health.Check by reflection, then call it."""
    with channel_to(running) as channel:
        response = ReflectionClient(channel, "v1", metadata).unary(channel, "grpc.health.v1.Health.Check", {})
        return str(json_format.MessageToDict(response)["status"])


def _stub_check(running: RunningServer) -> str:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with channel_to(running) as channel:
        response = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)


def test_public_health_answers_stub_and_reflection_probes_without_a_token() -> None:
    running = start(read_tokens={"lab": TOKEN}, public_health=True)
    try:
        assert _stub_check(running) == "SERVING"
        assert _probe(running) == "SERVING"
        with channel_to(running) as channel:
            assert "grpc.health.v1.Health" in ReflectionClient(channel, "v1alpha").services()
            client = ReflectionClient(channel, "v1")
            with pytest.raises(grpc.RpcError) as refused:  # the service itself still needs the token
                client.unary(channel, "errortaxa.v1.ErrorTaxa.Classify", {"samples": SMALL})
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        running.stop(0)


def test_without_public_health_probes_need_the_token() -> None:
    running = start(read_tokens={"lab": TOKEN})
    try:
        for probe in (_stub_check, _probe):
            with pytest.raises(grpc.RpcError) as refused:
                probe(running)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED, probe
        assert _probe(running, (("authorization", f"Bearer {TOKEN}"),)) == "SERVING"
    finally:
        running.stop(0)


def test_public_health_from_the_config_file_the_environment_and_the_flag(tmp_path: Path) -> None:
    config_file = tmp_path / "serve.toml"
    config_file.write_text("public-health = true\n")
    assert load_config(["--config", str(config_file)], {}).public_health
    assert load_config([], {"ERRORTAXA_PUBLIC_HEALTH": "yes"}).public_health
    assert not load_config([], {"ERRORTAXA_PUBLIC_HEALTH": "off"}).public_health
    assert load_config(["--public-health"], {}).public_health
    assert not load_config([], {}).public_health


def test_the_health_proto_is_in_the_repository_for_other_languages() -> None:
    text = (ROOT / "protos" / "grpc" / "health" / "v1" / "health.proto").read_text()
    assert text.startswith("// Copyright 2015 The gRPC Authors")
    assert "Licensed under the Apache License, Version 2.0" in text
    assert re.search(r"^package grpc\.health\.v1;$", text, re.M)
    assert "rpc Check(HealthCheckRequest) returns (HealthCheckResponse);" in text


# ------------------------------------------------------------------------------------------- structured
def _as_data(message: Message) -> Any:
    return json_format.MessageToDict(message)


def test_structured_records_evidence_summary_and_traces_hold_what_the_json_text_holds(server: RunningServer) -> None:
    from errortaxa.v1 import samples_pb2, service_pb2, service_pb2_grpc

    samples = samples_pb2.SampleColumns(**SMALL, images=["a.JPEG", "b.JPEG"])
    with channel_to(server) as channel:
        stub = service_pb2_grpc.ErrorTaxaStub(channel)
        options = {"records": True, "evidence": True, "summary": True}
        text = stub.Classify(service_pb2.ClassifyRequest(samples=samples, options=options), timeout=30)
        data = stub.Classify(service_pb2.ClassifyRequest(samples=samples, options={**options, "structured": True}),
                             timeout=30)
        explained = stub.Explain(service_pb2.ExplainRequest(samples=samples, index=1), timeout=30)
        evidence_only = stub.Classify(service_pb2.ClassifyRequest(
            samples=samples, options={"evidence": True, "structured": True}), timeout=30)
    assert len(text.record_json) == 2 and not text.records and not text.evidence
    assert len(data.records) == 2 and not data.record_json and not data.evidence_json
    assert [_as_data(r) for r in data.records] == [json.loads(r) for r in text.record_json]
    assert [_as_data(e) for e in data.evidence] == [json.loads(e) if e else {} for e in text.evidence_json]
    assert [_as_data(e) for e in evidence_only.evidence] == [_as_data(e) for e in data.evidence]
    assert not evidence_only.records
    for response in (text, data):
        assert _as_data(response.summary.data) == json.loads(response.summary.json)
    assert _as_data(data.summary.data)["samples"] == 2
    assert _as_data(explained.record) == json.loads(explained.record_json)
    assert explained.traces and all(_as_data(t.data) == json.loads(t.json) for t in explained.traces)


# ------------------------------------------------------------------------------------------- metrics
def _scrape(running: RunningServer) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{running.metrics_port}/metrics", timeout=5) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return response.read().decode()


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? (\S+)$')


def check_exposition(text: str) -> dict[str, str]:
    """Every line is a HELP, a TYPE or a sample of a family TYPEd before it; the TYPE of each family."""
    types: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name not in types and kind in ("counter", "gauge", "histogram"), line
            types[name] = kind
            continue
        match = _SAMPLE.match(line)
        assert match, line
        name = match.group(1)
        family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
        assert family in types, line
        float(match.group(5))
    return types


def test_metrics_carry_the_conventional_names(server: RunningServer) -> None:
    with channel_to(server) as channel:
        ReflectionClient(channel, "v1").services()
        ReflectionClient(channel, "v1alpha").services()
    assert _stub_check(server) == "SERVING"
    text = _scrape(server)
    types = check_exposition(text)
    for name, kind in (("grpc_server_started_total", "counter"), ("grpc_server_handled_total", "counter"),
                       ("grpc_server_handling_seconds", "histogram"), ("process_cpu_seconds_total", "counter"),
                       ("process_resident_memory_bytes", "gauge"), ("process_open_fds", "gauge"),
                       ("process_start_time_seconds", "gauge"), ("errortaxa_samples_total", "counter")):
        assert types.get(name) == kind, name
    health = 'grpc_service="grpc.health.v1.Health",grpc_method="Check",grpc_type="unary"'
    assert re.search(rf'^grpc_server_started_total\{{{health}\}} [1-9]', text, re.M)
    assert re.search(rf'^grpc_server_handled_total\{{{health},grpc_code="OK"\}} [1-9]', text, re.M)
    assert re.search(rf'^grpc_server_handling_seconds_bucket\{{{health},le="\+Inf"\}} [1-9]', text, re.M)
    for version in ("v1", "v1alpha"):
        assert (f'grpc_server_handled_total{{grpc_service="grpc.reflection.{version}.ServerReflection",'
                f'grpc_method="ServerReflectionInfo",grpc_type="bidi_stream",grpc_code="OK"}}') in text
    assert "errortaxa_requests_total" not in text and "errortaxa_request_seconds" not in text


def test_refused_calls_are_counted_with_their_code() -> None:
    running = start(read_tokens={"lab": TOKEN}, metrics_port=0)
    try:
        with pytest.raises(grpc.RpcError):
            _stub_check(running)
        text = _scrape(running)
    finally:
        running.stop(0)
    check_exposition(text)
    assert ('grpc_server_handled_total{grpc_service="grpc.health.v1.Health",grpc_method="Check",'
            'grpc_type="unary",grpc_code="UNAUTHENTICATED"} 1') in text


def test_process_metrics_read_this_process() -> None:
    import os
    import resource
    import time

    values = {line.split()[0]: float(line.split()[1]) for line in process_lines() if not line.startswith("#")}
    assert abs(values["process_open_fds"] - len(os.listdir("/proc/self/fd"))) <= 2
    usage = resource.getrusage(resource.RUSAGE_SELF)
    assert abs(values["process_cpu_seconds_total"] - (usage.ru_utime + usage.ru_stime)) < 0.5
    assert 0 < values["process_resident_memory_bytes"] <= usage.ru_maxrss * 1024  # now <= the peak
    assert 0 < time.time() - values["process_start_time_seconds"] < 24 * 3600
    assert process_lines(Path("/no/such/proc")) == []


def test_label_values_are_escaped() -> None:
    metrics = Metrics()
    metrics.active = lambda: ('a "quoted" name', "1.0\\beta", "line\nbreak")
    line = next(line for line in metrics.render().splitlines() if line.startswith("errortaxa_active_taxonomy_info{"))
    assert line == ('errortaxa_active_taxonomy_info{name="a \\"quoted\\" name",version="1.0\\\\beta",'
                    'content_hash="line\\nbreak"} 1')
    check_exposition(metrics.render())
