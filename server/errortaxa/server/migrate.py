"""``errortaxa store migrate FROM TO``: a file store copied into a PostgreSQL store (versions,
activation history, audit log, datasets), every version's content hash verified by compiling it;
idempotent (a second run copies nothing)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from errortaxa.engine import TaxonomyError
from errortaxa.engine.compile.compiler import default_compiled
from errortaxa.server.datasets import load_dataset
from errortaxa.server.errors import ServiceError
from errortaxa.server.pgstore import PostgresStore
from errortaxa.server.store import DatasetRecord, StoreError, TaxonomyStore, file_hash
from errortaxa.server.taxonomies import compile_text


def migrate(source: Path, url: str) -> dict[str, int]:
    """Copy the file store at ``source`` into the PostgreSQL store at ``url``; what was copied.
    StoreError when the file store has findings (start a server on it, or check it, first) or a
    version's content does not hash to its recorded content hash."""
    files = TaxonomyStore(source, repair=False)
    if files.findings:
        raise StoreError(f"{source}: {len(files.findings)} finding(s) (see errortaxa store check): a server "
                         "started on it repairs them; migrate a clean store")
    versions = files.versions()
    for stored in versions:
        try:
            found = compile_text(stored.yaml, stored.filename).content_hash
        except TaxonomyError as exc:
            raise StoreError(f"{stored.name}@{stored.version} does not compile: {exc}") from None
        if found != stored.content_hash:
            raise StoreError(f"{stored.name}@{stored.version}: its content hashes to {found}, not the recorded "
                             f"{stored.content_hash}")
    audit = files.audit_records()
    outcomes = {r["id"]: r.get("outcome") for r in audit if r.get("phase") == "done"}
    applied = [_change(r) for r in audit if r.get("phase") == "intent" and outcomes.get(r["id"]) == "applied"]
    hashes = {r["id"]: r.get("content_hash", "") for r in applied if r["action"] == "activate"}
    activations = [{**a, "content_hash": hashes.get(a["id"], "")} for a in files.activation_log()]
    datasets: dict[str, tuple[DatasetRecord, int]] = {}
    for name, record in files.datasets().items():
        content_hash = record.content_hash or (file_hash(record.path) if Path(record.path).is_file() else "")
        try:
            size = len(load_dataset(name, record.path).labels)
        except ServiceError:
            size = 0
        datasets[name] = (DatasetRecord(record.path, content_hash), size)
    builtin = default_compiled()
    store = PostgresStore(url, wait_seconds=10.0)
    try:
        return store.import_records(versions, activations, applied, datasets, (builtin.name, builtin.version))
    finally:
        store.close()


def _change(intent: dict[str, Any]) -> dict[str, Any]:
    """An applied change of the file store's audit log as one record (no phase)."""
    return {k: v for k, v in intent.items() if k != "phase"}
