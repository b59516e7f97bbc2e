"""Load under hot reload, SIGTERM under load, idle and flooding streams (real servers on 127.0.0.1).

Every response is checked against the local engine's result for the version it reports."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from conftest import scaled
from errortaxa.client import Client, ErrorTaxaError, Unavailable
from errortaxa.engine import SampleBatch, evaluate
from grpc_health.v1 import health_pb2, health_pb2_grpc
from test_service import ServerProcess, local, start, variant_yaml
from test_service_admission import HeldStream, IdleStream, connect, request

pytestmark = pytest.mark.reliability


def batch_columns(n: int = 64, seed: int = 0) -> dict[str, Any]:
    """``n`` samples where about a third are the husky pair (target 250, predicted 248) that the
    two variants decide differently."""
    rng = np.random.default_rng(seed)
    target = rng.integers(0, 1000, n)
    pred = np.where(rng.random(n) < 0.5, target, rng.integers(0, 1000, n))
    husky = rng.random(n) < 0.35
    target[husky], pred[husky] = 250, 248
    return {"target": target.tolist(), "labels": [[int(t)] for t in target], "pred": pred.tolist()}


COLUMNS = batch_columns()


def expected_categories() -> dict[bool, list[str | None]]:
    """The local engine's categories for the batch: with the husky pair (the builtin, and every
    version put with ``drop_husky_pair=False``) and without."""
    batch = SampleBatch.from_lists(**COLUMNS)
    out = {}
    for drop in (False, True):
        evaluated = evaluate(local(variant_yaml("x", drop_husky_pair=True) if drop else None), batch)
        out[drop] = [evaluated.record(i)["category"] for i in range(len(batch))]
    assert out[False] != out[True]
    return out


def p(values: list[float], q: float) -> float:
    return round(float(np.quantile(values, q)) * 1000, 1) if values else 0.0


def test_load_under_hot_reload(tmp_path: Path, figures: dict[str, dict[str, Any]]) -> None:
    """16 clients classify (12 unary, 4 streams) for 30 s while a new version is put every second
    and the active one switched every 0.25 s."""
    expected = expected_categories()
    drops: dict[str, bool] = {"1.0": False}  # version -> does it drop the pair
    seconds = 30 * min(1.0, max(0.2, float(scaled(100)) / 100))
    running = start(store=tmp_path / "store", concurrency=4, max_concurrent_rpcs=64)
    target = f"127.0.0.1:{running.port}"
    stop = threading.Event()
    lock = threading.Lock()
    latencies: list[float] = []
    counts: Counter[str] = Counter()
    wrong: list[str] = []

    def check(version: str, categories: list[str | None]) -> None:
        with lock:
            drop = drops.get(version)
        if drop is None or categories != expected[drop]:
            wrong.append(f"{version}: {categories[:5]}")

    def unary() -> None:
        with Client(target, retries=0, timeout=30) as c:
            while not stop.is_set():
                begun = time.perf_counter()
                try:
                    result = c.classify(**COLUMNS)
                except ErrorTaxaError as exc:
                    counts[f"error {type(exc).__name__}"] += 1
                    continue
                latencies.append(time.perf_counter() - begun)
                counts["ok"] += 1
                check(result.version, list(result.category))

    def streaming() -> None:
        def batches() -> Iterator[dict[str, Any]]:
            for _ in range(20):
                if stop.is_set():
                    return
                yield COLUMNS

        with Client(target, retries=0, timeout=60) as c:
            while not stop.is_set():
                try:
                    results = list(c.classify_stream(batches(), max_in_flight=2))
                except ErrorTaxaError as exc:
                    counts[f"error {type(exc).__name__}"] += 1
                    continue
                counts["ok"] += len(results)
                if len({r.version for r in results}) > 1:
                    wrong.append("a stream changed version")
                for r in results:
                    check(r.version, list(r.category))

    threads = [threading.Thread(target=unary) for _ in range(12)] + [threading.Thread(target=streaming)
                                                                     for _ in range(4)]
    puts = activations = 0
    try:
        with Client(target, retries=0, timeout=60) as admin:
            for t in threads:
                t.start()
            begun = time.monotonic()
            i = 0
            while time.monotonic() - begun < seconds:
                version, drop = f"r{i}", i % 2 == 0
                with lock:
                    drops[version] = drop
                admin.put_taxonomy(variant_yaml(version, drop_husky_pair=drop))
                puts += 1
                for ref in (version, "1.0", version, f"r{max(i - 1, 0)}"):
                    admin.activate_taxonomy(f"peychev2023@{ref}")
                    activations += 1
                    time.sleep(0.25)
                i += 1
    finally:
        stop.set()
        for t in threads:
            t.join(60)
        running.stop(0)
    figures["hot reload"] = {
        "clients": len(threads), "seconds": round(seconds), "responses checked": counts["ok"],
        "puts": puts, "activations": activations, "wrong or mixed results": len(wrong),
        "errors": sum(v for k, v in counts.items() if k != "ok"),
        "p50 ms": p(latencies, 0.5), "p99 ms": p(latencies, 0.99), "samples per request": len(COLUMNS["target"])}
    assert not wrong, wrong[:5]
    assert counts["ok"] > 100 and not figures["hot reload"]["errors"], counts


def test_sigterm_under_load(tmp_path: Path, figures: dict[str, dict[str, Any]]) -> None:
    """Clients classify against ``errortaxa serve``; SIGTERM: each call in flight finishes right or
    fails UNAVAILABLE, the process exits 0. Three rounds."""
    expected = expected_categories()
    totals: Counter[str] = Counter()
    exits: list[int | None] = []
    for round_ in range(scaled(3)):
        server = ServerProcess(env={"ERRORTAXA_DRAIN_SECONDS": "0.5", "ERRORTAXA_GRACE_SECONDS": "5",
                                    "ERRORTAXA_LOG_LEVEL": "WARNING"})
        target = f"127.0.0.1:{server.port}"
        stop = threading.Event()
        lock = threading.Lock()

        def worker(target: str = target, stop: threading.Event = stop, lock: threading.Lock = lock) -> None:
            with Client(target, retries=0, timeout=30) as c:
                while not stop.is_set():
                    try:
                        result = c.classify(**COLUMNS)
                    except Unavailable:
                        with lock:
                            totals["unavailable"] += 1
                        return
                    except ErrorTaxaError as exc:
                        with lock:
                            totals[f"wrong code {exc.code.name}: {exc.message[:80]}"] += 1
                        return
                    right = result.version == "1.0" and list(result.category) == expected[False]
                    with lock:
                        totals["ok" if right else "wrong result"] += 1

        threads = [threading.Thread(target=worker) for _ in range(8)]
        try:
            for t in threads:
                t.start()
            time.sleep(1.5 + round_ * 0.37)
            server.process.send_signal(signal.SIGTERM)
            exits.append(server.process.wait(60))
            stop.set()
            for t in threads:
                t.join(60)
        finally:
            stop.set()
            server.close()
    wrong = sum(v for k, v in totals.items() if k.startswith("wrong"))
    figures["SIGTERM under load"] = {"rounds": len(exits), "clients": 8, "requests": sum(totals.values()),
                                     "ok": totals["ok"], "unavailable": totals["unavailable"],
                                     "wrong codes or results": wrong, "exit codes": sorted(set(exits))}
    assert wrong == 0, totals
    assert exits == [0] * len(exits)


def test_sigterm_with_streams_outliving_the_grace(figures: dict[str, dict[str, Any]]) -> None:
    """``errortaxa serve`` with a 1 s grace; two idle streams, two streams sending batches, and four
    clients classifying until their first refusal; SIGTERM: every call ends OK or UNAVAILABLE (the
    streams UNAVAILABLE, ended by the server), the process exits 0. Three rounds."""
    codes: Counter[str] = Counter()
    exits: list[int | None] = []
    for _ in range(scaled(3)):
        server = ServerProcess(env={"ERRORTAXA_DRAIN_SECONDS": "0.5", "ERRORTAXA_GRACE_SECONDS": "1",
                                    "ERRORTAXA_LOG_LEVEL": "WARNING"})
        target = f"127.0.0.1:{server.port}"
        channels = [connect(target) for _ in range(4)]
        lock = threading.Lock()

        def unary(target: str = target, lock: threading.Lock = lock) -> None:
            with Client(target, retries=0, timeout=30) as c:
                while True:
                    try:
                        c.classify(**COLUMNS)
                        name = "unary OK"
                    except ErrorTaxaError as exc:
                        name = f"unary {exc.code.name}"
                    with lock:
                        codes[name] += 1
                    if name != "unary OK":
                        return

        streams = [HeldStream(channel) for channel in channels]
        busy = streams[2:]

        def keep_sending(busy: list[HeldStream] = busy) -> None:
            while not all(s.ended.is_set() for s in busy):
                for s in busy:
                    s.outbox.put(request())
                time.sleep(0.01)

        threads = [threading.Thread(target=unary) for _ in range(4)] + [threading.Thread(target=keep_sending)]
        try:
            assert all(s.first.wait(30) for s in streams)
            for t in threads:
                t.start()
            time.sleep(1.0)
            server.process.send_signal(signal.SIGTERM)
            exits.append(server.process.wait(60))
            for s in streams:
                assert s.ended.wait(30)
                codes[f"stream {s.error.code().name if s.error else 'OK'}"] += 1
            for t in threads:
                t.join(60)
        finally:
            for s in streams:
                s.finish()
            for c in channels:
                c.close()
            server.close()
    figures["SIGTERM, streams past the grace"] = {"rounds": len(exits), "codes": dict(codes),
                                                  "exit codes": sorted(set(exits))}
    assert set(codes) <= {"unary OK", "unary UNAVAILABLE", "stream UNAVAILABLE"}, codes
    assert codes["stream UNAVAILABLE"] == 4 * len(exits)
    assert exits == [0] * len(exits)


def test_stream_reopens_after_cancels(figures: dict[str, dict[str, Any]]) -> None:
    """One connection, one stream allowed per client: 500 times a stream answered once, cancelled,
    and the next opened at once: none is refused TOO_MANY_STREAMS."""
    running = start(max_streams_per_client=1, stream_idle_seconds=30)
    refused = 0
    n = scaled(500)
    try:
        with connect(f"127.0.0.1:{running.port}") as channel:
            for _ in range(n):
                stream = HeldStream(channel)
                assert stream.first.wait(10)
                if stream.error is not None:
                    assert stream.error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                    refused += 1
                    continue
                stream.call.cancel()
                assert stream.ended.wait(10)
                stream.finish()
    finally:
        running.stop(0)
    figures["stream re-opens after cancels"] = {"re-opens": n, "refused": refused}
    assert refused == 0


def test_idle_and_flooding_streams(figures: dict[str, dict[str, Any]]) -> None:
    """8 idle streams (2 per connection) and 2 flooding ones (requests sent as fast as flow control
    lets them, answers read slowly): Classify and health from a new connection answer within 1 s,
    the idle streams are closed after the idle timeout."""
    running = start(concurrency=2, max_streams=10, max_streams_per_client=2, stream_idle_seconds=4)
    target = f"127.0.0.1:{running.port}"
    channels = [connect(target) for _ in range(4)]
    idle = [IdleStream(target, channels[i // 2]) for i in range(8)]
    sent = [0, 0]
    answered = [0, 0]
    flood_stop = threading.Event()

    def flood(k: int) -> None:
        def requests() -> Iterator[Any]:
            while not flood_stop.is_set() and sent[k] < 5000:
                sent[k] += 1
                yield request()

        with connect(target) as channel:
            from errortaxa.v1 import service_pb2_grpc

            try:
                for _ in service_pb2_grpc.ErrorTaxaStub(channel).ClassifyStream(requests(), timeout=60):
                    answered[k] += 1
                    time.sleep(0.002)  # a slow reader
            except grpc.RpcError:
                pass

    flooders = [threading.Thread(target=flood, args=(k,), daemon=True) for k in range(2)]
    for t in flooders:
        t.start()
    worst = 0.0
    probes = 0
    try:
        time.sleep(0.5)
        for _ in range(scaled(20)):
            with Client(target, retries=0) as fresh, connect(target) as channel:
                begun = time.perf_counter()
                assert fresh.classify(**COLUMNS).version == "1.0"
                health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
                assert health.status == health_pb2.HealthCheckResponse.SERVING
                worst = max(worst, time.perf_counter() - begun)
                probes += 1
            time.sleep(0.1)
        closed = sum(s.ended.wait(8) for s in idle)
        idle_codes = Counter(s.error.code().name if s.error else "none" for s in idle)
    finally:
        flood_stop.set()
        for s in idle:
            s.close()
        for t in flooders:
            t.join(30)
        for c in channels:
            c.close()
        running.stop(0)
    figures["streams"] = {"idle streams": len(idle), "flooding streams": 2, "flood requests sent": sum(sent),
                          "flood answers": sum(answered), "probes (classify + health, new connection)": probes,
                          "worst probe ms": round(worst * 1000, 1), "idle closed by timeout": closed,
                          "idle end codes": dict(idle_codes)}
    assert worst < 1.0
    assert closed == len(idle) and idle_codes == {"DEADLINE_EXCEEDED": len(idle)}
