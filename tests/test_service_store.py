"""The taxonomy store under damage and crashes: each damaged or foreign file is quarantined (a log
line, a metric, `errortaxa store check`), the server starts and serves the last activated version
that is intact; audit records are written before the change and completed at start-up; kill -9
during Put / Activate / Delete loses no acknowledged change and leaves no executed one unrecorded."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from errortaxa.client import Client, ErrorTaxaError, Unavailable
from errortaxa.server.app import check_store
from errortaxa.server.store import DatasetRecord, TaxonomyStore
from test_service import ROOT, ServerProcess, address, small_batch, start, variant_yaml

VERSIONS = "taxonomies/peychev2023"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store where 2.0 then 3.0 were activated and 4.0 is stored, never activated."""
    store = tmp_path_factory.mktemp("template") / "store"
    running = start(store=store)
    try:
        with Client(address(running), retries=0) as c:
            c.put_taxonomy(variant_yaml("2.0"), activate=True)
            c.put_taxonomy(variant_yaml("3.0"), activate=True)
            c.put_taxonomy(variant_yaml("4.0"))
    finally:
        running.stop(0)
    return store


def copy_of(template: Path, tmp_path: Path) -> Path:
    store = tmp_path / "store"
    shutil.copytree(template, store)
    return store


def tree(store: Path) -> dict[str, str]:
    """Every file of the store and its content hash (to see that a check changes nothing)."""
    return {p.relative_to(store).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(store.rglob("*")) if p.is_file()}


