"""The smaller points of the service under attack: cancelled calls, Activate's version, the port
line at any log level, the response size checked first, the authorization entry (127.0.0.1)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from errortaxa.client import Client, InvalidArgument, ResourceExhausted
from errortaxa.server import RunningServer, ServerConfig, build_server
from errortaxa.v1 import samples_pb2, service_pb2, service_pb2_grpc, taxonomy_pb2
from raw_calls import raw_call

ROOT = Path(__file__).resolve().parents[1]


def start(**settings: Any) -> RunningServer:
    return build_server(ServerConfig(host="127.0.0.1", port=0, drain_seconds=0.0, grace_seconds=1.0, **settings))




@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    running = start(max_message_mb=1)
    yield running
    running.stop(0)


def test_a_cancelled_stream_is_counted_cancelled(server: RunningServer) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        def requests() -> Iterator[service_pb2.ClassifyRequest]:
            yield service_pb2.ClassifyRequest(samples=samples_pb2.SampleColumns(
                target=[250], pred=[248], label_offsets=[0, 1], label_values=[250]))
            time.sleep(5)

        call = service_pb2_grpc.ErrorTaxaStub(channel).ClassifyStream(requests())
        next(call)
        call.cancel()
    stream = ("errortaxa.v1.ErrorTaxa", "ClassifyStream", "bidi_stream")
    deadline = time.monotonic() + 5
    while (stream, "CANCELLED") not in server.metrics.handled and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.metrics.handled[(stream, "CANCELLED")] == 1, dict(server.metrics.handled)
    assert (stream, "UNKNOWN") not in server.metrics.handled


def test_activate_needs_a_version(server: RunningServer) -> None:
    with pytest.raises(InvalidArgument) as caught:
        raw_call(server.port, "ActivateTaxonomy", service_pb2.ActivateTaxonomyRequest(
            taxonomy=taxonomy_pb2.TaxonomyRef(name="peychev2023")))
    assert caught.value.field == "taxonomy.version"


def test_a_response_over_the_limit_is_refused_before_it_is_computed(server: RunningServer) -> None:
    n = 20_000  # records of 20,000 samples: over 1 MB
    with Client(f"127.0.0.1:{server.port}", retries=0) as c:
        columns = dict(target=np.ones(n, int), pred=np.ones(n, int), label_offsets=np.arange(n + 1),
                       label_values=np.ones(n, int))
        c.classify(**columns)  # without records it fits
        start_at = time.perf_counter()
        with pytest.raises(ResourceExhausted) as caught:
            c.classify(**columns, records=True)
        assert time.perf_counter() - start_at < 0.2  # computing the records takes longer
        assert caught.value.reason == "RESPONSE_TOO_LARGE" and "max_message_mb = 1" in caught.value.message


@pytest.mark.parametrize("entries", [
    [("authorization", "lab-token")],  # no "Bearer"
    [("authorization", "Basic lab-token")],
    [("authorization", "Bearer wrong"), ("authorization", "Bearer lab-token")],  # two entries
    [("authorization", "Bearer lab-token"), ("authorization", "Bearer lab-token")],
])
def test_the_authorization_entry(entries: list[tuple[str, str]]) -> None:
    running = start(read_tokens={"lab": "lab-token"})
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = service_pb2_grpc.ErrorTaxaStub(channel)
            with pytest.raises(grpc.RpcError) as caught:
                stub.ListTaxonomies(service_pb2.ListTaxonomiesRequest(), metadata=entries, timeout=10)
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert stub.ListTaxonomies(service_pb2.ListTaxonomiesRequest(),  # the right way still works
                                       metadata=[("authorization", "Bearer lab-token")], timeout=10).taxonomies
    finally:
        running.stop(0)


def test_the_port_line_at_any_log_level() -> None:
    process = subprocess.Popen([sys.executable, "-m", "errortaxa.server", "--port", "0", "--log-level", "WARNING"],
                               stderr=subprocess.PIPE, text=True, env=dict(os.environ), cwd=ROOT)
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        entry = json.loads(line)
        assert entry["msg"] == "serving" and entry["port"] > 0
    finally:
        process.kill()
        process.wait()
