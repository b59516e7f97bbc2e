#!/usr/bin/env python3
"""Generate the committed Python protobuf / gRPC code from protos/errortaxa/v1/*.proto.

    python scripts/gen_protos.py          # regenerate clients/python/errortaxa/v1/*_pb2*.py(i)
    python scripts/gen_protos.py --check  # regenerate into a temp dir, fail if the committed files differ
    python scripts/gen_protos.py --requirement  # the pinned generator, for pip

Run it with the Python of a codegen environment of its own (`make codegen`: .venv-codegen), which
holds the pinned generator only. The generator is old on purpose: grpcio-tools 1.62.3 bundles protoc
25.1, whose code (protobuf gencode 4.25.1) loads on every protobuf runtime from 4.25.1 to 7.x, and
its *_pb2_grpc.py sets no grpcio floor; newer generators write code that refuses older runtimes.
The client's floors in clients/python/pyproject.toml follow from this pin. Only the *_pb2*.py(i)
files are generated; errortaxa/v1/codec.py and __init__.py are written by hand.
"""

from __future__ import annotations

import argparse
import filecmp
import importlib.metadata
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
OUT_ROOT = ROOT / "clients" / "python"
PACKAGE = Path("errortaxa") / "v1"
GENERATOR = "grpcio-tools"
GENERATOR_VERSION = "1.62.3"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def generate(out_root: Path) -> list[Path]:
    """Run protoc on every .proto file under protos/errortaxa/v1; return the generated files."""
    from grpc_tools import protoc  # the pinned generator

    protos = sorted((PROTO_ROOT / PACKAGE).glob("*.proto"))
    if not protos:
        raise SystemExit(f"no .proto files under {PROTO_ROOT / PACKAGE}")
    include = Path(protoc.__file__).parent / "_proto"  # google/protobuf/*.proto
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out_root}",
        f"--pyi_out={out_root}",
        f"--grpc_python_out={out_root}",
        *(str(p.relative_to(PROTO_ROOT)) for p in protos),
    ]
    (out_root / PACKAGE).mkdir(parents=True, exist_ok=True)
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    return generated_files(out_root)


def generated_files(out_root: Path) -> list[Path]:
    folder = out_root / PACKAGE
    return sorted(p for p in folder.iterdir() if p.name.endswith(GENERATED_SUFFIXES))


def check_generator() -> None:
    try:
        version = importlib.metadata.version(GENERATOR)
    except importlib.metadata.PackageNotFoundError:
        raise SystemExit(f"{GENERATOR}=={GENERATOR_VERSION} is needed: make codegen, then run this script with "
                         ".venv-codegen/bin/python") from None
    if version != GENERATOR_VERSION:
        raise SystemExit(f"{GENERATOR} {version} is installed; the committed code needs {GENERATOR_VERSION}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="fail if the committed generated code is stale")
    parser.add_argument("--requirement", action="store_true", help="print the pinned generator and exit")
    args = parser.parse_args(argv)
    if args.requirement:
        print(f"{GENERATOR}=={GENERATOR_VERSION}")
        return 0
    check_generator()
    if not args.check:
        for stale in generated_files(OUT_ROOT):
            stale.unlink()
        for path in generate(OUT_ROOT):
            print(path.relative_to(ROOT))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh = {p.name: p for p in generate(Path(tmp))}
        committed = {p.name: p for p in generated_files(OUT_ROOT)}
        problems = [f"missing: {name}" for name in sorted(fresh.keys() - committed.keys())]
        problems += [f"no .proto makes: {name}" for name in sorted(committed.keys() - fresh.keys())]
        problems += [
            f"stale: {name}" for name in sorted(fresh.keys() & committed.keys())
            if not filecmp.cmp(fresh[name], committed[name], shallow=False)
        ]
    if problems:
        print(f"generated code in {OUT_ROOT.relative_to(ROOT) / PACKAGE} is out of date "
              "(run: python scripts/gen_protos.py):", file=sys.stderr)
        for line in problems:
            print(f"  {line}", file=sys.stderr)
        return 1
    print(f"generated code is up to date ({len(fresh)} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
