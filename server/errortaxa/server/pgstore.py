"""The PostgreSQL taxonomy store, shared by several replicas (psycopg 3 and its pool).

Tables (schema version SCHEMA_VERSION, created or migrated at start-up under an advisory lock, so
that replicas starting together do not race)::

    taxonomy_versions  one row per name@version (primary key): one content per name@version
    active             one row: the active version, its activation number; a stored active version
                       is a foreign key into taxonomy_versions, so it cannot be deleted
    activations        the activation history, a chain: seq = previous_seq + 1, previous_seq unique
                       (activations are totally ordered; the active row is locked while one is added)
    audit              one row per change, written in the change's transaction
    datasets           registered datasets: label file path and content hash

Every change (put, activate, delete, register_dataset) is one transaction with its audit row and a
NOTIFY on CHANNEL (delivered at commit), which the replicas' watchers LISTEN for. An answer OK
means committed. When the database cannot be reached, StoreUnavailable says why.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from errortaxa.server.store import (
    NAME_PATTERN,
    ActiveVersion,
    DatasetRecord,
    Finding,
    Snapshot,
    StoredVersion,
    StoreError,
    StoreUnavailable,
)

log = logging.getLogger("errortaxa.server")
CHANNEL = "errortaxa_changes"
SCHEMA_VERSION = 1
WAKE_SECONDS = 0.5  # a listener looks at its stop flag this often
_LOCK_KEY = 0x6572726F72746178  # "errortax": the advisory lock of schema changes

MIGRATIONS: dict[int, str] = {
    1: """
CREATE TABLE taxonomy_versions (
    name text NOT NULL, version text NOT NULL, yaml text NOT NULL, filename text NOT NULL,
    content_hash text NOT NULL, created_at text NOT NULL, created_by text NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    PRIMARY KEY (name, version));
CREATE TABLE activations (
    seq bigint PRIMARY KEY, previous_seq bigint UNIQUE REFERENCES activations (seq),
    change_id text NOT NULL UNIQUE, time timestamptz NOT NULL DEFAULT now(),
    name text NOT NULL, version text NOT NULL, content_hash text NOT NULL, who text NOT NULL,
    CHECK (seq = coalesce(previous_seq, 0) + 1));
CREATE TABLE active (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    seq bigint NOT NULL, name text, version text, stored_name text, stored_version text,
    FOREIGN KEY (stored_name, stored_version) REFERENCES taxonomy_versions (name, version),
    CHECK (stored_name IS NULL OR (stored_name = name AND stored_version = version)));
INSERT INTO active (seq) VALUES (0);
CREATE TABLE audit (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, time timestamptz NOT NULL DEFAULT now(),
    action text NOT NULL, who text NOT NULL, record jsonb NOT NULL, source text UNIQUE);
CREATE TABLE datasets (
    name text PRIMARY KEY, path text NOT NULL, content_hash text NOT NULL, size bigint NOT NULL,
    registered_at timestamptz NOT NULL DEFAULT now(), registered_by text NOT NULL);
""",
}


def redacted(url: str) -> str:
    """The URL without its password (and without query parameters): safe to log or print."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    netloc = (f"{parts.username}@" if parts.username else "") + host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


