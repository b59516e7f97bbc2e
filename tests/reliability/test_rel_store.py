"""kill -9 during admin changes, and randomly damaged stores (real servers on 127.0.0.1)."""

from __future__ import annotations

import random
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import scaled
from errortaxa.client import Client
from errortaxa.server.app import check_store
from test_service import address, small_batch, start, variant_yaml
from test_service_store import VERSIONS, kill_trials

pytestmark = pytest.mark.reliability


def test_kill_9_during_admin_changes(tmp_path: Path, figures: dict[str, dict[str, Any]]) -> None:
    started = time.monotonic()
    result = kill_trials(tmp_path / "store", scaled(30), seed=7)
    figures["kill -9"] = {**result, "acknowledged changes lost": 0, "executed changes without a record": 0,
                          "seconds": round(time.monotonic() - started)}  # kill_trials asserts both are 0


def _damage(rng: random.Random, store: Path) -> str:
    """One random damage to one random file of the store; what was done."""
    files = sorted(p for p in store.rglob("*") if p.is_file() and "quarantine" not in p.parts)
    path = rng.choice(files)
    data = path.read_bytes()
    kind = rng.choice(["truncate", "empty", "flip bytes", "garbage line", "delete", "stray file", "drop a key"])
    if kind == "truncate":
        path.write_bytes(data[: rng.randrange(max(len(data), 1))])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "flip bytes":
        buf = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            if buf:
                buf[rng.randrange(len(buf))] = rng.randrange(256)
        path.write_bytes(bytes(buf))
    elif kind == "garbage line":
        path.write_bytes(data + bytes(rng.randrange(256) for _ in range(rng.randint(1, 40))))
    elif kind == "delete":
        path.unlink()
    elif kind == "stray file":
        folder = rng.choice([store, store / VERSIONS])
        (folder / f"stray{rng.randrange(1000)}.json").write_text('{"name": "x"}')
    else:
        path.write_bytes(data.replace(b'"created_by"', b'"created_byX"', 1))
    return kind


def test_randomly_damaged_stores(tmp_path: Path, figures: dict[str, dict[str, Any]]) -> None:
    """Each trial: 1-3 random damages; the check names them without changing anything; the server
    starts, serves one of the stored or built-in versions with that version's result, and leaves a
    store that checks clean."""
    template = tmp_path / "template"
    running = start(store=template)
    expected: dict[str, list[str | None]] = {}
    with Client(address(running), retries=0) as c:
        expected["1.0"] = list(c.classify(**small_batch()).category)
        for version, drop in (("2.0", True), ("3.0", False), ("4.0", True)):
            c.put_taxonomy(variant_yaml(version, drop_husky_pair=drop), activate=version != "4.0")
            expected[version] = list(c.classify(**small_batch(), taxonomy=f"peychev2023@{version}").category)
    running.stop(0)
    rng = random.Random(12)
    kinds: Counter[str] = Counter()
    outcome: Counter[str] = Counter()
    trials = scaled(40)
    for trial in range(trials):
        store = tmp_path / f"s{trial}"
        shutil.copytree(template, store)
        for _ in range(rng.randint(1, 3)):
            kinds[_damage(rng, store)] += 1
        findings, _ = check_store(store)
        outcome["findings"] += len(findings)
        try:
            server = start(store=store)
        except Exception as exc:  # the server did not start: a failure of this suite
            outcome["did not start"] += 1
            raise AssertionError(f"trial {trial}: {exc}") from exc
        try:
            with Client(address(server), retries=0) as c:
                result = c.classify(**small_batch())
                outcome["served " + result.version] += 1
                assert list(result.category) == expected[result.version]
        finally:
            server.stop(0)
        assert check_store(store)[0] == [], f"trial {trial}: not clean after start-up"
        shutil.rmtree(store)
    figures["damaged stores"] = {"trials": trials, "damages": sum(kinds.values()), "findings": outcome["findings"],
                                 "did not start": outcome["did not start"], "wrong results": 0,
                                 "served": {k[7:]: v for k, v in sorted(outcome.items()) if k.startswith("served")},
                                 "kinds": dict(sorted(kinds.items()))}
