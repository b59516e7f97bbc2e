"""The docs name only what exists: the Python names (``errortaxa.…`` paths, the engine's classes and
their attributes, the imports of the examples), the proto names and the tests they cite."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import errortaxa.engine
import errortaxa.engine.errors
import errortaxa.engine.inputs
import errortaxa.v1.service_pb2  # the proto descriptors
import pytest
from google.protobuf import descriptor_pool

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SOURCES = ("engine", "apps", "server", "providers", "clients/python")


def spans() -> list[tuple[str, str]]:
    """(file:line, text) of every inline code span and code-block line of the docs."""
    out = []
    for doc in DOCS:
        block = False
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            where = f"{doc.name}:{number}"
            if line.lstrip().startswith("```"):
                block = not block
                continue
            out.extend((where, text) for text in ([line] if block else re.findall(r"`([^`\n]+)`", line)))
    return out


def _resolves(name: str) -> bool:
    """A module path with attributes (``errortaxa.engine.errors.ErrorTaxaError``), a proto symbol
    (``errortaxa.v1.ErrorTaxa.Classify``, the option ``errortaxa.v1.rpc``) or a logger the source names."""
    parts = name.split(".")
    for k in range(len(parts), 1, -1):
        try:
            obj = importlib.import_module(".".join(parts[:k]))
        except ImportError:
            continue
        for part in parts[k:]:
            if not hasattr(obj, part):
                break
            obj = getattr(obj, part)
        else:
            return True
    pool = descriptor_pool.Default()
    importlib.import_module("errortaxa.v1.options_pb2")  # the method options' extension
    for find in (pool.FindMessageTypeByName, pool.FindServiceByName, pool.FindMethodByName, pool.FindEnumTypeByName,
                 pool.FindExtensionByName):
        try:
            find(name)
            return True
        except KeyError:
            pass
    quoted = f'"{name}"'
    return any(quoted in file.read_text(encoding="utf-8") for top in SOURCES for file in (ROOT / top).rglob("*.py"))


def test_dotted_errortaxa_names_exist() -> None:
    names = {(where, name) for where, text in spans() for name in re.findall(r"\berrortaxa(?:\.\w+)+", text)}
    assert len(names) > 20
    missing = sorted(f"{where}: {name}" for where, name in names if not _resolves(name))
    assert not missing, missing


def test_the_engines_classes_have_the_attributes_the_docs_name() -> None:
    """``CompiledTaxonomy.evaluate`` is gone, so no doc may name it; a class that is also a proto
    message (``RuleTrace.json``) is the message's."""
    pool = descriptor_pool.Default()
    classes = {name: getattr(module, name) for module in (errortaxa.engine, errortaxa.engine.errors,
                                                          errortaxa.engine.inputs)
               for name in dir(module) if isinstance(getattr(module, name), type)}
    named = [(where, cls, attr) for where, text in spans() for cls, attr in re.findall(r"\b([A-Z]\w+)\.(\w+)\b", text)
             if cls in classes]
    assert any(cls == "SampleBatch" for _, cls, _ in named)

    def proto(name: str) -> bool:
        try:
            pool.FindMessageTypeByName(f"errortaxa.v1.{name}")
            return True
        except KeyError:
            return False

    missing = sorted(f"{where}: {cls}.{attr}" for where, cls, attr in named
                     if not hasattr(classes[cls], attr) and not proto(cls)
                     and attr not in getattr(classes[cls], "__dataclass_fields__", {}))
    assert not missing, missing


def test_the_imports_of_the_examples_work() -> None:
    text = "\n".join(doc.read_text(encoding="utf-8") for doc in DOCS)
    imports = re.findall(r"^\s*from (errortaxa[\w.]*) import \(?([\w, ]+?)\)?\s*(?:#.*)?$", text, re.M)
    imports += re.findall(r"^from (errortaxa[\w.]*) import \(\n((?:\s+[\w, ]+(?:#.*)?\n)+)\)", text, re.M)
    assert len(imports) >= 4
    for module, names in imports:
        loaded = importlib.import_module(module)
        for name in re.sub(r"#.*", "", names).replace("\n", ",").split(","):
            assert not name.strip() or hasattr(loaded, name.strip()), f"from {module} import {name.strip()}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_the_tests_the_docs_cite_exist(doc: Path) -> None:
    for file, test in re.findall(r"(tests/[\w/]+\.py)::(\w+)", doc.read_text(encoding="utf-8")):
        assert re.search(rf"^(async )?def {test}\b", (ROOT / file).read_text(encoding="utf-8"), re.M), f"{file}::{test}"
