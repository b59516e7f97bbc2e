#!/usr/bin/env python3
"""Benchmark of the gRPC service over loopback: a real `errortaxa serve` process, the real default
taxonomy, the Python client in this process.

    python bench/service.py [--seconds 5] [--batch 10000] [--latency-calls 2000] [--cold-starts 3]

Measures
- cold start: process spawn to health SERVING (no OOV model), median of --cold-starts runs;
- throughput: predictions per second of batched classification with batches of --batch samples,
  as unary Classify calls one after another and over one ClassifyStream (4 batches in flight);
- latency: p50 / p99 of single-sample Classify calls.
Samples come from ../shared/data's multi-label CSV (targets, label sets, problematic flags, image
ids) with random predictions (half correct); without the data, from random label sets.
Targets (issue 3): >= 1 M predictions/s, p99 <= 2 ms, cold start <= 2 s. The last line is
`RESULT {json}` with predictions_per_s (the better of unary and stream), p99_ms, cold_start_s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from errortaxa.client import Client, Samples

ROOT = Path(__file__).resolve().parents[1]
CSV = ROOT.parent / "shared" / "data" / "imagenet2012_multilabel_validation.csv"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spawn(port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "errortaxa.server", "--host", "127.0.0.1", "--port", str(port),
               "--log-level", "WARNING", "--drain-seconds", "0", "--grace-seconds", "1"]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def wait_serving(port: int, timeout: float = 60.0) -> None:
    # short reconnect backoff: measure when the server is ready, not gRPC's reconnect delay (1 s+)
    fast = [("grpc.initial_reconnect_backoff_ms", 10), ("grpc.min_reconnect_backoff_ms", 10),
            ("grpc.max_reconnect_backoff_ms", 20)]
    with Client(f"127.0.0.1:{port}", retries=0, options=fast) as client:
        client.wait_until_serving(timeout)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def cold_start() -> float:
    port = free_port()
    started = time.perf_counter()
    process = spawn(port)
    try:
        wait_serving(port)
        return time.perf_counter() - started
    finally:
        stop(process)


def samples(n: int, rng: np.random.Generator) -> tuple[Samples, str]:
    """n samples: rows of the multi-label CSV (cycled) with random predictions, half correct."""
    if CSV.is_file():
        from errortaxa.engine.inputs import read_labels

        labels = read_labels(CSV)
        rows = rng.integers(0, len(labels), n)
        picked = labels.take(rows)
        target, offsets, values = picked.target, picked.label_offsets, picked.label_values
        problematic, images, source = picked.problematic, picked.images, "multi-label CSV"
    else:
        target = rng.integers(0, 1000, n)
        sizes = rng.integers(1, 4, n)
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        values = rng.integers(0, 1000, int(offsets[-1]))
        values[offsets[:-1]] = target
        problematic, images, source = np.zeros(n, bool), None, "synthetic"
    pred = np.where(rng.random(n) < 0.5, target, rng.integers(0, 1000, n))
    return Samples.build(target=target, pred=pred, label_offsets=offsets, label_values=values,
                         problematic=problematic, images=images), source


def throughput_unary(client: Client, batch: Samples, seconds: float) -> float:
    client.classify(batch)  # warm up
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        done += len(client.classify(batch))
    return done / (time.perf_counter() - started)


def throughput_stream(client: Client, batch: Samples, seconds: float) -> float:
    list(client.classify_stream([batch, batch]))  # warm up
    started = time.perf_counter()

    def batches() -> object:
        while time.perf_counter() - started < seconds:
            yield batch

    done = sum(len(r) for r in client.classify_stream(batches(), max_in_flight=4))  # type: ignore[arg-type,misc]
    return done / (time.perf_counter() - started)


def latency(client: Client, one: Samples, calls: int) -> list[float]:
    for _ in range(200):
        client.classify(one)
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        client.classify(one)
        times.append(time.perf_counter() - started)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each throughput run")
    parser.add_argument("--batch", type=int, default=10_000, help="samples per Classify call")
    parser.add_argument("--latency-calls", type=int, default=2000)
    parser.add_argument("--cold-starts", type=int, default=3)
    args = parser.parse_args()

    starts = [cold_start() for _ in range(args.cold_starts)]
    cold = statistics.median(starts)
    print(f"cold start to SERVING: median {cold:.3f} s of {[round(s, 3) for s in starts]}")

    rng = np.random.default_rng(0)
    batch, source = samples(args.batch, rng)
    one = batch.slice(0, 1)
    port = free_port()
    process = spawn(port)
    try:
        wait_serving(port)
        with Client(f"127.0.0.1:{port}", retries=0) as client:
            unary = throughput_unary(client, batch, args.seconds)
            print(f"Classify, batches of {args.batch:,} ({source}): {unary:,.0f} predictions/s")
            stream = throughput_stream(client, batch, args.seconds)
            print(f"ClassifyStream, batches of {args.batch:,}, 4 in flight: {stream:,.0f} predictions/s")
            times = np.array(latency(client, one, args.latency_calls)) * 1e3
    finally:
        stop(process)
    p50, p99 = float(np.percentile(times, 50)), float(np.percentile(times, 99))
    print(f"single-sample Classify latency: p50 {p50:.3f} ms, p99 {p99:.3f} ms ({args.latency_calls} calls)")
    result = {
        "predictions_per_s": round(max(unary, stream)),
        "p99_ms": round(p99, 3),
        "cold_start_s": round(cold, 3),
        "unary_predictions_per_s": round(unary),
        "stream_predictions_per_s": round(stream),
        "p50_ms": round(p50, 3),
        "batch": args.batch,
        "samples": source,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    print("RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
