"""Several replicas on one PostgreSQL store (a real PostgreSQL started by the tests, tests/pg.py):
the four findings of the file store shared by two servers, each as a test; propagation of an
activation within a second; the database going away and coming back; the file store refusing a
second server; `errortaxa store check` and `store migrate`; datasets checked by hash on each
replica; trailing metadata and metrics naming the replica."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from errortaxa.client import AlreadyExists, Client, FailedPrecondition, NotFound, Unavailable
from errortaxa.client._core import classify_request
from errortaxa.engine import SampleBatch, evaluate
from errortaxa.server import RunningServer
from errortaxa.v1 import service_pb2, service_pb2_grpc
from pg import PostgresServer, unavailable
from test_service import ROOT, ServerProcess, address, local, small_batch, start, variant_yaml

pytestmark = pytest.mark.skipif(unavailable() is not None, reason=f"PostgreSQL: {unavailable()}")
PROPAGATION = 1.0  # seconds: every replica serves an acknowledged activation within this
EXE = str(Path(sys.executable).with_name("errortaxa"))


def categories(text: str | None) -> list[str | None]:
    batch = SampleBatch.from_lists(**small_batch())
    compiled = local(text)
    return [evaluate(compiled, batch).record(i)["category"] for i in range(5)]


@pytest.fixture()
def pair(pg_url: str) -> Iterator[tuple[RunningServer, RunningServer]]:
    """Two replicas A and B on one new database."""
    a = start(store=pg_url, replica="A")
    b = start(store=pg_url, replica="B")
    yield a, b
    a.stop(0)
    b.stop(0)


def wait_for(check: Any, timeout: float) -> float:
    """Seconds until ``check()`` is true (AssertionError after ``timeout``)."""
    begun = time.monotonic()
    while not check():
        assert time.monotonic() - begun < timeout, f"not within {timeout} s"
        time.sleep(0.005)
    return time.monotonic() - begun


# -------------------------------------------------------------------------------- the four findings
def test_an_activation_through_one_replica_reaches_the_other(pair: tuple[RunningServer, RunningServer]) -> None:
    a, b = pair
    with Client(address(a), retries=0) as ca, Client(address(b), retries=0) as cb:
        ca.put_taxonomy(variant_yaml("1", name="rep"))
        ca.put_taxonomy(variant_yaml("2.0"))
        ca.activate_taxonomy("peychev2023@2.0")
        wait_for(lambda: cb.classify(**small_batch()).version == "2.0", PROPAGATION)
        assert cb.classify(**small_batch()).category == categories(variant_yaml("2.0"))
        assert cb.classify(**small_batch(), taxonomy="rep").taxonomy.ref == "rep@1"  # a name alone
        assert cb.health() == "SERVING"


def test_the_version_active_on_one_replica_cannot_be_deleted_through_another(
        pair: tuple[RunningServer, RunningServer]) -> None:
    a, b = pair
    with Client(address(a), retries=0) as ca, Client(address(b), retries=0) as cb:
        ca.put_taxonomy(variant_yaml("2.0"), activate=True)
        with pytest.raises(FailedPrecondition, match="active"):
            cb.delete_taxonomy("peychev2023@2.0")  # at once, before B may have heard of the activation
        assert ca.classify(**small_batch()).version == "2.0"
        assert {i.version for i in cb.list_taxonomies()} == {"1.0", "2.0"}


def test_concurrent_conflicting_puts_exactly_one_wins(pair: tuple[RunningServer, RunningServer]) -> None:
    a, b = pair
    rounds = 16
    with Client(address(a), retries=0) as ca, Client(address(b), retries=0) as cb:
        for i in range(rounds):
            texts = [variant_yaml(f"c{i}"), variant_yaml(f"c{i}", drop_husky_pair=False)]
            outcomes: list[str] = ["", ""]
            barrier = threading.Barrier(2)
            threads = [threading.Thread(target=_put, args=(c, texts[k], outcomes, k, barrier))
                       for k, c in enumerate((ca, cb))]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            assert sorted(outcomes) == ["created", "exists"], (i, outcomes)
            winner = texts[outcomes.index("created")]
            stored = {c.get_taxonomy(f"peychev2023@c{i}")[1] for c in (ca, cb)}
            assert stored == {winner}
    puts = [r for r in a.store.audit_records() if r["action"] == "put"]
    assert len(puts) == rounds and all(r["new"] for r in puts)  # the losers left no audit record


def _put(client: Client, text: str, outcomes: list[str], side: int, barrier: threading.Barrier) -> None:
    barrier.wait()
    try:
        outcomes[side] = "created" if client.put_taxonomy(text).created else "not created"
    except AlreadyExists:
        outcomes[side] = "exists"


def _activate(client: Client, version: str, barrier: threading.Barrier) -> None:
    barrier.wait()
    client.activate_taxonomy(f"peychev2023@{version}")


def test_concurrent_activations_end_on_one_version_everywhere(pair: tuple[RunningServer, RunningServer]) -> None:
    a, b = pair
    with Client(address(a), retries=0) as ca, Client(address(b), retries=0) as cb:
        for version in ("2.0", "3.0"):
            ca.put_taxonomy(variant_yaml(version))
        for i in range(10):
            versions = ("2.0", "3.0") if i % 2 else ("3.0", "2.0")
            barrier = threading.Barrier(2)
            threads = [threading.Thread(target=_activate, args=(c, v, barrier))
                       for c, v in zip((ca, cb), versions, strict=True)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            final = a.store.active_key()[1]
            assert final is not None
            wait_for(lambda f=final[1]: ca.classify(**small_batch()).version == cb.classify(**small_batch()).version
                     == f, PROPAGATION)
    history = [seq for seq, in _rows(a, "SELECT seq FROM activations ORDER BY seq")]
    assert history == list(range(1, len(history) + 1))  # one chain


def _rows(server: RunningServer, sql: str) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(server.store.url) as conn:  # type: ignore[attr-defined]
        return list(conn.execute(sql).fetchall())


# -------------------------------------------------------------------------------- rules of the store
def test_activating_the_active_version_appends_nothing(pair: tuple[RunningServer, RunningServer]) -> None:
    a, b = pair
    with Client(address(a), retries=0) as ca, Client(address(b), retries=0) as cb:
        ca.put_taxonomy(variant_yaml("2.0"), activate=True)
        before = _rows(a, "SELECT count(*) FROM activations")
        cb.activate_taxonomy("peychev2023@2.0")
        ca.activate_taxonomy("peychev2023@2.0")
        assert _rows(a, "SELECT count(*) FROM activations") == before == [(1,)]
        again = cb.put_taxonomy(variant_yaml("2.0"))
        assert not again.created


def test_every_answer_names_its_version_and_replica(pair: tuple[RunningServer, RunningServer]) -> None:
    a, b = pair
    for server, name in ((a, "A"), (b, "B")):
        with grpc.insecure_channel(address(server)) as channel:
            stub = service_pb2_grpc.ErrorTaxaStub(channel)
            response, call = stub.Classify.with_call(classify_request(small_batch()))
            assert response.taxonomy.version == "1.0"
            assert ("errortaxa-replica", name) in call.trailing_metadata()
            with pytest.raises(grpc.RpcError) as failed:
                stub.DeleteTaxonomy(service_pb2.DeleteTaxonomyRequest())
            assert ("errortaxa-replica", name) in failed.value.trailing_metadata()  # type: ignore[attr-defined]
        metrics = server.metrics.render()
        assert 'errortaxa_active_taxonomy_info{name="peychev2023",version="1.0",' in metrics
        assert f'replica="{name}"' in metrics
        assert f'errortaxa_store_connected{{replica="{name}",store="{server.store.description}"}} 1' in metrics


def test_replicas_starting_together_create_the_schema_once(pg_url: str) -> None:
    servers: list[RunningServer] = []
    errors: list[BaseException] = []

    def one() -> None:
        try:
            servers.append(start(store=pg_url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    try:
        assert not errors and len(servers) == 3
        assert _rows(servers[0], "SELECT version FROM errortaxa_schema") == [(1,)]
    finally:
        for s in servers:
            s.stop(0)


def test_the_password_is_never_logged(postgres: PostgresServer, caplog: pytest.LogCaptureFixture) -> None:
    import psycopg

    secret = "pw-9f3e1c"
    with psycopg.connect(postgres.url(), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE replica LOGIN PASSWORD '{secret}'")
        conn.execute("CREATE DATABASE with_password OWNER replica")
    url = f"postgresql://replica:{secret}@127.0.0.1:{postgres.port}/with_password"
    with caplog.at_level(logging.DEBUG):
        server = start(store=url)
        server.stop(0)
    text = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "with_password" in text and secret not in text
    assert server.store.description == f"postgresql://replica@127.0.0.1:{postgres.port}/with_password"


# -------------------------------------------------------------------------------- database faults
def test_the_database_going_away_and_coming_back(caplog: pytest.LogCaptureFixture) -> None:
    postgres = PostgresServer()  # its own: the test stops it
    try:
        url = postgres.new_database()
        a = start(store=url, replica="A", store_timeout_seconds=1.0)
        try:
            with Client(address(a), retries=0) as c:
                c.put_taxonomy(variant_yaml("2.0"), activate=True)
                expected = categories(variant_yaml("2.0"))
                with caplog.at_level(logging.INFO, logger="errortaxa.server"):
                    postgres.stop()
                    for _ in range(20):  # classification never fails
                        assert c.classify(**small_batch()).category == expected
                    with pytest.raises(Unavailable, match=r"store .* is unreachable"):
                        c.put_taxonomy(variant_yaml("3.0"))
                    with pytest.raises(Unavailable):
                        c.activate_taxonomy("peychev2023@1.0")
                    wait_for(lambda: 'errortaxa_store_connected{replica="A",' in a.metrics.render()
                             and "} 0" in a.metrics.render().split("errortaxa_store_connected{")[1][:200], 10)
                    assert c.health() == "SERVING"
                    assert c.classify(**small_batch()).version == "2.0"
                    postgres.start()
                    wait_for(lambda: "} 1" in a.metrics.render().split("errortaxa_store_connected{")[1][:200], 15)
                    assert c.put_taxonomy(variant_yaml("3.0"), activate=True).created
                    assert c.classify(**small_batch()).version == "3.0"
                messages = [r.getMessage() for r in caplog.records]
                assert "store disconnected" in messages and "store reconnected" in messages
        finally:
            a.stop(0)
    finally:
        postgres.close()


def test_a_replica_started_while_the_database_is_down_waits_then_exits(postgres: PostgresServer) -> None:
    from pg import free_port

    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    begun = time.monotonic()
    done = subprocess.run([EXE, "serve", "--port", "0", "--store", url, "--store-wait-seconds", "2"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 1
    assert 2 <= time.monotonic() - begun < 30
    (line,) = [x for x in done.stderr.splitlines() if x.startswith("errortaxa serve:")]
    assert f"cannot reach the store postgresql://postgres@127.0.0.1:{url.split(':')[2]}" in line


# -------------------------------------------------------------------------------- the file store is one process
def test_a_second_server_on_one_store_directory_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "store"
    first = ServerProcess("--store", str(store))
    try:
        done = subprocess.run([EXE, "serve", "--port", "0", "--store", str(store)], capture_output=True, text=True,
                              cwd=ROOT, timeout=60)
        assert done.returncode == 1
        (line,) = done.stderr.strip().splitlines()
        assert line.startswith(f"errortaxa serve: {store}: the store is in use by another server (pid ")
        first.process.kill()  # a crash: the kernel releases the lock
        first.process.wait()
    finally:
        first.close()
    again = start(store=store)
    again.stop(0)
    again = start(store=store)  # and a clean stop released it
    again.stop(0)


# -------------------------------------------------------------------------------- check and migrate
def test_store_check_and_migrate(tmp_path: Path, pg_url: str) -> None:
    from errortaxa.server.migrate import migrate

    store = tmp_path / "store"
    data = tmp_path / "data"
    data.mkdir()
    (data / "labels.txt").write_text("250\n65\n")
    running = start(store=store, data_dirs=(data,))
    with Client(address(running), retries=0) as c:
        c.put_taxonomy(variant_yaml("2.0"), activate=True)
        c.put_taxonomy(variant_yaml("3.0"), activate=True)
        c.put_taxonomy(variant_yaml("4.0"))
        c.register_dataset("tiny", "labels.txt")
    running.stop(0)
    done = subprocess.run([EXE, "store", "migrate", str(store), pg_url], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "copied 3 version(s), 2 activation(s), 6 audit record(s), 1 dataset(s)" in done.stderr
    assert migrate(store, pg_url) == {"versions": 0, "activations": 0, "audit": 0, "datasets": 0}  # idempotent
    check = subprocess.run([EXE, "store", "check", pg_url], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert (check.returncode, check.stdout) == (0, ""), check.stderr
    assert "0 finding(s); the server would serve peychev2023@3.0" in check.stderr
    migrated = start(store=pg_url, data_dirs=(data,))
    try:
        with Client(address(migrated), retries=0) as c:
            assert c.classify(**small_batch()).version == "3.0"
            assert sorted(i.version for i in c.list_taxonomies()) == ["1.0", "2.0", "3.0", "4.0"]
            assert c.get_dataset("tiny").size == 2
        audit = migrated.store.audit_records()
        assert [r["action"] for r in audit] == ["put", "activate", "put", "activate", "put", "register_dataset"]
    finally:
        migrated.stop(0)


# -------------------------------------------------------------------------------- datasets on each replica
def test_a_replica_whose_dataset_copy_differs_refuses_it(pg_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    labels = data / "labels.txt"
    labels.write_text("250\n65\n")
    a = start(store=pg_url, data_dirs=(data,), replica="A")
    try:
        with Client(address(a), retries=0) as ca:
            ca.register_dataset("tiny", "labels.txt")
            labels.write_text("250\n66\n")  # this machine's copy changes after registration
            b = start(store=pg_url, data_dirs=(data,), replica="B")
            try:
                with Client(address(b), retries=0) as cb:
                    with pytest.raises(FailedPrecondition, match=r"'tiny'.*differs from the registered file"):
                        cb.classify_dataset("tiny", pred=[250, 65])
                    with pytest.raises(NotFound):
                        cb.classify_dataset("other", pred=[250, 65])
                assert 'errortaxa_dataset_unavailable{replica="B",dataset="tiny"' in b.metrics.render()
                assert ca.classify_dataset("tiny", pred=[250, 65]).version == "1.0"  # A loaded it before
            finally:
                b.stop(0)
    finally:
        a.stop(0)


def test_store_setting_from_the_environment(pg_url: str) -> None:
    server = ServerProcess(env={"ERRORTAXA_STORE": pg_url, "ERRORTAXA_REPLICA": "env-replica"})
    try:
        with Client(f"127.0.0.1:{server.port}", retries=0) as c:
            assert c.put_taxonomy(variant_yaml("2.0"), activate=True).created
    finally:
        server.close()
    assert os.environ.get("ERRORTAXA_STORE") is None


# -------------------------------------------------------------------------------- clients and settings
def test_a_client_balances_over_several_addresses(pg_url: str) -> None:
    servers = [start(store=pg_url, replica=f"r{i}") for i in range(3)]
    try:
        with Client([address(s) for s in servers], timeout=30) as c:
            for _ in range(30):
                assert c.classify(**small_batch()).version == "1.0"
            c.put_taxonomy(variant_yaml("2.0"), activate=True)
            versions = {r.version for r in c.classify_stream(iter([small_batch()] * 6), max_in_flight=1)}
            assert len(versions) == 1
        assert all(s.metrics.samples["Classify"] >= 5 for s in servers), [s.metrics.samples for s in servers]
    finally:
        for s in servers:
            s.stop(0)


def test_the_retry_policy_covers_the_idempotent_methods_only() -> None:
    import json

    from errortaxa.client.balancing import channel_target, service_config

    config = json.loads(service_config(8, 0.1, 5.0))
    assert config["loadBalancingConfig"] == [{"round_robin": {}}]
    retried = {n["method"] for m in config["methodConfig"] if "retryPolicy" in m for n in m["name"]}
    assert {"Classify", "PutTaxonomy", "ActivateTaxonomy", "Check"} <= retried
    assert not retried & {"DeleteTaxonomy", "RegisterDataset", "ClassifyStream"}
    assert all(m["retryPolicy"]["maxAttempts"] == 5 for m in config["methodConfig"] if "retryPolicy" in m)
    assert "methodConfig" not in json.loads(service_config(0, 0.1, 5.0))  # retries=0: fail fast
    assert channel_target(["127.0.0.1:1", "127.0.0.2:2"]) == "ipv4:127.0.0.1:1,127.0.0.2:2"
    assert channel_target(["[::1]:1", "[::1]:2"]) == "ipv6:[::1]:1,[::1]:2"
    assert channel_target("dns:///example.org:50051") == "dns:///example.org:50051"
    with pytest.raises(ValueError, match="HOST:PORT"):
        channel_target(["127.0.0.1", "127.0.0.2:1"])


def test_store_settings_from_file_environment_and_flags(tmp_path: Path) -> None:
    from errortaxa.server.config import ConfigError, load_config

    url = "postgresql://errortaxa@db.internal:5433/errortaxa?sslmode=verify-full"
    (tmp_path / "serve.toml").write_text(f'store = "{url}"\nstore_pool_max = 8\nstore_poll_seconds = 2.5\n')
    config = load_config(["--config", str(tmp_path / "serve.toml")], {})
    assert (config.store, config.store_pool_max, config.store_poll_seconds) == (url, 8, 2.5)
    assert load_config([], {"ERRORTAXA_STORE": url}).store == url
    assert load_config(["--store", "relative/dir"], {}).store == Path("relative/dir")
    with pytest.raises(ConfigError, match="store_poll_seconds must be positive"):
        load_config(["--store-poll-seconds", "0"], {})


def test_migrate_refuses_a_version_stored_with_other_content(tmp_path: Path, pg_url: str) -> None:
    from errortaxa.server.migrate import migrate
    from errortaxa.server.store import StoreError

    store = tmp_path / "store"
    running = start(store=store)
    with Client(address(running), retries=0) as c:
        c.put_taxonomy(variant_yaml("2.0"))
    running.stop(0)
    other = start(store=pg_url)
    with Client(address(other), retries=0) as c:
        c.put_taxonomy(variant_yaml("2.0", drop_husky_pair=False))
    other.stop(0)
    with pytest.raises(StoreError, match=r"peychev2023@2\.0 is in postgresql://.* with other content"):
        migrate(store, pg_url)
    done = subprocess.run([EXE, "store", "migrate", str(store), "/not/a/url"], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert done.returncode == 2 and "TO: expected a postgresql:// URL" in done.stderr
