"""Machine-readable results of ``rules validate`` and ``rules test``: JSON, and JUnit XML for CI
systems (the shape ``opa test --format`` and pytest write: testsuites > testsuite > testcase with
``failure`` / ``skipped`` / ``error`` children)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any, Literal

from errortaxa.engine import CaseResult, CompiledTaxonomy, Problem
from errortaxa.engine.language.problems import format_key_path

CaseStatus = Literal["passed", "failed", "skipped"]


def problem_dict(problem: Problem) -> dict[str, Any]:
    return {"file": problem.file, "line": problem.line, "key": format_key_path(problem.key_path),
            "severity": problem.severity, "message": problem.message}


def taxonomy_dict(taxonomy: CompiledTaxonomy) -> dict[str, Any]:
    return {"name": taxonomy.name, "version": taxonomy.version, "content_hash": taxonomy.content_hash}


def validation_json(file: str, taxonomy: CompiledTaxonomy, providers_missing: Sequence[str]) -> dict[str, Any]:
    """``rules validate --format json`` of a taxonomy that compiled (warnings in ``problems``; the
    feature providers its rules ask that are not installed here in ``providers_missing``)."""
    return {"ok": True, "file": file, "taxonomy": taxonomy_dict(taxonomy), "axes": list(taxonomy.axes),
            "rules": sum(len(axis.rules) for axis in taxonomy.axes.values()),
            "superclasses": len(taxonomy.superclass_names),
            "problems": [problem_dict(p) for p in taxonomy.warnings],
            "providers_missing": list(providers_missing)}


def invalid_json(file: str, problems: Sequence[Problem]) -> dict[str, Any]:
    """``rules validate`` / ``rules test --format json`` of a taxonomy that did not compile."""
    return {"ok": False, "file": file, "problems": [problem_dict(p) for p in problems]}


def case_status(result: CaseResult) -> CaseStatus:
    if result.passed:
        return "passed"
    return "skipped" if result.not_checked is not None else "failed"


def mismatch(result: CaseResult) -> str:
    """What a failed case got wrong: ``category: expected a, got b, ...``."""
    return ", ".join(f"{k}: expected {v}, got {result.got.get(k)}" for k, v in result.expected.items()
                     if result.got.get(k) != v)


def skip_reason(result: CaseResult) -> str:
    return f"not checkable here, a rule it reaches was not evaluated: {result.not_checked}"


def counts(results: Sequence[CaseResult]) -> dict[str, int]:
    """Cases per status (passed, failed, skipped)."""
    out = {"passed": 0, "failed": 0, "skipped": 0}
    for r in results:
        out[case_status(r)] += 1
    return out


def cases_json(file: str, taxonomy: CompiledTaxonomy, results: Sequence[CaseResult]) -> dict[str, Any]:
    """``rules test --format json``: every case with its status, and the counts."""
    cases = []
    for r in results:
        status = case_status(r)
        cases.append({"name": r.name, "file": r.file, "line": r.line, "status": status, "expected": r.expected,
                      "got": r.got, "message": mismatch(r) if status == "failed" else
                      skip_reason(r) if status == "skipped" else None})
    return {"ok": not any(c["status"] == "failed" for c in cases), "file": file,
            "taxonomy": taxonomy_dict(taxonomy), "cases": cases, **counts(results)}


def _suites(name: str, tests: int, failures: int, skipped: int, errors: int, seconds: float,
            file: str) -> tuple[ET.Element, ET.Element]:
    totals = {"tests": str(tests), "failures": str(failures), "errors": str(errors), "skipped": str(skipped),
              "time": f"{seconds:.3f}"}
    root = ET.Element("testsuites", {"name": "errortaxa rules test", **totals})
    suite = ET.SubElement(root, "testsuite", {
        "name": name, **totals, "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "file": file})
    return root, suite


def _xml(root: ET.Element) -> str:
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def cases_junit(file: str, taxonomy: CompiledTaxonomy, results: Sequence[CaseResult], seconds: float) -> str:
    """``rules test --format junit``: one testsuite per taxonomy, one testcase per case."""
    n = counts(results)
    classname = f"{taxonomy.name}@{taxonomy.version}"
    root, suite = _suites(classname, len(results), n["failed"], n["skipped"], 0, seconds, file)
    for r in results:
        attrs = {"name": r.name, "classname": classname, "file": r.file}
        if r.line:
            attrs["line"] = str(r.line)
        case = ET.SubElement(suite, "testcase", attrs)
        status = case_status(r)
        if status == "failed":
            where = f"{r.file}:{r.line}" if r.line else r.file
            failure = ET.SubElement(case, "failure", {"message": mismatch(r), "type": "unexpected category"})
            failure.text = f"{where}: expected {r.expected}, got {r.got}"
        elif status == "skipped":
            ET.SubElement(case, "skipped", {"message": skip_reason(r)})
    return _xml(root)


def invalid_junit(file: str, problems: Sequence[Problem], seconds: float) -> str:
    """A taxonomy that did not compile: one testcase ``compile`` with an ``error``."""
    errors = [p for p in problems if p.severity == "error"]
    root, suite = _suites(file, 1, 0, 0, 1, seconds, file)
    case = ET.SubElement(suite, "testcase", {"name": "compile", "classname": file, "file": file})
    error = ET.SubElement(case, "error", {"message": f"{len(errors)} error(s) in taxonomy", "type": "TaxonomyError"})
    error.text = "\n".join(str(p) for p in problems)
    return _xml(root)
