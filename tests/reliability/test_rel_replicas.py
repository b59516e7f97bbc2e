"""Three replicas (``errortaxa serve`` processes) on one PostgreSQL store under load: activations
reach every replica (propagation measured), no wrong or mixed-version answer, kill -9 of a replica
with the client balancing over all of them, the database stopped and started again, kill -9 in the
middle of admin changes. Figures: ``make reliability`` prints them; docs/SERVICE.md quotes them."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from conftest import scaled
from errortaxa.client import Client, ErrorTaxaError, Unavailable
from pg import PostgresServer, unavailable
from test_rel_load import COLUMNS, expected_categories, p
from test_service import ServerProcess, variant_yaml

pytestmark = [pytest.mark.reliability,
              pytest.mark.skipif(unavailable() is not None, reason=f"PostgreSQL: {unavailable()}")]
EXPECTED = expected_categories()  # drop_husky_pair -> categories of COLUMNS


def drop_of(version: str) -> bool:
    """Whether the version (as the tests put them: "v<k>", drop_husky_pair for even k) drops the pair."""
    return version != "1.0" and int(version[1:]) % 2 == 0


def version_yaml(k: int) -> str:
    return variant_yaml(f"v{k}", drop_husky_pair=k % 2 == 0)


class Replicas:
    """``n`` ``errortaxa serve`` processes on the store ``url`` (replica names r0, r1, ...)."""

    def __init__(self, url: str, n: int, *args: str) -> None:
        self.url = url
        self.args = args
        self.processes: list[ServerProcess] = []
        try:
            for i in range(n):
                self.processes.append(self._start(i))
        except BaseException:
            self.close()
            raise

    def _start(self, i: int) -> ServerProcess:
        return ServerProcess("--store", self.url, "--replica", f"r{i}", "--store-timeout-seconds", "2",
                             *self.args, env={"ERRORTAXA_LOG_LEVEL": "WARNING"})

    @property
    def targets(self) -> list[str]:
        return [f"127.0.0.1:{s.port}" for s in self.processes]

    def kill(self, i: int) -> None:
        self.processes[i].process.kill()
        self.processes[i].process.wait()

    def close(self) -> None:
        for server in self.processes:
            server.close()


@pytest.fixture()
def three(pg_url: str) -> Iterator[Replicas]:
    replicas = Replicas(pg_url, 3)
    yield replicas
    replicas.close()


class Load:
    """Clients balancing over every replica: ``unary`` threads classifying, ``streams`` threads
    each running 5-batch ClassifyStreams; every answer checked against the version it names."""

    def __init__(self, targets: list[str], *, unary: int = 2, streams: int = 1, pause: float = 0.0) -> None:
        self.targets = targets
        self.pause = pause
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.answers = 0
        self.wrong: list[str] = []
        self.mixed: list[list[str]] = []
        self.failed: list[str] = []
        self.threads = [threading.Thread(target=self._unary, daemon=True) for _ in range(unary)]
        self.threads += [threading.Thread(target=self._streams, daemon=True) for _ in range(streams)]
        for t in self.threads:
            t.start()

    def _check(self, version: str, categories: list[str | None]) -> None:
        with self.lock:
            self.answers += 1
            if categories != EXPECTED[drop_of(version)]:
                self.wrong.append(version)

    def _unary(self) -> None:
        with Client(self.targets, timeout=30) as c:
            while not self.stop.is_set():
                try:
                    result = c.classify(**COLUMNS)
                except ErrorTaxaError as exc:
                    self.failed.append(repr(exc))
                    continue
                self._check(result.version, result.category)
                time.sleep(self.pause)

    def _streams(self) -> None:
        with Client(self.targets, timeout=30) as c:
            while not self.stop.is_set():
                try:
                    results = list(c.classify_stream(iter([COLUMNS] * 5), max_in_flight=2))
                except ErrorTaxaError as exc:
                    self.failed.append(repr(exc))
                    continue
                for r in results:
                    self._check(r.version, r.category)
                if len({r.version for r in results}) != 1:
                    self.mixed.append([r.version for r in results])
                time.sleep(self.pause)

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)


class Probe:
    """One thread per replica classifying every ``interval`` s: (time, version) of each answer."""

    def __init__(self, target: str, interval: float = 0.01) -> None:
        self.seen: list[tuple[float, str]] = []
        self.stop = threading.Event()
        self.failed: list[str] = []
        self.thread = threading.Thread(target=self._run, args=(target, interval), daemon=True)
        self.thread.start()

    def _run(self, target: str, interval: float) -> None:
        with Client(target, timeout=30) as c:
            while not self.stop.is_set():
                try:
                    version = c.classify(target=[1], labels=[[1]], pred=[1]).version
                except ErrorTaxaError as exc:
                    self.failed.append(repr(exc))
                    continue
                self.seen.append((time.monotonic(), version))
                time.sleep(interval)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)

    def first(self, version: str, since: float) -> float | None:
        """When ``version`` was first seen after ``since``."""
        return next((t for t, v in self.seen if t >= since and v == version), None)


def propagation(probes: list[Probe], acknowledged: list[tuple[str, float, float]], *, distinct: bool
                ) -> tuple[list[float], int]:
    """Per activation (version, sent, acknowledged): seconds from the acknowledgement until every
    replica answered with the version, or (``distinct`` versions, activated once each) a later one
    (0 when all did before it); and how many times a replica went past a version without
    answering with it (the next one came first)."""
    delays, skipped = [], 0
    for i, (version, sent, acked) in enumerate(acknowledged):
        later = {v for v, _, _ in acknowledged[i + 1:]} if distinct else set()
        seen = []
        for probe in probes:
            exact = probe.first(version, sent)
            after = min((t for t, v in probe.seen if t >= sent and v in later), default=None)
            if exact is None or (after is not None and after < exact):
                skipped += 1
                exact = after
            assert exact is not None, (version, probe.seen[-3:])
            seen.append(exact)
        delays.append(max(0.0, max(seen) - acked))
    return delays, skipped


def test_activations_reach_every_replica_under_load(three: Replicas, figures: dict[str, dict[str, Any]]) -> None:
    """Put + Activate every second (through the replicas in turn) for >= 30 activations while
    clients balance unary calls and streams over the three replicas; then >= 10 activations of
    versions put earlier (compiled already: a plain swap on every replica)."""
    activations = max(30, scaled(32))
    load = Load(three.targets)
    probes = [Probe(t) for t in three.targets]
    new: list[tuple[str, float, float]] = []  # (version, sent, acknowledged)
    earlier: list[tuple[str, float, float]] = []
    admins = [Client(t, timeout=30) for t in three.targets]
    try:
        for k in range(activations + max(10, scaled(10))):
            begun = time.monotonic()
            admin = admins[k % 3]
            if k < activations:
                admin.put_taxonomy(version_yaml(k))
                version = f"v{k}"
            else:
                version = f"v{activations - 2 + k % 2}"
            sent = time.monotonic()
            admin.activate_taxonomy(f"peychev2023@{version}")
            (new if k < activations else earlier).append((version, sent, time.monotonic()))
            time.sleep(max(0.0, 1.0 - (time.monotonic() - begun)))
        time.sleep(1.5)
    finally:
        load.close()
        for probe in probes:
            probe.close()
        for admin in admins:
            admin.close()
    (delays, skipped), (swaps, _) = propagation(probes, new, distinct=True), propagation(probes, earlier,
                                                                                         distinct=False)
    figures["replicas: activation propagation"] = {
        "replicas": 3, "activations": len(delays), "answers checked": load.answers,
        "p50 ms": p(delays, 0.5), "p99 ms": p(delays, 0.99), "max ms": p(delays, 1.0),
        "versions a replica went past": skipped,
        "activations of versions put earlier": len(swaps), "their p50 ms": p(swaps, 0.5),
        "their p99 ms": p(swaps, 0.99), "wrong": len(load.wrong), "mixed streams": len(load.mixed),
        "failed calls": len(load.failed)}
    assert not load.failed and not any(probe.failed for probe in probes), load.failed[:3]
    assert not load.wrong and not load.mixed
    assert load.answers > activations
    assert float(np.median(delays)) < 1.0 and float(np.median(swaps)) < 1.0


def test_kill_9_of_a_replica_under_load_fails_no_call(three: Replicas, figures: dict[str, dict[str, Any]]) -> None:
    load = Load(three.targets, unary=3, streams=1)
    try:
        time.sleep(3)
        before = load.answers
        three.kill(1)
        time.sleep(scaled(6))
        after = load.answers
    finally:
        load.close()
    figures["replicas: kill -9 of one of three under load"] = {
        "answers": load.answers, "answers after the kill": after - before, "failed calls": len(load.failed),
        "wrong": len(load.wrong), "mixed streams": len(load.mixed)}
    assert not load.failed, load.failed[:3]
    assert not load.wrong and not load.mixed
    assert after - before > 10


def test_the_database_stopped_and_started_under_load(figures: dict[str, dict[str, Any]]) -> None:
    postgres = PostgresServer()
    try:
        replicas = Replicas(postgres.new_database(), 2)
        load = Load(replicas.targets, unary=2, streams=1, pause=0.01)
        try:
            with Client(replicas.targets, timeout=30) as admin, \
                    Client(replicas.targets, timeout=30, retries=0) as once:
                admin.put_taxonomy(version_yaml(0), activate=True)
                time.sleep(1)
                postgres.stop()
                refused: list[float] = []
                begun = time.monotonic()
                while time.monotonic() - begun < scaled(5):
                    started = time.monotonic()
                    with pytest.raises(Unavailable, match=r"unreachable"):
                        once.put_taxonomy(version_yaml(1))
                    refused.append(time.monotonic() - started)
                postgres.start()
                restarted = time.monotonic()
                while True:
                    try:
                        admin.put_taxonomy(version_yaml(1), activate=True, timeout=10)
                        break
                    except Unavailable:
                        assert time.monotonic() - restarted < 30, "admin calls still refused 30 s after"
                        time.sleep(0.2)
                recovered = time.monotonic() - restarted
                time.sleep(1.5)
        finally:
            load.close()
            replicas.close()
        figures["replicas: database stopped and started under load"] = {
            "answers": load.answers, "failed calls": len(load.failed),
            "admin calls refused (UNAVAILABLE)": len(refused), "refusal p50 ms": p(refused, 0.5),
            "admin OK again after (s)": round(recovered, 2), "wrong": len(load.wrong)}
        assert not load.failed, load.failed[:3]
        assert not load.wrong and not load.mixed
        assert refused
    finally:
        postgres.close()


def _admin_changes(target: str, trial: int, acknowledged: list[tuple[str, str]], stop: threading.Event) -> None:
    """Put, activate and delete versions through ``target`` until it dies; each acknowledged change
    is appended to ``acknowledged``."""
    with Client(target, retries=0, timeout=20) as c:
        previous = None
        for i in range(10_000):
            version = f"v{trial * 1000 + i * 2}"
            steps = [("put", version), ("activate", version)] + ([("delete", previous)] if previous else [])
            for action, ref in steps:
                if stop.is_set():
                    return
                try:
                    if action == "put":
                        c.put_taxonomy(variant_yaml(ref, drop_husky_pair=True))
                    elif action == "activate":
                        c.activate_taxonomy(f"peychev2023@{ref}")
                    else:
                        c.delete_taxonomy(f"peychev2023@{ref}")
                except ErrorTaxaError:
                    return
                acknowledged.append((action, ref))
            previous = version


def test_kill_9_in_the_middle_of_admin_changes_loses_nothing(pg_url: str, figures: dict[str, dict[str, Any]]) -> None:
    import psycopg

    rng = random.Random(18)
    trials = scaled(5)
    acknowledged: list[tuple[str, str]] = []
    for trial in range(trials):
        replicas = Replicas(pg_url, 1)
        try:
            stop = threading.Event()
            worker = threading.Thread(target=_admin_changes, args=(replicas.targets[0], trial, acknowledged, stop))
            worker.start()
            time.sleep(rng.uniform(0.3, 2.0))
            replicas.kill(0)
            stop.set()
            worker.join(30)
        finally:
            replicas.close()
    with psycopg.connect(pg_url) as conn:
        stored = {v for v, in conn.execute("SELECT version FROM taxonomy_versions")}
        active = conn.execute("SELECT version FROM active").fetchone()[0]
        activated = {(cid, v) for cid, v in conn.execute("SELECT change_id, version FROM activations")}
        audit = [r for r, in conn.execute("SELECT record FROM audit ORDER BY id")]
    put = {r["version"] for r in audit if r["action"] == "put" and r["new"]}
    deleted = {r["version"] for r in audit if r["action"] == "delete"}
    audited_activations = {(r["id"], r["version"]) for r in audit if r["action"] == "activate"}
    # nothing acknowledged lost
    for action, version in acknowledged:
        if action == "put":
            assert version in stored or version in deleted
        elif action == "delete":
            assert version not in stored
    last_activate = [v for a, v in acknowledged if a == "activate"][-1]
    assert active == last_activate or int(active[1:]) > int(last_activate[1:])  # or the change in flight
    # nothing unaudited: the store's state is the replay of the audit log
    assert stored == put - deleted
    assert activated == audited_activations
    figures["replicas: kill -9 in the middle of admin changes"] = {
        "trials": trials, "acknowledged changes": len(acknowledged), "audit records": len(audit)}
    assert len(acknowledged) > trials
