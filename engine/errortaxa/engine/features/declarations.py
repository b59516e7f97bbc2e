"""What a feature provider accepts, declared once as plain data: its tests (each with a pydantic
model of its parameters and a description) and the per-request inputs it takes (typed columns).

The compiler checks every ``feature:`` of a taxonomy against the declarations it is given
(:func:`check_feature`); the server checks a request's provider inputs against them and answers
them as JSON Schema (ListProviders); ``errortaxa rules schema`` lists the tests. The declarations
of the installed providers come from their factories (``errortaxa.engine.providers.registry``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

Dtype = Literal["float32", "int32", "bytes", "string"]
DTYPES: tuple[Dtype, ...] = ("float32", "int32", "bytes", "string")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_JSON_ITEM: dict[str, dict[str, Any]] = {
    "float32": {"type": "number"},
    "int32": {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1},
    "bytes": {"type": "string", "contentEncoding": "base64"},
    "string": {"type": "string"},
}


class NoParams(BaseModel):
    """The parameters of a test that takes none."""

    model_config = {"extra": "forbid"}


@dataclass(frozen=True)
class FeatureTestDecl:
    """A test a provider answers (``feature: {provider: P, test: NAME, params: {...}}``): its
    parameters are validated by ``params`` (a pydantic model; unknown keys must be refused)."""

    name: str
    description: str
    params: type[BaseModel] = NoParams

    def params_schema(self) -> dict[str, Any]:
        """The JSON Schema of the test's ``params``."""
        return self.params.model_json_schema()


@dataclass(frozen=True)
class InputColumn:
    """One per-request input of a provider: a column of ``dtype`` named ``name`` with one entry
    per sample. ``width`` None: one value per sample ([N]); 0: a row of any width per sample, the
    same for every sample of a request ([N, W]); k > 0: a row of exactly k values ([N, k]).
    ``finite``: float values must be finite; ``class_ids``: int values are class ids of the
    taxonomy's vocabulary, negative ones padding."""

    name: str
    dtype: Dtype
    description: str
    width: int | None = None
    finite: bool = False
    class_ids: bool = False

    @property
    def shape(self) -> str:
        """The column's shape in words: ``[N]``, ``[N, W]`` or ``[N, k]``."""
        return "[N]" if self.width is None else "[N, W]" if self.width == 0 else f"[N, {self.width}]"

    def json_schema(self) -> dict[str, Any]:
        """The column as JSON Schema: an array of N entries (rows when it has a width)."""
        item: dict[str, Any] = dict(_JSON_ITEM[self.dtype])
        if self.width is not None:
            row: dict[str, Any] = {"type": "array", "items": item}
            if self.width:
                row["minItems"] = row["maxItems"] = self.width
            item = row
        return {"type": "array", "items": item, "description": self.description,
                "x-errortaxa-dtype": self.dtype, "x-errortaxa-shape": self.shape}


@dataclass(frozen=True)
class ProviderDeclaration:
    """Everything a provider accepts: ``name`` (as rules name it), a one-line ``summary``, its
    ``tests`` and the per-request ``inputs`` it reads (none: it takes none)."""

    name: str
    summary: str = ""
    tests: tuple[FeatureTestDecl, ...] = ()
    inputs: tuple[InputColumn, ...] = ()

    def test(self, name: str) -> FeatureTestDecl | None:
        return next((t for t in self.tests if t.name == name), None)

    def input(self, name: str) -> InputColumn | None:
        return next((c for c in self.inputs if c.name == name), None)

    def problems(self) -> list[str]:
        """What is wrong with the declaration itself (empty: it is well-formed)."""
        out = [] if _NAME.match(self.name) else [f"provider name {self.name!r} is not a lower-case identifier"]
        for kind, names in (("test", [t.name for t in self.tests]), ("input", [c.name for c in self.inputs])):
            out += [f"{kind} name {n!r} is not a lower-case identifier" for n in names if not _NAME.match(n)]
            out += [f"{kind} {n!r} is declared twice" for n in sorted({n for n in names if names.count(n) > 1})]
        for t in self.tests:
            if not (isinstance(t.params, type) and issubclass(t.params, BaseModel)):
                out.append(f"test {t.name!r}: params is not a pydantic model")
            elif t.params.model_config.get("extra") != "forbid":
                out.append(f"test {t.name!r}: params model {t.params.__name__} must refuse unknown keys "
                           "(extra='forbid')")
            if not t.description:
                out.append(f"test {t.name!r} has no description")
        for c in self.inputs:
            if c.dtype not in DTYPES:
                out.append(f"input {c.name!r}: dtype {c.dtype!r} is not one of {', '.join(DTYPES)}")
            if c.width is not None and (c.width < 0 or c.dtype in ("bytes", "string")):
                out.append(f"input {c.name!r}: a {c.dtype} column has one value per sample (width None)")
            if (c.finite and c.dtype != "float32") or (c.class_ids and c.dtype != "int32"):
                out.append(f"input {c.name!r}: finite is for float32, class_ids for int32 columns")
            if not c.description:
                out.append(f"input {c.name!r} has no description")
        return out

    def json_schema(self) -> dict[str, Any]:
        """The provider as JSON Schema: ``tests`` (each test's params schema and description) and
        ``inputs`` (the schema of one request's inputs of this provider, column by name)."""
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": f"feature provider '{self.name}'",
            "description": self.summary,
            "tests": {t.name: {"description": t.description, "params": t.params_schema()} for t in self.tests},
            "inputs": {"type": "object", "additionalProperties": False,
                       "properties": {c.name: c.json_schema() for c in self.inputs}},
        }


@dataclass(frozen=True)
class FeatureProblem:
    """Why a ``feature:`` does not match the declarations: the key it is about (``provider``,
    ``test`` or ``params`` then the parameter), the message, and whether it is only a warning
    (a provider that is not installed here)."""

    key: tuple[str | int, ...]
    message: str
    provider_missing: bool = False


def did_you_mean(name: str, known: list[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``known``, or ``""``."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def check_feature(provider: str, test: str, params: Mapping[str, Any],
                  declarations: Mapping[str, ProviderDeclaration]) -> list[FeatureProblem]:
    """The problems of ``feature: {provider, test, params}`` against the installed ``declarations``."""
    decl = declarations.get(provider)
    if decl is None:
        installed = sorted(declarations)
        return [FeatureProblem(("provider",), f"feature provider '{provider}' is not installed here"
                               f"{did_you_mean(provider, installed)} (installed: {', '.join(installed) or 'none'}); "
                               "its rules are not evaluated where it is not installed", provider_missing=True)]
    found = decl.test(test)
    if found is None:
        tests = [t.name for t in decl.tests]
        return [FeatureProblem(("test",), f"provider '{provider}' has no test '{test}'{did_you_mean(test, tests)} "
                                          f"(tests: {', '.join(tests) or 'none'})")]
    try:
        found.params.model_validate(dict(params))
    except ValidationError as exc:
        known = list(found.params.model_fields)
        out = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            name = str(loc[0]) if loc else ""
            if error["type"] == "extra_forbidden":
                message = (f"{provider}.{test} has no parameter '{name}'{did_you_mean(name, known)} "
                           f"(parameters: {', '.join(known) or 'none'})")
            else:
                message = f"{provider}.{test} parameter '{name}': {error['msg']}"
            out.append(FeatureProblem(("params", *loc), message))
        return out
    return []
