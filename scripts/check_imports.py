"""Fail on any import cycle or upward import between ErrorTaxa's layers.

Every import statement counts: top-level, inside functions, under ``TYPE_CHECKING``.  Generated
``*_pb2`` modules are left out.  Layers, lowest first (a module may import its own layer and the
layers listed as allowed for it):

    engine        errortaxa.engine                          nothing above it
    providers     errortaxa.providers.*                     engine
    applications  errortaxa.study, errortaxa.server         engine (the server also errortaxa.v1: stubs, codec)
                  errortaxa.explore                         engine, errortaxa.study
                  errortaxa.cli                             engine, the other applications, the client
    client        errortaxa.client                          errortaxa.v1
                  errortaxa.v1                              nothing (stubs and the wire codec)

Applications find providers through the ``errortaxa.providers`` entry points, never by import.

    python scripts/check_imports.py [ROOT]   # exit 1 with one line per problem
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE_ROOTS = ["engine", "providers", "apps", "server", "clients/python"]

# module prefix -> (layer, prefixes it may import besides its own layer)
LAYERS: list[tuple[str, str, tuple[str, ...]]] = [
    ("errortaxa.engine", "engine", ()),
    ("errortaxa.providers", "providers", ("errortaxa.engine",)),
    ("errortaxa.cli", "applications", ("errortaxa.engine", "errortaxa.client", "errortaxa.v1")),
    ("errortaxa.study", "applications", ("errortaxa.engine",)),
    ("errortaxa.server", "applications", ("errortaxa.engine", "errortaxa.v1")),
    ("errortaxa.explore", "applications", ("errortaxa.engine",)),
    ("errortaxa.client", "client", ("errortaxa.v1",)),
    ("errortaxa.v1", "client", ()),
]
# within a layer: the CLI wires the other applications and is imported by none; the server uses the
# client's generated stubs and codec (errortaxa.v1) only; generated code and codec need no client
FORBIDDEN = {
    ("errortaxa.study", "errortaxa.cli"), ("errortaxa.server", "errortaxa.cli"),
    ("errortaxa.server", "errortaxa.study"), ("errortaxa.study", "errortaxa.server"),
    ("errortaxa.server", "errortaxa.client"), ("errortaxa.v1", "errortaxa.client"),
    ("errortaxa.explore", "errortaxa.cli"), ("errortaxa.explore", "errortaxa.server"),
    ("errortaxa.study", "errortaxa.explore"), ("errortaxa.server", "errortaxa.explore"),
}


def generated(module: str) -> bool:
    return module.rsplit(".", 1)[-1].endswith(("_pb2", "_pb2_grpc"))


def project_modules(root_dir: Path) -> dict[str, Path]:
    """Every project module (``a.b.c`` -> file; packages by their ``__init__.py``)."""
    found: dict[str, Path] = {}
    for root in SOURCE_ROOTS:
        base = root_dir / root
        for path in base.rglob("*.py"):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            if parts and parts[0] == "errortaxa" and not {"__pycache__", "build"} & set(parts):
                found[".".join(parts)] = path
    return found


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> Iterator[tuple[str, int]]:
    """(imported project module, line) for every import statement in the file."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield from _resolve(alias.name, modules, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in modules:
                    yield sub, node.lineno
                else:
                    yield from _resolve(base, modules, node.lineno)


def _resolve(name: str, modules: dict[str, Path], line: int) -> Iterator[tuple[str, int]]:
    """The longest project module that ``name`` names (``errortaxa.x.y`` -> itself or a parent)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            yield candidate, line
            return
        parts.pop()


def layer_of(module: str) -> tuple[str, str, tuple[str, ...]] | None:
    for prefix, layer, allowed in LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            return prefix, layer, allowed
    return None


def upward(src: str, dst: str) -> str | None:
    """Why ``src`` may not import ``dst`` (None if it may)."""
    a, b = layer_of(src), layer_of(dst)
    if a is None or b is None:
        return None
    (pa, la, allowed), (pb, lb, _) = a, b
    if (pa, pb) in FORBIDDEN:
        return f"{pa} may not import {pb}"
    if la == lb or pb == pa or any(dst == p or dst.startswith(p + ".") for p in allowed):
        return None
    return f"layer '{la}' ({pa}) may not import layer '{lb}' ({pb})"


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module, or a self-import (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def main(argv: list[str]) -> int:
    root_dir = Path(argv[0]).resolve() if argv else ROOT
    modules = project_modules(root_dir)
    graph: dict[str, set[str]] = {}
    problems: list[str] = []
    for module, path in sorted(modules.items()):
        if generated(module):
            continue
        for dst, line in sorted(set(imports_of(module, path, modules))):
            if generated(dst) or dst == module:
                continue
            graph.setdefault(module, set()).add(dst)
            why = upward(module, dst)
            if why:
                problems.append(f"{path.relative_to(root_dir)}:{line}: upward import of {dst}: {why}")
    for component in cycles(graph):
        problems.append("import cycle: " + " <-> ".join(component))
    for problem in problems:
        print(problem)
    print(f"check_imports: {len(modules)} modules, {sum(map(len, graph.values()))} imports, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
