"""A Node client (@grpc/grpc-js + @grpc/proto-loader, tests/node) calls a real server: health through
the repository's grpc.health.v1 proto, Classify with the summary and records read as messages.

Needs node and npm (`.ci/run` installs Debian's nodejs and npm when absent); the packages come from
tests/node/package-lock.json (`npm ci`, run here when tests/node/node_modules is missing)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from errortaxa.client import Client
from errortaxa.server import ServerConfig, build_server

NODE_DIR = Path(__file__).resolve().parent / "node"
TOKEN = "a-read-token-for-node"


def _node_ready() -> str:
    """The node executable, with tests/node's packages installed; skip (saying why) where they cannot be had."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("needs node and npm (Debian: apt-get install nodejs npm; .ci/run does it)")
    if not (NODE_DIR / "node_modules" / "@grpc" / "grpc-js").is_dir():
        try:
            done = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, capture_output=True,
                                  text=True, timeout=600)
        except subprocess.TimeoutExpired:
            pytest.skip("npm ci in tests/node took over 10 minutes (no registry?)")
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            pytest.skip(f"npm ci in tests/node failed (no registry?): {tail[0]}")
    return node


def test_a_node_client_reads_the_structured_summary_and_records() -> None:
    node = _node_ready()
    running = build_server(ServerConfig(host="127.0.0.1", port=0, drain_seconds=0.0, grace_seconds=1.0,
                                        read_tokens={"lab": TOKEN}))
    try:
        done = subprocess.run([node, str(NODE_DIR / "classify.js"), f"127.0.0.1:{running.port}"],
                              capture_output=True, text=True, timeout=120,
                              env={**os.environ, "ERRORTAXA_TOKEN": TOKEN})
        assert done.returncode == 0, done.stderr
        seen = json.loads(done.stdout)
        with Client(f"127.0.0.1:{running.port}", token=TOKEN, retries=0) as client:
            expected = client.classify(target=[250, 65], labels=[[250], [65, 66]], pred=[248, 66], records=True,
                                       summary=True)
    finally:
        running.stop(0)
    assert seen["health"] == "SERVING" and seen["taxonomy"] == "peychev2023" and seen["axis"] == "category"
    assert seen["categories"] == ["overlapping_classes", "multi_label"] == expected.category
    assert seen["counts"] == {"overlapping_classes": 1, "multi_label": 1}
    assert seen["summary"] == expected.summary.data  # the Struct holds the JSON summary's content
    assert seen["summary"]["samples"] == 2
    assert seen["record"] == expected.records[0]
    assert seen["record_json"] == 0  # structured instead of the text
