"""Packaging: the lean install, the client distribution on its own and on older grpcio / protobuf,
the distributions' metadata, and what the server may import of the client.

The ``install`` tests build fresh virtual environments with pip from this machine's configured
index (about 15 s each with a warm pip cache). The ``matrix`` tests (``make test-matrix``, not in
the default run) install the client with the oldest supported and other grpcio / protobuf
releases, about 15 s per environment.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parent.parent
CLIENT = ROOT / "clients" / "python"
_SKIP = {".git", ".venv", ".venv-codegen", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache",
         ".hypothesis", "build", "dist", "out"}


def _new_venv(path: Path) -> Path:
    venv.EnvBuilder(with_pip=True).create(path)
    return path / "bin" / "python"


def _pip(python: Path, *args: str, cwd: Path | None = None) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    result = subprocess.run([str(python), "-m", "pip", "install", "-q", *args], capture_output=True, text=True,
                            cwd=cwd, env=env, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``command`` outside this environment (setuptools warns when bytecode writing is off)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE")}
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def _copy_checkout(dest: Path) -> Path:
    """The checkout without virtual environments, caches or build outputs (as a clean clone)."""
    shutil.copytree(ROOT, dest, ignore=lambda _, names: [n for n in names if n in _SKIP or n.endswith(".egg-info")])
    return dest


@pytest.mark.install
def test_lean_install_classifies_and_names_missing_extras(tmp_path: Path) -> None:
    source = _copy_checkout(tmp_path / "src")
    python = _new_venv(tmp_path / "venv")
    _pip(python, str(source))
    bin_dir = python.parent
    freeze = _run([str(python), "-m", "pip", "freeze"], tmp_path).stdout.lower()
    for heavy in ("grpcio", "protobuf", "pandas", "torch", "errortaxa-client", "scipy", "pyarrow"):
        assert f"{heavy}==" not in freeze, freeze

    done = _run([str(bin_dir / "errortaxa"), "classify", "examples/predictions.jsonl", "--summary",
                 str(tmp_path / "summary.json")], source)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == len((source / "examples" / "predictions.jsonl").read_text().splitlines())

    for argv, extra in ((["serve"], "serve"), (["serve", "--port", "0"], "serve"),
                        (["classify", "examples/predictions.jsonl", "--server", "localhost:1"], "remote"),
                        (["study", "examples/predictions.jsonl", "--out", str(tmp_path / "o")], "study"),
                        (["mcnemar", "a.jsonl", "b.jsonl"], "study"),
                        (["explore", "examples/predictions.jsonl", "--port", "0"], "explore")):
        ran = _run([str(bin_dir / "errortaxa"), *argv], source)
        command = "classify --server" if "--server" in argv else argv[0]
        assert (ran.returncode, ran.stdout) == (2, ""), ran
        line = f"errortaxa: error: '{command}' needs the {extra} extra: pip install 'errortaxa[{extra}]'\n"
        assert ran.stderr == line
    helped = _run([str(bin_dir / "errortaxa"), "--help"], source)
    for command in ("serve", "study", "mcnemar", "diff", "oov", "explore"):
        assert command in helped.stdout
    probe = ("import sys, contextlib, io; from errortaxa.cli import main\n"
             "with contextlib.redirect_stdout(io.StringIO()): main(['classify', 'examples/predictions.jsonl'])\n"
             "print(sorted({m.split('.')[0] for m in sys.modules} & {'pandas', 'grpc', 'google', 'torch', 'scipy'}))")
    assert _run([str(python), "-c", probe], source).stdout.strip() == "[]"

    # installed, run from elsewhere: the default taxonomy is the checkout's, its shipped list included
    from errortaxa.engine import default_compiled

    checkout = default_compiled()
    hashed = _run([str(python), "-c", "from errortaxa.engine import default_compiled as d; t = d(); "
                   "print(t.content_hash, sorted(n for n, i in t.sample_list_info().items() if i['found']))"],
                  tmp_path).stdout.strip().split(maxsplit=1)
    found = sorted(n for n, i in checkout.sample_list_info().items() if i["found"])
    assert hashed == [checkout.content_hash, repr(found)] and found


@pytest.fixture(scope="module")
def server_address() -> Iterator[str]:
    pytest.importorskip("grpc", reason="the serve extra is not installed")
    from errortaxa.server import ServerConfig, build_server

    running = build_server(ServerConfig(host="127.0.0.1", port=0, drain_seconds=0.0, grace_seconds=1.0))
    try:
        yield running.address
    finally:
        running.stop()


@pytest.mark.install
def test_client_distribution_installs_and_works_alone(tmp_path: Path, server_address: str) -> None:
    python = _new_venv(tmp_path / "venv")
    _pip(python, str(CLIENT))
    freeze = _run([str(python), "-m", "pip", "freeze"], tmp_path).stdout.lower()
    assert "pydantic" not in freeze and "errortaxa==" not in freeze, freeze
    ran = _run([str(python), str(ROOT / "tests" / "client_smoke.py"), server_address], tmp_path)
    assert ran.returncode == 0 and ran.stdout.endswith("ok\n"), ran.stdout + ran.stderr


#: (grpcio, protobuf) releases the client is tested with: the floors of clients/python/pyproject.toml,
#: the last of protobuf 5 and 6, and the newest.
MATRIX = [("1.62.3", "4.25.1"), ("1.62.3", "5.26.1"), ("1.66.2", "5.29.5"), ("1.70.0", "6.33.6"),
          ("1.85.3", "7.36.2")]


@pytest.mark.matrix
@pytest.mark.parametrize(("grpcio", "protobuf"), MATRIX)
def test_client_works_with_older_grpcio_and_protobuf(tmp_path: Path, server_address: str, grpcio: str,
                                                     protobuf: str) -> None:
    python = _new_venv(tmp_path / "venv")
    _pip(python, str(CLIENT), f"grpcio=={grpcio}", f"protobuf=={protobuf}")
    ran = _run([str(python), str(ROOT / "tests" / "client_smoke.py"), server_address], tmp_path)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert ran.stdout.startswith(f"grpcio {grpcio} protobuf {protobuf}\n")


def test_matrix_starts_at_the_declared_floors() -> None:
    project = tomllib.loads((CLIENT / "pyproject.toml").read_text())["project"]
    floors = dict(dep.split(">=") for dep in project["dependencies"] if dep.startswith(("grpcio", "protobuf")))
    assert (floors["grpcio"], floors["protobuf"]) == MATRIX[0]


def test_server_imports_only_the_stubs_and_codec_of_the_client() -> None:
    allowed = {"errortaxa.v1", "errortaxa.v1.codec"}
    for path in sorted((ROOT / "server" / "errortaxa" / "server").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                if name.startswith("errortaxa.client") or (name.startswith("errortaxa.v1") and name not in allowed):
                    pytest.fail(f"{path.name} imports {name}")
                if name == "errortaxa.v1" and isinstance(node, ast.ImportFrom):
                    assert all(a.name.endswith(("_pb2", "_pb2_grpc")) for a in node.names), path.name


def test_the_codec_is_not_generated_code() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import gen_protos
    finally:
        sys.path.pop(0)
    generated = {p.name for p in gen_protos.generated_files(CLIENT)}
    assert "codec.py" not in generated and "__init__.py" not in generated
    assert {"service_pb2.py", "service_pb2_grpc.py", "service_pb2.pyi"} <= generated


@pytest.mark.parametrize("folder", [ROOT, CLIENT], ids=["errortaxa", "errortaxa-client"])
def test_distribution_metadata(folder: Path) -> None:
    project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"
    assert "Apache License" in (folder / "LICENSE").read_text()
    assert all((folder / f).is_file() for f in project["license-files"])
    assert (folder / project["readme"]).is_file() and project["classifiers"] and project["urls"]
    assert not any("License ::" in c for c in project["classifiers"])  # SPDX expression instead (PEP 639)


@pytest.mark.install
@pytest.mark.parametrize("folder", [ROOT, CLIENT], ids=["errortaxa", "errortaxa-client"])
def test_distributions_build_without_warnings_and_pass_twine(tmp_path: Path, folder: Path) -> None:
    pytest.importorskip("build", reason="build (dev extra) is not installed")
    pytest.importorskip("twine", reason="twine (dev extra) is not installed")
    source = _copy_checkout(tmp_path / "src") if folder == ROOT else shutil.copytree(folder, tmp_path / "src")
    built = _run([sys.executable, "-m", "build", "--outdir", str(tmp_path / "dist"), str(source)], tmp_path)
    assert built.returncode == 0, built.stdout + built.stderr
    output = built.stdout + built.stderr
    assert "warning" not in output.lower(), output
    files = sorted(str(p) for p in (tmp_path / "dist").iterdir())
    assert len(files) == 2  # the sdist and the wheel
    checked = _run([sys.executable, "-m", "twine", "check", "--strict", *files], tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
