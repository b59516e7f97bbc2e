"""scripts/check_imports.py finds cycles and upward imports however they are written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "check_imports.py"


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def _check(root: Path) -> tuple[int, str]:
    done = subprocess.run([sys.executable, str(SCRIPT), str(root)], capture_output=True, text=True)
    return done.returncode, done.stdout


def test_a_clean_tree_passes(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "engine/errortaxa/engine/__init__.py": "",
        "engine/errortaxa/engine/a.py": "from errortaxa.engine import b\n",
        "engine/errortaxa/engine/b.py": "import numpy\n",
        "apps/errortaxa/cli/__init__.py": "from errortaxa.engine.a import x\nfrom errortaxa.study import run\n",
        "apps/errortaxa/study/__init__.py": "from errortaxa.engine import b\n",
    })
    code, out = _check(root)
    assert code == 0, out


def test_cycles_inside_functions_and_type_checking_count(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "engine/errortaxa/engine/__init__.py": "",
        "engine/errortaxa/engine/a.py": "def f():\n    from .b import g\n",
        "engine/errortaxa/engine/b.py": (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from errortaxa.engine.a import f\n"
        ),
    })
    code, out = _check(root)
    assert code == 1
    assert "import cycle: errortaxa.engine.a <-> errortaxa.engine.b" in out


def test_upward_imports_are_named_with_file_and_line(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "engine/errortaxa/engine/__init__.py": "",
        "engine/errortaxa/engine/a.py": "import os\nimport errortaxa.cli.commands\n",
        "apps/errortaxa/cli/__init__.py": "",
        "apps/errortaxa/cli/commands.py": "",
        "apps/errortaxa/study/__init__.py": "from errortaxa.cli import commands\n",
        "server/errortaxa/server/__init__.py": "from errortaxa.client import Client\nfrom errortaxa.v1 import codec\n",
        "clients/python/errortaxa/client/__init__.py": "",
        "clients/python/errortaxa/v1/__init__.py": "",
        "clients/python/errortaxa/v1/codec.py": "",
    })
    code, out = _check(root)
    assert code == 1
    assert "engine/errortaxa/engine/a.py:2: upward import of errortaxa.cli.commands" in out
    assert "apps/errortaxa/study/__init__.py:1: upward import of errortaxa.cli.commands" in out
    assert "server/errortaxa/server/__init__.py:1: upward import of errortaxa.client" in out
    assert "codec" not in out  # the server may use the stubs and the wire codec
