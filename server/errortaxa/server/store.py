"""The taxonomy store: uploaded versions, the active pointer, registered datasets, the audit log.

Layout of the store directory::

    taxonomies/<name>/<version>.json   {"name", "version", "yaml", "filename", "content_hash",
                                        "created_at", "created_by"}
    active.json                        {"name", "version"}
    datasets.json                      {"<dataset>": "<label file path>", ...}
    audit.jsonl                        one JSON line per Put / Activate / Delete / RegisterDataset

Every file is replaced atomically by errortaxa.engine.outputs: written to a temporary file in
the same directory, fsynced, renamed over the old one, and the directory fsynced; a crash leaves
the old or the new file, never a torn one. Without a directory the store lives in memory (lost at exit).
"""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from errortaxa.engine.outputs import fsync_dir, write_bytes

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


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


def _save(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically and durably (errortaxa.engine.outputs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(path, data)


class TaxonomyStore:
    """Persisted taxonomy versions, the active pointer and the audit log (thread-safe)."""

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._memory: dict[tuple[str, str], StoredVersion] = {}
        self._active: tuple[str, str] | None = None
        self._datasets: dict[str, str] = {}
        if root is not None:
            root.mkdir(parents=True, exist_ok=True)
            self._cleanup(root)

    @staticmethod
    def _cleanup(root: Path) -> None:
        """Remove temporary files a crash left behind."""
        for tmp in root.rglob(".*.tmp"):
            tmp.unlink(missing_ok=True)

    def _version_path(self, name: str, version: str) -> Path:
        assert self.root is not None
        return self.root / "taxonomies" / name / f"{version}.json"

    # -- versions ----------------------------------------------------------------------------
    def versions(self) -> list[StoredVersion]:
        """Every stored version, oldest first."""
        if self.root is None:
            with self._lock:
                return sorted(self._memory.values(), key=lambda v: v.created_at)
        out = []
        for path in (self.root / "taxonomies").glob("*/*.json"):
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

    @staticmethod
    def _read(path: Path) -> StoredVersion | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return StoredVersion(**{k: data[k] for k in StoredVersion.__dataclass_fields__})

    def put(self, stored: StoredVersion) -> None:
        if self.root is None:
            with self._lock:
                self._memory[(stored.name, stored.version)] = stored
            return
        data = json.dumps(asdict(stored), indent=1).encode()
        _save(self._version_path(stored.name, stored.version), data)

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

    # -- active pointer ----------------------------------------------------------------------
    def active(self) -> tuple[str, str] | None:
        """The (name, version) last activated, None if never."""
        if self.root is None:
            return self._active
        try:
            data = json.loads((self.root / "active.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return str(data["name"]), str(data["version"])

    def set_active(self, name: str, version: str) -> None:
        if self.root is None:
            self._active = (name, version)
            return
        _save(self.root / "active.json", json.dumps({"name": name, "version": version}).encode())

    # -- datasets ----------------------------------------------------------------------------
    def datasets(self) -> dict[str, str]:
        """Datasets registered by admin calls (name -> label file)."""
        if self.root is None:
            return dict(self._datasets)
        try:
            return dict(json.loads((self.root / "datasets.json").read_text(encoding="utf-8")))
        except FileNotFoundError:
            return {}

    def set_dataset(self, name: str, path: str) -> None:
        with self._lock:
            current = self.datasets()
            current[name] = path
            if self.root is None:
                self._datasets = current
            else:
                _save(self.root / "datasets.json", json.dumps(current, indent=1).encode())

    # -- audit -------------------------------------------------------------------------------
    def audit(self, entry: dict[str, Any]) -> None:
        """Append one audit record (fsynced) to audit.jsonl."""
        if self.root is None:
            return
        line = (json.dumps(entry, separators=(",", ":")) + "\n").encode()
        with self._lock:
            fd = os.open(self.root / "audit.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
