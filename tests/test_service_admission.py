"""No single client can stall the others: idle streams, stream limits, admission, health on its own
threads (a real server on 127.0.0.1, raw gRPC channels as a hostile client would use them)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
import pytest
from errortaxa.client import Client
from errortaxa.client.errors import from_rpc_error
from errortaxa.server import RunningServer, ServerConfig, build_server
from errortaxa.v1 import samples_pb2, service_pb2, service_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

SMALL = dict(target=[250, 65], labels=[[250], [65]], pred=[248, 65])


def connect(target: str) -> grpc.Channel:
    """A channel on its own connection (channels in one process share connections otherwise)."""
    return grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])


def start(**settings: Any) -> RunningServer:
    return build_server(ServerConfig(host="127.0.0.1", port=0, drain_seconds=0.0, grace_seconds=1.0, **settings))


def request() -> service_pb2.ClassifyRequest:
    return service_pb2.ClassifyRequest(samples=samples_pb2.SampleColumns(
        target=[250], pred=[248], label_offsets=[0, 1], label_values=[250]))


class IdleStream:
    """A ClassifyStream opened on its own channel (or a shared one) that never sends a request."""

    def __init__(self, target: str, channel: grpc.Channel | None = None, metadata: Any = None) -> None:
        self.channel = channel or connect(target)
        self.release = threading.Event()
        self.error: grpc.RpcError | None = None
        self.ended = threading.Event()

        def requests() -> Iterator[service_pb2.ClassifyRequest]:
            self.release.wait(60)
            return
            yield  # a generator that yields nothing

        self.call = service_pb2_grpc.ErrorTaxaStub(self.channel).ClassifyStream(requests(), metadata=metadata)
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        try:
            for _ in self.call:
                pass
        except grpc.RpcError as exc:
            self.error = exc
        self.ended.set()

    def close(self) -> None:
        self.release.set()
        self.call.cancel()
        self.thread.join(5)


def wait_open(server: RunningServer, streams: list[IdleStream], n: int) -> None:
    """Wait until the server has admitted ``n`` streams (or some were refused and ended)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if sum(s.ended.is_set() for s in streams) + server.admission.open_streams() >= n:
            return
        time.sleep(0.02)


def test_idle_streams_up_to_the_limits_do_not_stall_classify_or_health() -> None:
    running = start(concurrency=2, max_streams=6, max_streams_per_client=2, stream_idle_seconds=30)
    target = f"127.0.0.1:{running.port}"
    streams: list[IdleStream] = []
    try:
        channels = [connect(target) for _ in range(3)]
        streams = [IdleStream(target, channels[i // 2]) for i in range(6)]  # 2 per connection, 6 in all
        wait_open(running, streams, 6)
        assert running.admission.open_streams() == 6 and not any(s.ended.is_set() for s in streams)
        extra = IdleStream(target, channels[0])  # a third one on a connection: refused, at once
        assert extra.ended.wait(1) and extra.error is not None
        assert extra.error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "max_streams_per_client" in str(extra.error.details())
        other = IdleStream(target)  # a new connection, but the server's total is reached
        assert other.ended.wait(1) and other.error is not None
        assert other.error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "max_streams" in str(other.error.details())
        with Client(target, retries=0) as fresh:
            start_at = time.perf_counter()
            assert fresh.classify(**SMALL).category == ["overlapping_classes", "correct"]
            assert fresh.health(timeout=1) == "SERVING"
            assert time.perf_counter() - start_at < 1.0
            with connect(target) as channel:  # health on its own reserved threads
                answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
                assert answer.status == health_pb2.HealthCheckResponse.SERVING
        for s in [extra, other]:
            s.close()
    finally:
        for s in streams:
            s.close()
        running.stop(0)


def test_an_idle_stream_is_closed_after_the_idle_timeout() -> None:
    running = start(stream_idle_seconds=0.5)
    target = f"127.0.0.1:{running.port}"
    idle = IdleStream(target)
    try:
        assert idle.ended.wait(5)
        assert idle.error is not None and idle.error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        error = from_rpc_error(idle.error)
        assert error.reason == "STREAM_IDLE" and "stream_idle_seconds" in error.message
        deadline = time.monotonic() + 5
        while running.admission.open_streams() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert running.admission.open_streams() == 0  # its place is free again
        with Client(target, retries=0) as c:  # a stream that keeps sending is not cut
            def slow() -> Iterator[dict[str, Any]]:
                for _ in range(3):
                    time.sleep(0.3)
                    yield SMALL

            assert len(list(c.classify_stream(slow()))) == 3
    finally:
        idle.close()
        running.stop(0)


def test_the_stream_limit_per_token() -> None:
    running = start(read_tokens={"lab": "lab-token", "other": "other-token"}, max_streams_per_client=1)
    target = f"127.0.0.1:{running.port}"
    streams = []
    try:
        streams.append(IdleStream(target, metadata=(("authorization", "Bearer lab-token"),)))
        wait_open(running, streams, 1)
        second = IdleStream(target, metadata=(("authorization", "Bearer lab-token"),))  # another connection
        assert second.ended.wait(2) and second.error is not None
        assert second.error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        streams.append(second)
        third = IdleStream(target, metadata=(("authorization", "Bearer other-token"),))  # another token: fine
        streams.append(third)
        assert not third.ended.wait(0.5)
    finally:
        for s in streams:
            s.close()
        running.stop(0)


def test_admission_refuses_at_once_beyond_max_concurrent_rpcs() -> None:
    running = start(concurrency=1, max_concurrent_rpcs=1)
    target = f"127.0.0.1:{running.port}"
    try:
        with Client(target, retries=0, timeout=60) as c:
            n = 400_000
            big = dict(target=np.ones(n, int), pred=np.ones(n, int), label_offsets=np.arange(n + 1),
                       label_values=np.ones(n, int), records=True)
            results: list[Any] = []
            holder = threading.Thread(target=lambda: results.append(c.classify(**big)))
            holder.start()
            deadline = time.monotonic() + 10
            while running.admission.calls_in_progress() == 0 and time.monotonic() < deadline:
                time.sleep(0.001)
            refused_in = None
            try:
                t0 = time.perf_counter()
                c.classify(**SMALL)
            except Exception as exc:  # ResourceExhausted
                refused_in = time.perf_counter() - t0
                assert getattr(exc, "code", None) == grpc.StatusCode.RESOURCE_EXHAUSTED
                assert getattr(exc, "reason", "") == "TOO_MANY_CALLS"
            assert c.health(timeout=1) == "SERVING"  # not counted
            holder.join(60)
            if refused_in is None:
                pytest.skip("the big call ended before the second one arrived")
            assert refused_in < 0.5
            assert c.classify(**SMALL).category[0] == "overlapping_classes"
    finally:
        running.stop(0)