class PostgresStore:
    """The store interface of errortaxa.server.store.TaxonomyStore, in PostgreSQL (thread-safe).
    ``read_only``: a check, which changes nothing (no schema created, nothing activated)."""

    def __init__(self, url: str, *, pool_min: int = 1, pool_max: int = 4, wait_seconds: float = 30.0,
                 timeout_seconds: float = 5.0, read_only: bool = False) -> None:
        self.url = url
        self.description = redacted(url)
        self.repair = not read_only
        self.shared = True
        try:
            import psycopg  # noqa: F401
            from psycopg_pool import ConnectionPool
        except ImportError as exc:
            raise StoreError(f"a PostgreSQL store needs the postgres extra (pip install 'errortaxa[postgres]'): "
                             f"{exc}") from None
        self.findings: list[Finding] = []
        self.connected = threading.Event()
        self._pool = ConnectionPool(
            url, min_size=pool_min, max_size=max(pool_max, pool_min), open=False, timeout=timeout_seconds,
            kwargs={"connect_timeout": max(1, int(timeout_seconds))}, check=ConnectionPool.check_connection,
            reconnect_timeout=24 * 3600, name="errortaxa-store")
        self._wait(wait_seconds, timeout_seconds)
        try:
            self._pool.open(wait=True, timeout=wait_seconds)
        except Exception as exc:
            self._pool.close(timeout=0)
            raise StoreError(f"cannot reach the store {self.description} within {wait_seconds:g} s "
                             f"({_reason(exc)})") from None
        self.connected.set()
        self._timeout = timeout_seconds
        try:
            self._migrate(read_only)
        except BaseException:
            self.close()
            raise

    def _wait(self, wait_seconds: float, timeout_seconds: float) -> None:
        """Return once a connection can be made; StoreError with the last reason (refused, no such
        database, authentication failed; never the password) after ``wait_seconds``."""
        import psycopg

        deadline = time.monotonic() + wait_seconds
        backoff = 0.1
        while True:
            try:
                psycopg.connect(self.url, connect_timeout=max(1, int(timeout_seconds))).close()
                return
            except psycopg.Error as exc:
                if time.monotonic() + backoff > deadline:
                    raise StoreError(f"cannot reach the store {self.description} within {wait_seconds:g} s "
                                     f"({_reason(exc)})") from None
                log.warning("waiting for the store", extra={"store": self.description, "reason": _reason(exc)})
            time.sleep(backoff)
            backoff = min(backoff * 2, 2.0)

    def close(self) -> None:
        self._pool.close(timeout=1)

    # -- connections -------------------------------------------------------------------------
    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        """A connection in a transaction, committed when the block ends (StoreUnavailable when the
        database cannot be reached or the commit's outcome is unknown)."""
        import psycopg
        from psycopg_pool import PoolTimeout

        try:
            with self._pool.connection() as conn, conn.transaction():
                yield conn
        except (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout) as exc:
            self.connected.clear()
            raise StoreUnavailable(f"the store {self.description} is unreachable: {_reason(exc)}") from None
        self.connected.set()

    def _migrate(self, read_only: bool) -> None:
        """Create or migrate the schema to SCHEMA_VERSION, under an advisory lock (``read_only``:
        StoreError unless it is there already)."""
        with self._transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            exists = conn.execute("SELECT to_regclass('errortaxa_schema') IS NOT NULL").fetchone()[0]
            if not exists and not read_only:
                conn.execute("CREATE TABLE errortaxa_schema (version int NOT NULL)")
            row = conn.execute("SELECT version FROM errortaxa_schema").fetchone() if exists else None
            current = 0 if row is None else int(row[0])
            if read_only and current != SCHEMA_VERSION:
                raise StoreError(f"the store {self.description} has schema version {current}, not "
                                 f"{SCHEMA_VERSION}: a server starting on it migrates it")
            if current > SCHEMA_VERSION:
                raise StoreError(f"the store {self.description} has schema version {current}, newer than this "
                                 f"server's {SCHEMA_VERSION}: upgrade the server")
            for version in range(current + 1, SCHEMA_VERSION + 1):
                conn.execute(MIGRATIONS[version])
                log.info("store schema migrated", extra={"store": self.description, "schema_version": version})
            if row is None:
                conn.execute("INSERT INTO errortaxa_schema (version) VALUES (%s)", (SCHEMA_VERSION,))
            else:
                conn.execute("UPDATE errortaxa_schema SET version = %s", (SCHEMA_VERSION,))

    @staticmethod
    def _audit(conn: Any, action: str, who: str, source: str | None = None, **what: Any) -> None:
        record = {"action": action, "who": who, **what}
        conn.execute("INSERT INTO audit (action, who, record, source) VALUES (%s, %s, %s, %s)",
                     (action, who, json.dumps(record), source))

    @staticmethod
    def _notify(conn: Any, **what: Any) -> None:
        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, json.dumps(what)))

    # -- reads -------------------------------------------------------------------------------
    def versions(self) -> list[StoredVersion]:
        with self._transaction() as conn:
            rows = conn.execute("SELECT name, version, yaml, filename, content_hash, created_at, created_by "
                                "FROM taxonomy_versions ORDER BY seq").fetchall()
        return [StoredVersion(*row) for row in rows]

    def get(self, name: str, version: str) -> StoredVersion | None:
        if not (NAME_PATTERN.match(name) and NAME_PATTERN.match(version)):
            return None
        with self._transaction() as conn:
            row = conn.execute("SELECT name, version, yaml, filename, content_hash, created_at, created_by "
                               "FROM taxonomy_versions WHERE name = %s AND version = %s", (name, version)).fetchone()
        return None if row is None else StoredVersion(*row)

    def activations(self) -> list[tuple[str, str]]:
        """Every (name, version) activated, newest first."""
        with self._transaction() as conn:
            rows = conn.execute("SELECT name, version FROM activations ORDER BY seq DESC").fetchall()
        return [(name, version) for name, version in rows]

    def active_key(self) -> tuple[int, tuple[str, str] | None]:
        with self._transaction() as conn:
            seq, name, version = conn.execute("SELECT seq, name, version FROM active").fetchone()
        return int(seq), (None if name is None else (name, version))

    def datasets(self) -> dict[str, DatasetRecord]:
        with self._transaction() as conn:
            rows = conn.execute("SELECT name, path, content_hash FROM datasets ORDER BY name").fetchall()
        return {name: DatasetRecord(path, content_hash) for name, path, content_hash in rows}

    def snapshot(self) -> Snapshot:
        with self._transaction() as conn:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            seq, name, version = conn.execute("SELECT seq, name, version FROM active").fetchone()
            versions = conn.execute("SELECT name, version, content_hash FROM taxonomy_versions ORDER BY seq").fetchall()
            datasets = conn.execute("SELECT name, path, content_hash FROM datasets").fetchall()
        return Snapshot(int(seq), None if name is None else (name, version), tuple(map(tuple, versions)),
                        {n: DatasetRecord(p, h) for n, p, h in datasets})

    def audit_records(self) -> list[dict[str, Any]]:
        with self._transaction() as conn:
            rows = conn.execute("SELECT id, time, record FROM audit ORDER BY id").fetchall()
        return [{"seq": seq, "time": at.isoformat(), **record} for seq, at, record in rows]

    # -- changes -----------------------------------------------------------------------------
    def put_version(self, stored: StoredVersion, who: str) -> str | None:
        """Store a new version (None) or, when name@version is stored already, its content hash (the
        same content: an idempotent put, audited). The primary key decides between concurrent puts."""
        with self._transaction() as conn:
            inserted = conn.execute(
                "INSERT INTO taxonomy_versions (name, version, yaml, filename, content_hash, created_at, created_by) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (name, version) DO NOTHING RETURNING seq",
                (stored.name, stored.version, stored.yaml, stored.filename, stored.content_hash, stored.created_at,
                 stored.created_by)).fetchone()
            if inserted is None:
                (existing,) = conn.execute(
                    "SELECT content_hash FROM taxonomy_versions WHERE name = %s AND version = %s",
                    (stored.name, stored.version)).fetchone()
                if existing == stored.content_hash:
                    self._audit(conn, "put", who, taxonomy=stored.name, version=stored.version,
                                content_hash=stored.content_hash, new=False)
                return str(existing)
            self._audit(conn, "put", who, taxonomy=stored.name, version=stored.version,
                        content_hash=stored.content_hash, new=True)
            self._notify(conn, action="put", taxonomy=stored.name, version=stored.version)
        return None

    def activate_version(self, name: str, version: str, content_hash: str, who: str, *, stored: bool = True,
                         **what: Any) -> int | None:
        """Make name@version active: its activation number; None when it is active already (nothing
        appended). ``stored``: a stored version (False: the built-in default)."""
        import psycopg

        change_id = secrets.token_hex(8)
        try:
            with self._transaction() as conn:
                seq, active_name, active_version = conn.execute(
                    "SELECT seq, name, version FROM active FOR UPDATE").fetchone()
                if (active_name, active_version) == (name, version):
                    return None
                new_seq = int(seq) + 1
                conn.execute("INSERT INTO activations (seq, previous_seq, change_id, name, version, content_hash, who) "
                             "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                             (new_seq, seq or None, change_id, name, version, content_hash, who))
                conn.execute("UPDATE active SET seq = %s, name = %s, version = %s, stored_name = %s, "
                             "stored_version = %s", (new_seq, name, version, name if stored else None,
                                                     version if stored else None))
                self._audit(conn, "activate", who, id=change_id, taxonomy=name, version=version,
                            content_hash=content_hash, seq=new_seq, **what)
                self._notify(conn, action="activate", taxonomy=name, version=version, seq=new_seq)
        except psycopg.errors.ForeignKeyViolation:
            raise KeyError(f"{name}@{version}") from None  # deleted meanwhile
        return new_seq

    def delete_version(self, name: str, version: str, who: str) -> StoredVersion | None:
        """Delete a stored version (None: there is none); ActiveVersion when it is the active one
        (the active row's foreign key refuses it, whichever replica asks)."""
        import psycopg

        try:
            with self._transaction() as conn:
                row = conn.execute("DELETE FROM taxonomy_versions WHERE name = %s AND version = %s RETURNING "
                                   "name, version, yaml, filename, content_hash, created_at, created_by",
                                   (name, version)).fetchone()
                if row is None:
                    return None
                stored = StoredVersion(*row)
                self._audit(conn, "delete", who, taxonomy=name, version=version, content_hash=stored.content_hash)
                self._notify(conn, action="delete", taxonomy=name, version=version)
        except psycopg.errors.ForeignKeyViolation:
            raise ActiveVersion(f"{name}@{version}") from None
        return stored

    def register_dataset(self, name: str, record: DatasetRecord, size: int, who: str) -> None:
        with self._transaction() as conn:
            conn.execute("INSERT INTO datasets (name, path, content_hash, size, registered_by) "
                         "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (name) DO UPDATE SET path = excluded.path, "
                         "content_hash = excluded.content_hash, size = excluded.size, registered_at = now(), "
                         "registered_by = excluded.registered_by", (name, record.path, record.content_hash, size, who))
            self._audit(conn, "register_dataset", who, dataset=name, path=record.path,
                        content_hash=record.content_hash, size=size)
            self._notify(conn, action="register_dataset", dataset=name)

    # -- migration from a file store --------------------------------------------------------------
    def import_records(self, versions: list[StoredVersion], activations: list[dict[str, Any]],
                       audit: list[dict[str, Any]], datasets: dict[str, tuple[DatasetRecord, int]],
                       builtin: tuple[str, str]) -> dict[str, int]:
        """Copy a file store's records in one transaction; what is here already (the same version,
        activation id, audit record) is kept, so a second run changes nothing. StoreError when a
        version is here with other content or the database has activations of its own."""
        counts = {"versions": 0, "activations": 0, "audit": 0, "datasets": 0}
        with self._transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            for v in versions:
                row = conn.execute("SELECT content_hash FROM taxonomy_versions WHERE name = %s AND version = %s",
                                   (v.name, v.version)).fetchone()
                if row is not None and row[0] != v.content_hash:
                    raise StoreError(f"{v.name}@{v.version} is in {self.description} with other content ({row[0]})")
                if row is None:
                    conn.execute("INSERT INTO taxonomy_versions (name, version, yaml, filename, content_hash, "
                                 "created_at, created_by) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                                 (v.name, v.version, v.yaml, v.filename, v.content_hash, v.created_at, v.created_by))
                    counts["versions"] += 1
            here = [r[0] for r in conn.execute("SELECT change_id FROM activations ORDER BY seq").fetchall()]
            ids = [str(a["id"]) for a in activations]
            if here != ids[:len(here)]:
                raise StoreError(f"{self.description} has activations of its own: the file store's history "
                                 "cannot be put before them")
            stored = {(v.name, v.version) for v in versions}
            for seq, record in enumerate(activations[len(here):], len(here) + 1):
                key = (str(record["name"]), str(record["version"]))
                conn.execute("INSERT INTO activations (seq, previous_seq, change_id, time, name, version, "
                             "content_hash, who) VALUES (%s, %s, %s, coalesce(%s::timestamptz, now()), %s, %s, %s, %s)",
                             (seq, seq - 1 or None, str(record["id"]), record.get("time") or None, *key,
                              str(record.get("content_hash", "")), "errortaxa-migrate"))
                is_stored = key in stored and key != builtin
                conn.execute("UPDATE active SET seq = %s, name = %s, version = %s, stored_name = %s, "
                             "stored_version = %s", (seq, *key, key[0] if is_stored else None,
                                                     key[1] if is_stored else None))
                counts["activations"] += 1
            for record in audit:
                done = conn.execute(
                    "INSERT INTO audit (time, action, who, record, source) VALUES (coalesce(%s::timestamptz, "
                    "now()), %s, %s, %s, %s) ON CONFLICT (source) DO NOTHING RETURNING id",
                    (record.get("time") or None, str(record["action"]), str(record.get("who", "")),
                     json.dumps({**record, "migrated": True}), f"file:{record['id']}")).fetchone()
                counts["audit"] += done is not None
            for name, (dataset, size) in datasets.items():
                done = conn.execute(
                    "INSERT INTO datasets (name, path, content_hash, size, registered_by) VALUES (%s, %s, %s, %s, %s) "
                    "ON CONFLICT (name) DO NOTHING RETURNING name",
                    (name, dataset.path, dataset.content_hash, size, "errortaxa-migrate")).fetchone()
                counts["datasets"] += done is not None
            self._notify(conn, action="migrate")
        return counts

    # -- listening ---------------------------------------------------------------------------
    def listen(self, timeout: float, stop: threading.Event) -> Iterator[None]:
        """Yield once per notification (or burst of them) and once per ``timeout`` without one,
        on a connection of its own, until ``stop`` is set; StoreUnavailable when the connection
        is lost or cannot be made."""
        import psycopg

        try:
            with psycopg.connect(self.url, autocommit=True, connect_timeout=max(1, int(self._timeout))) as conn:
                conn.execute(f"LISTEN {CHANNEL}")
                self.connected.set()
                yield  # connected: catch up on what happened meanwhile
                while not stop.is_set():
                    deadline = time.monotonic() + timeout
                    while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
                        if list(conn.notifies(timeout=min(left, WAKE_SECONDS), stop_after=1)):
                            break
                    conn.execute("SELECT 1")  # a lost connection shows here when nothing arrives
                    yield
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            self.connected.clear()
            raise StoreUnavailable(f"the store {self.description} is unreachable: {_reason(exc)}") from None