def cut(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def cut_last_line(path: Path) -> dict[str, Any]:
    """Tear the last line of a JSON-lines log in the middle; the record it held."""
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
    return dict(json.loads(lines[-1]))


def drop_done_of(store: Path, change_id: str) -> None:
    """Remove the done record of one change, as a kill between the change and that record leaves it."""
    audit = store / "audit.jsonl"
    lines = [line for line in audit.read_text().splitlines(keepends=True)
             if not (json.loads(line)["id"] == change_id and json.loads(line)["phase"] == "done")]
    audit.write_text("".join(lines))


def missing_key(path: Path) -> None:
    doc = json.loads(path.read_text())
    del doc["yaml"]
    path.write_text(json.dumps(doc))


def served(store: Path) -> tuple[str, list[str], str]:
    """Start a server on ``store``: (the version it serves, the versions it lists, its metrics)."""
    running = start(store=store)
    try:
        with Client(address(running), retries=0) as c:
            version = c.classify(**small_batch()).version
            listed = sorted(i.version for i in c.list_taxonomies())
        return version, listed, running.metrics.render()
    finally:
        running.stop(0)


@dataclass
class Case:
    damage: Callable[[Path], Any]
    files: tuple[str, ...]  # the files named by the findings
    serves: str
    listed: tuple[str, ...] = ("1.0", "2.0", "3.0", "4.0")
    quarantined: int = 1


CASES = {
    "truncated inactive version": Case(lambda s: cut(s / VERSIONS / "4.0.json"), (f"{VERSIONS}/4.0.json",), "3.0",
                                       ("1.0", "2.0", "3.0")),
    "truncated active version": Case(lambda s: cut(s / VERSIONS / "3.0.json", 0.9),
                                     (f"{VERSIONS}/3.0.json", "activations.jsonl"), "2.0", ("1.0", "2.0", "4.0")),
    "version missing a key": Case(lambda s: missing_key(s / VERSIONS / "3.0.json"),
                                  (f"{VERSIONS}/3.0.json", "activations.jsonl"), "2.0", ("1.0", "2.0", "4.0")),
    "empty version file": Case(lambda s: (s / VERSIONS / "4.0.json").write_bytes(b""), (f"{VERSIONS}/4.0.json",),
                               "3.0", ("1.0", "2.0", "3.0")),
    # the pointer torn by a crash: its done record never written, so the activation did not happen
    "truncated active pointer (crash)": Case(
        lambda s: drop_done_of(s, cut_last_line(s / "activations.jsonl")["id"]),
        ("activations.jsonl", "audit.jsonl"), "2.0"),
    # the pointer cut or emptied later: the audit log knows 3.0 was activated
    "truncated active pointer (damage)": Case(lambda s: cut_last_line(s / "activations.jsonl"),
                                              ("activations.jsonl", "activations.jsonl"), "3.0", quarantined=2),
    "empty active pointer": Case(lambda s: (s / "activations.jsonl").write_bytes(b""), ("activations.jsonl",), "3.0"),
    "the earlier layout's empty active.json": Case(lambda s: (s / "active.json").write_bytes(b""), ("active.json",),
                                                   "3.0"),
    "stray .json in the store": Case(lambda s: (s / "notes.json").write_text('{"x": 1}'), ("notes.json",), "3.0"),
    "stray .json among versions": Case(lambda s: (s / VERSIONS / "v 1.json").write_text("{}"),
                                       (f"{VERSIONS}/v 1.json",), "3.0"),
    "a version under another name": Case(
        lambda s: shutil.copy(s / VERSIONS / "4.0.json", s / VERSIONS / "5.0.json"), (f"{VERSIONS}/5.0.json",), "3.0"),
    "damaged datasets.json": Case(lambda s: (s / "datasets.json").write_text("[1, 2"), ("datasets.json",), "3.0"),
    "a folder among versions": Case(lambda s: (s / VERSIONS / "x.json").mkdir(), (f"{VERSIONS}/x.json",), "3.0"),
    "a link to a file outside": Case(lambda s: (s / VERSIONS / "5.0.json").symlink_to("/etc/passwd"),
                                     (f"{VERSIONS}/5.0.json",), "3.0"),
    "torn last audit line": Case(lambda s: cut_last_line(s / "audit.jsonl"), ("audit.jsonl", "audit.jsonl"), "3.0"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_damaged_store_is_reported_quarantined_and_served(name: str, template: Path, tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    case = CASES[name]
    store = copy_of(template, tmp_path)
    case.damage(store)
    before = tree(store)
    findings, serves = check_store(store)  # reports, changes nothing
    assert tree(store) == before
    assert sorted(f.path for f in findings) == sorted(case.files), [f.line() for f in findings]
    assert serves == f"peychev2023@{case.serves}" + (" (built in)" if case.serves == "1.0" else "")
    with caplog.at_level(logging.WARNING, logger="errortaxa.server"):
        version, listed, metrics = served(store)
    assert version == case.serves
    assert tuple(listed) == case.listed
    logged = [r for r in caplog.records if r.getMessage() == "store finding"]
    assert sorted(r.path for r in logged) == sorted(case.files)
    for path in case.files:
        assert f'errortaxa_store_findings{{path="{path}"' in metrics
    assert len(list((store / "quarantine").iterdir())) == case.quarantined
    assert check_store(store)[0] == []  # start-up left the store clean
    assert served(store)[0] == case.serves  # and a second start serves the same


def test_an_unfinished_change_is_completed_from_the_store(template: Path, tmp_path: Path) -> None:
    store = copy_of(template, tmp_path)
    audit = [json.loads(line) for line in (store / "audit.jsonl").read_text().splitlines()]
    put_4 = next(r for r in audit if r["phase"] == "intent" and r["action"] == "put" and r["version"] == "4.0")
    drop_done_of(store, put_4["id"])  # applied (the file is there), its done record lost
    ghost = {**put_4, "id": "0123456789abcdef", "version": "9.0"}  # an intent whose change never happened
    with (store / "audit.jsonl").open("a") as stream:
        stream.write(json.dumps(ghost) + "\n")
    findings, _ = check_store(store)
    assert [f.line() for f in findings] == [
        f"audit.jsonl: put peychev2023@4.0 ({put_4['id']}) has no done record: would be completed as applied",
        "audit.jsonl: put peychev2023@9.0 (0123456789abcdef) has no done record: would be completed as not_applied"]
    assert served(store)[0] == "3.0"
    done = {r["id"]: r for r in map(json.loads, (store / "audit.jsonl").read_text().splitlines())
            if r["phase"] == "done"}
    assert (done[put_4["id"]]["outcome"], done[put_4["id"]]["reconciled"]) == ("applied", True)
    assert done["0123456789abcdef"]["outcome"] == "not_applied"
    assert check_store(store)[0] == []


def test_a_stored_version_that_no_longer_compiles_is_passed_over(template: Path, tmp_path: Path) -> None:
    store = copy_of(template, tmp_path)
    path = store / VERSIONS / "3.0.json"
    doc = json.loads(path.read_text())
    path.write_text(json.dumps({**doc, "yaml": doc["yaml"].replace("axes:", "axes: [", 1)}))
    assert served(store)[0] == "2.0"
    assert (store / VERSIONS / "3.0.json").exists()  # well-formed: kept, not quarantined
    # start-up activated 2.0 again (audited), so a later start does not go back to 3.0
    last = json.loads((store / "activations.jsonl").read_text().splitlines()[-1])
    assert (last["name"], last["version"]) == ("peychev2023", "2.0")
    intent = next(r for r in map(json.loads, (store / "audit.jsonl").read_text().splitlines())
                  if r["id"] == last["id"] and r["phase"] == "intent")
    assert intent["who"] == "errortaxa-startup"


def test_every_activation_damaged_serves_the_builtin(template: Path, tmp_path: Path) -> None:
    store = copy_of(template, tmp_path)
    for version in ("2.0", "3.0"):
        cut(store / VERSIONS / f"{version}.json")
    assert served(store)[0] == "1.0"


def test_store_check_command(template: Path, tmp_path: Path) -> None:
    store = copy_of(template, tmp_path)
    exe = str(Path(sys.executable).with_name("errortaxa"))
    clean = subprocess.run([exe, "store", "check", str(store)], capture_output=True, text=True, cwd=ROOT)
    assert (clean.returncode, clean.stdout) == (0, "")
    assert "0 finding(s); the server would serve peychev2023@3.0" in clean.stderr
    cut(store / VERSIONS / "4.0.json")
    (store / "notes.json").write_text("{}")
    damaged = subprocess.run([exe, "store", "check", str(store)], capture_output=True, text=True, cwd=ROOT)
    assert damaged.returncode == 1
    lines = damaged.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0] == "notes.json: not a file of the store: would be moved to quarantine/"
    assert lines[1].startswith(f"{VERSIONS}/4.0.json: damaged taxonomy version (not JSON (Unterminated string")
    missing = subprocess.run([exe, "store", "check", str(tmp_path / "nowhere")], capture_output=True, text=True)
    assert missing.returncode == 2 and "not a folder" in missing.stderr


def test_the_intent_is_recorded_before_the_change(tmp_path: Path) -> None:
    """While a change is applied its intent is already durable; after it, the done record."""
    store = TaxonomyStore(tmp_path / "store")
    seen: list[list[str]] = []
    with store.change("register_dataset", "ops", dataset="d", path="/x", size=1) as change_id:
        seen.append([r["phase"] for r in store.audit_records()])
        store.set_dataset("d", DatasetRecord("/x"))
    with pytest.raises(OSError), store.change("register_dataset", "ops", dataset="e", path="/y", size=1):
        raise OSError("disk full")
    records = store.audit_records()
    assert seen == [["intent"]]
    assert [(r["id"] == change_id, r["phase"], r.get("outcome")) for r in records[:2]] == [
        (True, "intent", None), (True, "done", "applied")]
    assert (records[3]["phase"], records[3]["outcome"], records[3]["error"]) == ("done", "failed", "OSError")


# ------------------------------------------------------------------------------------------- kill -9
@dataclass
class Expected:
    """What the acknowledged changes say the store holds; ``pending``: the change in flight."""

    stored: frozenset[str] = frozenset()
    active: str = "1.0"
    pending: tuple[str, str] | None = None
    acknowledged: int = 0
    errors: list[str] = field(default_factory=list)  # failures other than the server going away


def _apply(state: tuple[frozenset[str], str], change: tuple[str, str]) -> tuple[frozenset[str], str]:
    stored, active = state
    action, version = change
    if action == "put":
        return stored | {version}, active
    if action == "activate":
        return stored, version
    return stored - {version}, active


def _admin_changes(target: str, trial: int, expected: Expected, stop: threading.Event) -> None:
    """Put a version, switch between it and the previous one, delete the previous one; in a loop
    until the server dies. Each acknowledged change updates ``expected``."""
    with Client(target, retries=0, timeout=20) as c:
        for i in range(10_000):
            version = f"k{trial}.{i}"
            previous = expected.active
            changes = [("put", version)] + [("activate", v) for v in (version, previous) * 3] + [("delete", previous)]
            for action, ref in changes[:-2] + changes[-1:]:  # ends on the new version, then deletes the old
                if stop.is_set() or (action == "delete" and previous == "1.0"):
                    continue
                expected.pending = (action, ref)
                try:
                    if action == "put":
                        c.put_taxonomy(variant_yaml(ref))
                    elif action == "activate":
                        c.activate_taxonomy(f"peychev2023@{ref}")
                    else:
                        c.delete_taxonomy(f"peychev2023@{ref}")
                except Unavailable:
                    return
                except ErrorTaxaError as exc:
                    if not stop.is_set():
                        expected.errors.append(f"{action} {ref}: {exc!r}")
                    return
                expected.stored, expected.active = _apply((expected.stored, expected.active), (action, ref))
                expected.pending = None
                expected.acknowledged += 1
            if stop.is_set():
                return


def verify_after_restart(store: Path, target: str, expected: Expected) -> int:
    """Every acknowledged change present; the store's real state (every executed change) is the
    replay of the audit log's applied changes; every intent has its done record. Adopts the real
    state (the change in flight may or may not have happened); the number of reconciled records."""
    audit = [json.loads(line) for line in (store / "audit.jsonl").read_text().splitlines()] \
        if (store / "audit.jsonl").exists() else []
    outcome = {r["id"]: r["outcome"] for r in audit if r["phase"] == "done"}
    intents = [r for r in audit if r["phase"] == "intent"]
    assert all(r["id"] in outcome for r in intents), "an intent without its done record"
    replay: tuple[frozenset[str], str] = (frozenset(), "1.0")
    for r in intents:
        if outcome[r["id"]] == "applied":
            replay = _apply(replay, (r["action"], r["version"]))
    real_stored = frozenset(p.stem for p in (store / VERSIONS).glob("*.json"))
    with Client(target, retries=0) as c:
        real_active = c.classify(**small_batch()).version
    assert (real_stored, real_active) == replay, "an executed change without its audit record"
    acknowledged = (expected.stored, expected.active)
    allowed = {acknowledged} | ({_apply(acknowledged, expected.pending)} if expected.pending else set())
    assert (real_stored, real_active) in allowed, "an acknowledged change was lost"
    assert check_store(store)[0] == []
    expected.stored, expected.active, expected.pending = real_stored, real_active, None
    return sum(bool(r.get("reconciled")) for r in audit)


def kill_trials(store: Path, trials: int, seed: int = 12) -> dict[str, int]:
    """``trials`` rounds of: start ``python -m errortaxa.server`` on ``store``, check the previous
    round's changes, run admin changes, kill -9 at a random moment (0.05-1.5 s in); the figures."""
    rng = random.Random(seed)
    expected = Expected()
    figures = {"trials": 0, "acknowledged": 0, "reconciled": 0, "killed_in_flight": 0}
    for trial in range(trials + 1):
        server = ServerProcess("--store", str(store), env={"ERRORTAXA_LOG_LEVEL": "WARNING"})
        try:
            target = f"127.0.0.1:{server.port}"
            if trial:
                figures["reconciled"] = verify_after_restart(store, target, expected)
            if trial == trials:
                break
            stop = threading.Event()
            worker = threading.Thread(target=_admin_changes, args=(target, trial, expected, stop), daemon=True)
            before = expected.acknowledged
            worker.start()
            time.sleep(rng.uniform(0.05, 1.5))
            server.process.kill()
            server.process.wait()
            stop.set()
            worker.join(30)
            assert not worker.is_alive()
            assert not expected.errors, expected.errors
            figures["acknowledged"] += expected.acknowledged - before
            figures["killed_in_flight"] += expected.pending is not None
            figures["trials"] += 1
        finally:
            server.close()
    return figures


def test_kill_9_during_put_activate_delete_loses_nothing(tmp_path: Path) -> None:
    trials = int(os.environ.get("ERRORTAXA_KILL_TRIALS", "5"))
    figures = kill_trials(tmp_path / "store", trials)
    assert figures["trials"] == trials
    assert figures["acknowledged"] > 0


def test_a_file_where_the_quarantine_folder_goes(template: Path, tmp_path: Path) -> None:
    store = copy_of(template, tmp_path)
    (store / "quarantine").write_text("not a folder")
    assert [f.path for f in check_store(store)[0]] == ["quarantine"]
    assert served(store)[0] == "3.0"
    (kept,) = (store / "quarantine").iterdir()
    assert kept.read_text() == "not a folder"
