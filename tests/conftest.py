"""Shared fixtures: one small local Ray instance for every Ray test of the session; one real
PostgreSQL for the session (tests/pg.py), a fresh database per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pg import PostgresServer, unavailable


@pytest.fixture(scope="session")
def ray_local() -> Iterator[Any]:
    """A local Ray instance (2 CPUs, no dashboard, usage statistics off), shut down after the session.
    Code under test that calls ``init_ray("local")`` finds it running and leaves it up."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The public data directory of the project (``../shared/data`` beside the checkout, or the
    first directory of ``$ERRORTAXA_DATA_DIR``); tests that need it are skipped without it. The
    library itself never looks there: tests pass this path explicitly."""
    env = [p for p in os.environ.get("ERRORTAXA_DATA_DIR", "").split(os.pathsep) if p]
    path = Path(env[0]) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"
    if not (path / "imagenet2012_multilabel_validation.csv").is_file():
        pytest.skip(f"the shared data directory is absent ({path})")
    return path


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL cluster for the session (skipped, with the reason, where it cannot be had)."""
    reason = unavailable()
    if reason is not None:
        pytest.skip(f"PostgreSQL: {reason}")
    server = PostgresServer()
    yield server
    server.close()


@pytest.fixture()
def pg_url(postgres: PostgresServer) -> str:
    """The URL of a new, empty database of the session's PostgreSQL."""
    return postgres.new_database()
