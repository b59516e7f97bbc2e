"""The reliability suite (``make reliability``; marker ``reliability``, left out of ``make test``).

Every test adds its figures to ``figures`` (section -> name -> value); they are printed at the end
and written to ``$ERRORTAXA_RELIABILITY_OUT`` (default ``out/reliability.json``). Loops are bounded
in count and time; ``ERRORTAXA_RELIABILITY_SCALE`` (default 1) multiplies the counts. Every server
listens on 127.0.0.1 only."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import pytest

FIGURES: dict[str, dict[str, Any]] = {}
SCALE = float(os.environ.get("ERRORTAXA_RELIABILITY_SCALE", "1"))


def scaled(n: int) -> int:
    return max(1, round(n * SCALE))


@pytest.fixture(scope="session")
def figures() -> dict[str, dict[str, Any]]:
    return FIGURES


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    out = Path(os.environ.get("ERRORTAXA_RELIABILITY_OUT", "out/reliability.json"))
    doc = {"machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
                      f"Python {platform.python_version()}", "date": time.strftime("%Y-%m-%d"),
           "scale": SCALE, "figures": FIGURES}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    terminalreporter.section("reliability figures")
    for section, values in FIGURES.items():
        terminalreporter.write_line(f"{section}: " + ", ".join(f"{k} {v}" for k, v in values.items()))
    terminalreporter.write_line(f"(written to {out})")
