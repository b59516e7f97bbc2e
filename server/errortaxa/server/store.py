"""The taxonomy store: uploaded versions, the activation log, registered datasets, the audit log.

Layout of the store directory::

    taxonomies/<name>/<version>.json   {"name", "version", "yaml", "filename", "content_hash",
                                        "created_at", "created_by"}
    activations.jsonl                  one line per Activate {"id", "time", "name", "version"}; the last
                                       line whose version is intact is the active one
    datasets.json                      {"<dataset>": {"path": "<label file>", "content_hash": "sha256:..."}}
                                       (an earlier store's "<dataset>": "<label file>" reads with no hash)
    audit.jsonl                        per change an "intent" line before it and a "done" line after it
    quarantine/                        damaged and foreign files moved aside at start-up
    lock                               held (fcntl.flock, exclusive) by the one server using the store

Files are replaced atomically by errortaxa.engine.outputs (temporary file, fsync, rename, folder
fsync); the two logs are appended with one write and fsynced. A change (Put, Activate, Delete,
RegisterDataset) is recorded as intent in the audit log before it is applied and as done after.

Opening the store checks every file (``findings`` lists what was wrong): a damaged or foreign file
is moved to ``quarantine/``, a log line that does not parse (a torn last line) is cut off and kept
there, an intent without its done record is completed from the store's real state (was the change
applied or not), temporary files of a crash are removed. ``repair=False`` only reports (``errortaxa
store check``). Without a directory the store lives in memory (lost at exit).

The file store serves one process: a server holds ``lock`` while it runs (released on exit, and by
the kernel on a crash), and a second server started on the same directory is refused
(StoreLocked). Several replicas share a PostgreSQL store (errortaxa.server.pgstore) instead.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
import re
import secrets
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from errortaxa.engine.errors import FailedPrecondition, Unavailable
from errortaxa.engine.outputs import fsync_dir, write_bytes

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
TAXONOMIES, ACTIVATIONS, DATASETS, AUDIT, QUARANTINE, LOCK = (
    "taxonomies", "activations.jsonl", "datasets.json", "audit.jsonl", "quarantine", "lock")
_PARTIAL = re.compile(r"^\..+\.partial$")  # errortaxa.engine.outputs' temporary files


@dataclass(frozen=True)
class StoredVersion:
    """One uploaded taxonomy version as persisted."""

    name: str
    version: str
    yaml: str
    filename: str
    content_hash: str
    created_at: str
    created_by: str


@dataclass(frozen=True)
class Finding:
    """Something wrong found in the store: the file (relative to the store), what, and what was
    (or, in a check, would be) done about it."""

    path: str
    problem: str
    action: str

    def line(self) -> str:
        return f"{self.path}: {self.problem}: {self.action}"


@dataclass(frozen=True)
class DatasetRecord:
    """A registered dataset as stored: its label file and that file's content hash ("" when an
    earlier store did not keep one)."""

    path: str
    content_hash: str = ""


@dataclass(frozen=True)
class Snapshot:
    """What the replicas of a shared store follow: the activation number and the active version
    (None: the built-in default), every stored version (name, version, content hash; oldest first),
    the registered datasets."""

    seq: int
    active: tuple[str, str] | None
    versions: tuple[tuple[str, str, str], ...]
    datasets: dict[str, DatasetRecord]


class Store(Protocol):
    """What the server needs of a store: TaxonomyStore (files, one process) and
    errortaxa.server.pgstore.PostgresStore (several replicas). Reads and changes raise
    StoreUnavailable when the store cannot be reached."""

    findings: list[Finding]
    description: str
    shared: bool  # several servers use it (PostgreSQL): start-up changes nothing there

    @property
    def repair(self) -> bool: ...

    def versions(self) -> list[StoredVersion]: ...

    def get(self, name: str, version: str) -> StoredVersion | None: ...

    def activations(self) -> list[tuple[str, str]]: ...

    def active_key(self) -> tuple[int, tuple[str, str] | None]: ...

    def datasets(self) -> dict[str, DatasetRecord]: ...

    def audit_records(self) -> list[dict[str, Any]]: ...

    def put_version(self, stored: StoredVersion, who: str) -> str | None: ...

    def activate_version(self, name: str, version: str, content_hash: str, who: str, *, stored: bool = True,
                         **what: Any) -> int | None: ...

    def delete_version(self, name: str, version: str, who: str) -> StoredVersion | None: ...

    def register_dataset(self, name: str, record: DatasetRecord, size: int, who: str) -> None: ...

    def close(self) -> None: ...


class StoreError(FailedPrecondition):
    """The store cannot be used at all (not a folder, unreadable, locked by another server)."""


class StoreUnavailable(Unavailable):
    """The store cannot be reached now (the database is down); the message says why."""


class ActiveVersion(FailedPrecondition):
    """The version is the active one, which cannot be deleted."""


def file_hash(path: str | Path) -> str:
    """``sha256:<hex>`` of the file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_version(data: bytes, name: str, version: str) -> StoredVersion:
    """The stored version in ``data`` (the file ``taxonomies/<name>/<version>.json``); ValueError
    saying what is wrong."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    fields = list(StoredVersion.__dataclass_fields__)
    missing = [k for k in fields if k not in doc]
    if missing:
        raise ValueError(f"missing key(s) {', '.join(missing)}")
    wrong = [k for k in fields if not isinstance(doc[k], str)]
    if wrong:
        raise ValueError(f"key(s) {', '.join(wrong)} not text")
    if (doc["name"], doc["version"]) != (name, version):
        raise ValueError(f"holds {str(doc['name'])[:40]}@{str(doc['version'])[:40]}, not {name}@{version}")
    return StoredVersion(**{k: doc[k] for k in fields})


def _audit_record(doc: Any) -> str | None:
    if not isinstance(doc, dict) or not isinstance(doc.get("action"), str):
        return "not an audit record (an object with an action)"
    if doc.get("phase") in ("intent", "done") and not isinstance(doc.get("id"), str):
        return "an intent or done record without an id"
    return None


def _activation_record(doc: Any) -> str | None:
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), str) for k in ("name", "version")):
        return "not an activation record (an object with name and version)"
    return None


def _datasets_document(data: bytes) -> dict[str, DatasetRecord]:
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise ValueError("not an object of dataset name -> label file")
    out: dict[str, DatasetRecord] = {}
    for name, value in doc.items():
        if isinstance(value, str):  # an earlier store: the path alone
            out[name] = DatasetRecord(value)
        elif isinstance(value, dict) and isinstance(value.get("path"), str) \
                and isinstance(value.get("content_hash", ""), str):
            out[name] = DatasetRecord(value["path"], value.get("content_hash", ""))
        else:
            raise ValueError("not an object of dataset name -> label file and content hash")
    return out


def _append(path: Path, data: bytes) -> None:
    """Append ``data`` to the regular file ``path`` with one write, then fsync (the file, and the
    folder when the file is new)."""
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        fsync_dir(path.parent)


class TaxonomyStore:
    """Persisted taxonomy versions, the activation log, datasets and the audit log (thread-safe)."""

    def __init__(self, root: Path | None, *, repair: bool = True, lock: bool = False) -> None:
        self.root = root
        self.repair = repair
        self.description = f"file store {root}" if root is not None else "in-memory store"
        self.shared = False
        self._lock_fd: int | None = None
        self.findings: list[Finding] = []
        self._lock = threading.Lock()
        self._lock_changes = threading.RLock()  # one change at a time (check, then apply)
        self._memory: dict[tuple[str, str], StoredVersion] = {}
        self._activations: list[tuple[str, str]] = []  # in memory; on disk: read from the log
        self._datasets: dict[str, DatasetRecord] = {}
        self._set_aside: set[Path] = set()  # a check's damaged files: read as absent
        self._rebuilt: list[dict[str, Any]] | None = None  # a check's activation log as start-up would rebuild it
        if root is not None:
            if repair:
                root.mkdir(parents=True, exist_ok=True)
            if not root.is_dir():
                raise StoreError(f"{root}: not a folder")
            if lock:
                self._take_lock(root)
            self._stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
            self._open(root)

    def _take_lock(self, root: Path) -> None:
        """Hold ``root/lock`` exclusively while this store is open (StoreError when another
        server holds it)."""
        fd = os.open(root / LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode("ascii", "replace").strip()
            os.close(fd)
            raise StoreError(f"{root}: the store is in use by another server (pid {holder or '?'}); the file "
                             "store serves one process: run several replicas on a PostgreSQL store") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def close(self) -> None:
        """Release the lock (a no-op without one)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- opening: check, quarantine, reconcile ---------------------------------------------------
    def _open(self, root: Path) -> None:
        folder = root / QUARANTINE
        if self.repair and (folder.is_symlink() or (folder.exists() and not folder.is_dir())):
            os.replace(folder, root / f"{QUARANTINE}.{self._stamp}.foreign")  # quarantined below
        for entry in sorted(root.iterdir()):
            if entry.name == QUARANTINE and entry.is_dir() and not entry.is_symlink():
                continue
            if self._partial(entry) or (entry.name == LOCK and _regular(entry)):
                continue
            if entry.name == TAXONOMIES and entry.is_dir() and not entry.is_symlink():
                self._check_taxonomies(entry)
            elif entry.name in (AUDIT, ACTIVATIONS) and _regular(entry):
                continue  # read below
            elif entry.name == DATASETS and _regular(entry):
                try:
                    _datasets_document(entry.read_bytes())
                except ValueError as exc:
                    self._quarantine(entry, str(exc))
            else:
                self._quarantine(entry, "not a file of the store")
        audit = self._read_log(root / AUDIT, _audit_record)
        self._read_log(root / ACTIVATIONS, _activation_record)
        self._check_activations(audit, self._reconcile(audit))

    def _partial(self, entry: Path) -> bool:
        """Remove a temporary file left by a crash (not damage: the rename never happened)."""
        if not (_PARTIAL.match(entry.name) and _regular(entry)):
            return False
        if self.repair:
            entry.unlink(missing_ok=True)
        return True

    def _check_taxonomies(self, folder: Path) -> None:
        for name_dir in sorted(folder.iterdir()):
            if self._partial(name_dir):
                continue
            if not (NAME_PATTERN.match(name_dir.name) and name_dir.is_dir() and not name_dir.is_symlink()):
                self._quarantine(name_dir, "not a taxonomy folder of the store")
                continue
            for entry in sorted(name_dir.iterdir()):
                if self._partial(entry):
                    continue
                version = entry.name[:-len(".json")] if entry.name.endswith(".json") else ""
                if not (NAME_PATTERN.match(version) and _regular(entry)):
                    self._quarantine(entry, "not a taxonomy version of the store")
                    continue
                try:
                    parse_version(entry.read_bytes(), name_dir.name, version)
                except ValueError as exc:
                    self._quarantine(entry, f"damaged taxonomy version ({exc})")
            if self.repair and not any(name_dir.iterdir()):
                name_dir.rmdir()

    def _relative(self, path: Path) -> str:
        assert self.root is not None
        return path.relative_to(self.root).as_posix()

    def _quarantine_name(self, relative: str) -> Path:
        assert self.root is not None
        folder = self.root / QUARANTINE
        target = folder / f"{self._stamp}-{relative.replace('/', '__')}"
        while target.exists() or target.is_symlink():
            target = folder / f"{self._stamp}-{secrets.token_hex(3)}-{relative.replace('/', '__')}"
        return target

    def _quarantine(self, path: Path, problem: str) -> None:
        """Move ``path`` (file, link or folder) into the quarantine folder."""
        relative = self._relative(path)
        if not self.repair:
            self._set_aside.add(path)
            self.findings.append(Finding(relative, problem, "would be moved to quarantine/"))
            return
        target = self._quarantine_name(relative)
        target.parent.mkdir(exist_ok=True)
        os.replace(path, target)
        fsync_dir(path.parent)
        fsync_dir(target.parent)
        self.findings.append(Finding(relative, problem, f"moved to {self._relative(target)}"))

    def _read_log(self, path: Path, problem_of: Callable[[Any], str | None]) -> list[dict[str, Any]]:
        """The records of a JSON-lines log; lines that do not parse (a torn last line, a damaged
        one) are cut out and kept in quarantine."""
        if path in self._set_aside or not path.exists():
            return []
        data = path.read_bytes()
        records: list[dict[str, Any]] = []
        good: list[bytes] = []
        bad: list[tuple[int, bytes, str]] = []
        good_end = first_bad = 0
        offset = 0
        for number, line in enumerate(_lines(data), 1):
            start, offset = offset, offset + len(line)
            if not line.strip():
                continue
            problem: str | None
            try:
                doc = json.loads(line.decode("utf-8"))
                problem = problem_of(doc) if line.endswith(b"\n") else "torn (no end of line)"
            except (UnicodeDecodeError, json.JSONDecodeError):
                problem = "not JSON" if line.endswith(b"\n") else "torn (not JSON)"
            if problem is None:
                records.append(doc)
                good.append(line)
                good_end = offset
            else:
                first_bad = start if not bad else first_bad
                bad.append((number, line, problem))
        if not bad:
            return records
        relative = self._relative(path)
        where = ", ".join(f"line {n} {p}" for n, _, p in bad[:3])
        where += f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        if not self.repair:
            self.findings.append(Finding(relative, where, "would be cut off and kept in quarantine/"))
            return records
        target = self._quarantine_name(relative)
        target.parent.mkdir(exist_ok=True)
        write_bytes(target, b"".join(line for _, line, _ in bad))
        if first_bad >= good_end:  # only the tail: cut it off in place
            with open(path, "r+b") as stream:
                stream.truncate(good_end)
                os.fsync(stream.fileno())
        else:
            write_bytes(path, b"".join(good))
        self.findings.append(Finding(relative, where, f"cut off, kept in {self._relative(target)}"))
        return records

    def _reconcile(self, audit: list[dict[str, Any]]) -> dict[str, str]:
        """Complete every intent without its done record, from what the store holds; the outcome
        of every change (id -> applied, not_applied or failed)."""
        outcomes = {r["id"]: str(r.get("outcome")) for r in audit if r.get("phase") == "done"}
        for intent in audit:
            if intent.get("phase") != "intent" or intent["id"] in outcomes:
                continue
            outcome = outcomes[intent["id"]] = "applied" if self._applied(intent) else "not_applied"
            what = f"{intent['action']} {_subject(intent)} ({intent['id']}) has no done record"
            if not self.repair:
                self.findings.append(Finding(AUDIT, what, f"would be completed as {outcome}"))
                continue
            self._record({"id": intent["id"], "phase": "done", "time": now(), "action": intent["action"],
                          "outcome": outcome, "reconciled": True})
            self.findings.append(Finding(AUDIT, what, f"completed as {outcome}"))
        return outcomes

    def _check_activations(self, audit: list[dict[str, Any]], outcomes: dict[str, str]) -> None:
        """The activation log holds every activation that the audit log records as applied; when it
        lacks some (it was emptied or cut), it is rebuilt from the audit log (the old one kept in
        quarantine)."""
        applied = [r for r in audit if r.get("phase") == "intent" and r["action"] == "activate"
                   and outcomes.get(r["id"]) == "applied"]
        logged = {r.get("id") for r in self._activation_records()}
        missing = [r for r in applied if r["id"] not in logged]
        if not missing:
            return
        rebuilt = [{"id": r["id"], "time": r.get("time", ""), "name": str(r.get("taxonomy", "")),
                    "version": str(r.get("version", ""))} for r in applied]
        what = (f"lacks {len(missing)} activation(s) that audit.jsonl records as applied "
                f"(the last: {_subject(missing[-1])})")
        if not self.repair:
            self._rebuilt = rebuilt
            self.findings.append(Finding(ACTIVATIONS, what, "would be rebuilt from the audit log"))
            return
        assert self.root is not None
        path = self.root / ACTIVATIONS
        action = "rebuilt from the audit log"
        if path.exists():
            target = self._quarantine_name(ACTIVATIONS)
            target.parent.mkdir(exist_ok=True)
            write_bytes(target, path.read_bytes())
            action += f", the old one kept in {self._relative(target)}"
        write_bytes(path, b"".join((json.dumps(r, separators=(",", ":")) + "\n").encode() for r in rebuilt))
        self.findings.append(Finding(ACTIVATIONS, what, action))

    def _applied(self, intent: dict[str, Any]) -> bool:
        action = intent["action"]
        name, version = str(intent.get("taxonomy", "")), str(intent.get("version", ""))
        if action == "put":
            stored = self.get(name, version)
            return stored is not None and stored.content_hash == intent.get("content_hash")
        if action == "delete":
            return self.get(name, version) is None
        if action == "activate":
            return any(r.get("id") == intent["id"] for r in self._activation_records())
        if action == "register_dataset":
            record = self.datasets().get(str(intent.get("dataset")))
            return record is not None and record.path == intent.get("path")
        return False

    # -- versions ----------------------------------------------------------------------------
    def _version_path(self, name: str, version: str) -> Path:
        assert self.root is not None
        return self.root / TAXONOMIES / name / f"{version}.json"

    def versions(self) -> list[StoredVersion]:
        """Every stored version, oldest first."""
        if self.root is None:
            with self._lock:
                return sorted(self._memory.values(), key=lambda v: v.created_at)
        out = []
        for path in (self.root / TAXONOMIES).glob("*/*.json"):
            stored = self._read(path)
            if stored is not None:
                out.append(stored)
        return sorted(out, key=lambda v: (v.created_at, v.name, v.version))

    def get(self, name: str, version: str) -> StoredVersion | None:
        if not (NAME_PATTERN.match(name) and NAME_PATTERN.match(version)):
            return None
        if self.root is None:
            with self._lock:
                return self._memory.get((name, version))
        return self._read(self._version_path(name, version))

    def _read(self, path: Path) -> StoredVersion | None:
        """The version in ``path``; None when it is absent (or a check set it aside)."""
        if path in self._set_aside or path.parent in self._set_aside or not NAME_PATTERN.match(path.stem):
            return None
        try:
            return parse_version(path.read_bytes(), path.parent.name, path.stem)
        except FileNotFoundError:
            return None

    def put(self, stored: StoredVersion) -> None:
        if self.root is None:
            with self._lock:
                self._memory[(stored.name, stored.version)] = stored
            return
        path = self._version_path(stored.name, stored.version)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(path, json.dumps(asdict(stored), indent=1).encode())

    def delete(self, name: str, version: str) -> bool:
        if self.root is None:
            with self._lock:
                return self._memory.pop((name, version), None) is not None
        path = self._version_path(name, version)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        fsync_dir(path.parent)
        try:
            path.parent.rmdir()  # the last version of that name
        except OSError:
            pass
        return True

    # -- activations -------------------------------------------------------------------------
    def _activation_records(self) -> list[dict[str, Any]]:
        assert self.root is not None
        path = self.root / ACTIVATIONS
        if self._rebuilt is not None:
            return self._rebuilt
        if path in self._set_aside:
            return []
        try:
            lines = path.read_bytes().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                doc = json.loads(line.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                continue  # a check reports it; a repaired store has none
            if _activation_record(doc) is None:
                out.append(doc)
        return out

    def activation_log(self) -> list[dict[str, Any]]:
        """The activation records {"id", "time", "name", "version"}, oldest first."""
        if self.root is None:
            return [{"id": str(i), "time": "", "name": n, "version": v} for i, (n, v) in enumerate(self._activations)]
        return self._activation_records()

    def activations(self) -> list[tuple[str, str]]:
        """Every (name, version) activated, newest first (the active one is the first intact one)."""
        if self.root is None:
            return self._activations[::-1]
        return [(r["name"], r["version"]) for r in reversed(self._activation_records())]

    def activate(self, name: str, version: str, change_id: str) -> None:
        """Append an activation (fsynced) to the activation log."""
        if self.root is None:
            self._activations.append((name, version))
            return
        record = {"id": change_id, "time": now(), "name": name, "version": version}
        with self._lock:
            _append(self.root / ACTIVATIONS, (json.dumps(record, separators=(",", ":")) + "\n").encode())

    # -- datasets ----------------------------------------------------------------------------
    def datasets(self) -> dict[str, DatasetRecord]:
        """Datasets registered by admin calls (name -> label file and its hash)."""
        if self.root is None:
            return dict(self._datasets)
        path = self.root / DATASETS
        if path in self._set_aside:
            return {}
        try:
            return _datasets_document(path.read_bytes())
        except FileNotFoundError:
            return {}

    def set_dataset(self, name: str, record: DatasetRecord) -> None:
        with self._lock:
            current = self.datasets()
            current[name] = record
            if self.root is None:
                self._datasets = current
            else:
                doc = {k: asdict(v) for k, v in current.items()}
                write_bytes(self.root / DATASETS, json.dumps(doc, indent=1).encode())

    # -- audit -------------------------------------------------------------------------------
    def _record(self, record: dict[str, Any]) -> None:
        assert self.root is not None
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        with self._lock:
            _append(self.root / AUDIT, line)

    @contextmanager
    def change(self, action: str, who: str, **what: Any) -> Iterator[str]:
        """Record ``action`` as intent (fsynced), let the block apply it, then record it done
        (``outcome`` applied, or failed with the error when the block raises). Yields the id."""
        change_id = secrets.token_hex(8)
        if self.root is None:
            yield change_id
            return
        self._record({"id": change_id, "phase": "intent", "time": now(), "action": action, "who": who, **what})
        try:
            yield change_id
        except BaseException as exc:
            self._record({"id": change_id, "phase": "done", "time": now(), "action": action, "outcome": "failed",
                          "error": type(exc).__name__})
            raise
        self._record({"id": change_id, "phase": "done", "time": now(), "action": action, "outcome": "applied"})

    def audit_records(self) -> list[dict[str, Any]]:
        """Every record of the audit log, oldest first."""
        if self.root is None or not (self.root / AUDIT).exists():
            return []
        return [json.loads(line) for line in (self.root / AUDIT).read_bytes().splitlines() if line.strip()]

    # -- the changes, each with its audit record (the interface PostgresStore shares) ----------
    def active_key(self) -> tuple[int, tuple[str, str] | None]:
        """(the number of activations, the last activated (name, version) or None)."""
        activations = self.activations()
        return len(activations), (activations[0] if activations else None)

    def put_version(self, stored: StoredVersion, who: str) -> str | None:
        """Store a new version (None) or, when ``name@version`` is stored already, its content hash
        (the same content: an idempotent put, audited; other content: nothing is changed)."""
        with self._lock_changes:
            existing = self.get(stored.name, stored.version)
            if existing is not None:
                if existing.content_hash == stored.content_hash:
                    with self.change("put", who, taxonomy=stored.name, version=stored.version,
                                     content_hash=stored.content_hash, new=False):
                        pass
                return existing.content_hash
            with self.change("put", who, taxonomy=stored.name, version=stored.version,
                             content_hash=stored.content_hash, new=True):
                self.put(stored)
            return None

    def activate_version(self, name: str, version: str, content_hash: str, who: str, *, stored: bool = True,
                         **what: Any) -> int | None:
        """Make ``name@version`` the active one (``stored``: not the built-in default): its activation
        number, None when it is active already (nothing appended)."""
        with self._lock_changes:
            count, active = self.active_key()
            if active == (name, version):
                return None
            with self.change("activate", who, taxonomy=name, version=version, content_hash=content_hash,
                             **what) as change_id:
                self.activate(name, version, change_id)
            return count + 1

    def delete_version(self, name: str, version: str, who: str) -> StoredVersion | None:
        """Delete a stored version (None: there is none); ActiveVersion when it is the active one."""
        with self._lock_changes:
            if self.active_key()[1] == (name, version):
                raise ActiveVersion(f"{name}@{version}")
            stored = self.get(name, version)
            if stored is None:
                return None
            with self.change("delete", who, taxonomy=name, version=version, content_hash=stored.content_hash):
                self.delete(name, version)
            return stored

    def register_dataset(self, name: str, record: DatasetRecord, size: int, who: str) -> None:
        with self._lock_changes, self.change("register_dataset", who, dataset=name, path=record.path,
                                             content_hash=record.content_hash, size=size):
            self.set_dataset(name, record)


def _lines(data: bytes) -> list[bytes]:
    """``data`` split after each newline (the last piece may lack one)."""
    pieces = data.split(b"\n")
    lines = [piece + b"\n" for piece in pieces[:-1]]
    return [*lines, pieces[-1]] if pieces[-1] else lines


def _regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def _subject(record: dict[str, Any]) -> str:
    if "dataset" in record:
        return str(record["dataset"])[:60]
    return f"{str(record.get('taxonomy', ''))[:60]}@{str(record.get('version', ''))[:60]}"

