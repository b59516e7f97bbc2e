"""No single client can stall the others: idle streams, stream limits, admission, health on its own
threads (a real server on 127.0.0.1, raw gRPC channels as a hostile client would use them)."""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
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
    return build_server(ServerConfig(**{"host": "127.0.0.1", "port": 0, "drain_seconds": 0.0, "grace_seconds": 1.0,
                                        **settings}))


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
            n = 300_000  # records: the largest they can take is under max_message_mb
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


class HeldStream:
    """A ClassifyStream on ``channel`` that sends one request, and then more only when told to
    (``send``), until ``finish`` or a cancel; ``error`` is how it ended (None: OK)."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.outbox: queue.Queue[service_pb2.ClassifyRequest | None] = queue.Queue()
        self.outbox.put(request())
        self.answers = 0
        self.error: grpc.RpcError | None = None
        self.ended = threading.Event()

        def requests() -> Iterator[service_pb2.ClassifyRequest]:
            while (item := self.outbox.get()) is not None:
                yield item

        self.call = service_pb2_grpc.ErrorTaxaStub(channel).ClassifyStream(requests(), timeout=60)
        self.first = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for _ in self.call:
                self.answers += 1
                self.first.set()
        except grpc.RpcError as exc:
            self.error = exc
        self.first.set()
        self.ended.set()

    def finish(self) -> None:
        self.outbox.put(None)


def test_a_cancelled_streams_place_is_free_when_the_cancel_is_seen() -> None:
    """One connection, one stream allowed per client: a stream answered once and cancelled, then at
    once the next one, 100 times: none is refused (its place was freed when the cancel arrived, not
    when the handler next looked at its requests)."""
    running = start(max_streams_per_client=1, stream_idle_seconds=30)
    target = f"127.0.0.1:{running.port}"
    refused: list[str] = []
    try:
        with connect(target) as channel:
            for _ in range(100):
                stream = HeldStream(channel)
                assert stream.first.wait(10)
                if stream.error is not None:  # refused: its place was still held by the one cancelled before
                    refused.append(str(stream.error.details()))
                    continue
                stream.call.cancel()
                assert stream.ended.wait(10)
                stream.finish()
        deadline = time.monotonic() + 5
        while running.admission.open_streams() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert running.admission.open_streams() == 0
    finally:
        running.stop(0)
    assert not refused, f"{len(refused)} of 100 refused: {refused[0]}"


def test_streams_that_outlive_the_grace_end_unavailable() -> None:
    """At stop, a stream left open past the grace (idle, or sending) ends UNAVAILABLE from the
    server, never cut by grpc; the server counts no call CANCELLED; a call arriving once the grace
    is over is still answered UNAVAILABLE (SHUTTING_DOWN); a client calling until its first
    refusal sees only OK and UNAVAILABLE."""
    running = start(grace_seconds=0.5, stream_idle_seconds=30)
    target = f"127.0.0.1:{running.port}"
    channels = [connect(target) for _ in range(4)]
    unary_codes: list[str] = []
    late: list[grpc.RpcError | None] = []

    def keep_calling() -> None:  # as a client does: until the first refusal, then elsewhere
        stub = service_pb2_grpc.ErrorTaxaStub(channels[2])
        while True:
            try:
                stub.Classify(request(), timeout=10)
                unary_codes.append("OK")
            except grpc.RpcError as exc:
                unary_codes.append(exc.code().name)
                return

    def after_the_grace() -> None:
        assert running.admission.ending.wait(10)
        try:
            service_pb2_grpc.ErrorTaxaStub(channels[3]).Classify(request(), timeout=10)
            late.append(None)
        except grpc.RpcError as exc:
            late.append(exc)

    idle, busy = HeldStream(channels[0]), HeldStream(channels[1])
    try:
        assert idle.first.wait(10) and busy.first.wait(10) and idle.error is None and busy.error is None
        service_pb2_grpc.ErrorTaxaStub(channels[3]).Classify(request(), timeout=10)  # its connection is up

        def keep_sending() -> None:
            while not busy.ended.is_set():
                busy.outbox.put(request())
                time.sleep(0.01)

        threads = [threading.Thread(target=f, daemon=True) for f in (keep_sending, keep_calling, after_the_grace)]
        for t in threads:
            t.start()
        time.sleep(0.2)
        running.stop()  # grace 0.5 s: both streams outlive it
        assert idle.ended.wait(10) and busy.ended.wait(10)
        for t in threads:
            t.join(10)
        codes = [s.error.code().name if s.error else "OK" for s in (idle, busy)]
        assert codes == ["UNAVAILABLE", "UNAVAILABLE"], [s.error for s in (idle, busy)]
        assert idle.error is not None and from_rpc_error(idle.error).reason == "SHUTTING_DOWN"  # not grpc's cut
        assert busy.answers > 1
        streams = {code for (call, code), n in running.metrics.handled.items() if call[1] == "ClassifyStream"}
        assert streams <= {"OK", "UNAVAILABLE"}, streams  # as the server counts them too
        assert unary_codes[-1] == "UNAVAILABLE" and set(unary_codes) == {"OK", "UNAVAILABLE"}, Counter(unary_codes)
        assert len(late) == 1 and late[0] is not None and late[0].code() == grpc.StatusCode.UNAVAILABLE
        assert from_rpc_error(late[0]).reason == "SHUTTING_DOWN"  # the final window was open
    finally:
        for s in (idle, busy):
            s.finish()
        for c in channels:
            c.close()
        running.stop(0)
