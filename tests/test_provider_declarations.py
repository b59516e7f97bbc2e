"""Providers declared like predicates: every installed provider's declaration validates and matches
what its factory binds; the compiler checks every ``feature:`` against the installed providers
(`rules validate`, the server's Validate and Put); the wire carries each provider's inputs as typed
columns, checked against its declaration; ListProviders answers them as JSON Schema. The ``echo``
provider is a distribution of its own (tests/providers/echo_provider), installed into the venv by
``make install`` and found through its entry point only."""

from __future__ import annotations

import ast
import asyncio
import json
import logging
import re
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from errortaxa.cli import main
from errortaxa.client import AsyncClient, Client, InvalidArgument
from errortaxa.engine import TaxonomyError, compile_path
from errortaxa.engine.features import ProviderDeclaration
from errortaxa.engine.providers import registry
from errortaxa.engine.providers.factory import ProviderInputError, RequestInputs, check_inputs
from errortaxa.server import ServerConfig, build_server
from errortaxa.v1 import samples_pb2, service_pb2, service_pb2_grpc
from parity_provider import ParityFactory

ROOT = Path(__file__).resolve().parents[1]
ECHO = """\
schema: errortaxa/v1
name: echo
version: "1"
axes:
  category:
    values: [{id: right, tags: [mla_correct]}, {id: voted}, {id: other}]
    rules:
      - {id: right, when: {pred_is_target: true}, then: right}
      - {id: voted, when: {feature: {provider: echo, test: votes_at_least, params: {threshold: 2}}}, then: voted}
      - {id: other, when: {always: true}, then: other}
"""
OOV = """\
schema: errortaxa/v1
name: misspelt
axes:
  category:
    values: [{id: oov}, {id: other}]
    rules:
      - {id: oov, when: {feature: FEATURE}, then: oov}
      - {id: other, when: {always: true}, then: other}
"""


def taxonomy(feature: str) -> str:
    return OOV.replace("FEATURE", feature)


def synthetic(declaration: ProviderDeclaration, n: int) -> RequestInputs:
    """Valid inputs of every declared column for ``n`` samples."""
    columns: dict[str, Any] = {}
    for c in declaration.inputs:
        if c.dtype == "bytes":
            columns[c.name] = [b"x"] * n
        elif c.dtype == "string":
            columns[c.name] = ["x"] * n
        else:
            shape = (n,) if c.width is None else (n, c.width or 3)
            columns[c.name] = np.ones(shape, dtype=c.dtype)
    return RequestInputs(n, columns)


# -- packaging: a provider is its folder plus one entry point --------------------------------------


def test_echo_is_installed_through_its_entry_point_only(capsys: pytest.CaptureFixture[str]) -> None:
    points = {p.name: p.value for p in entry_points(group=registry.GROUP)}
    assert points["echo"] == "errortaxa_echo:EchoFactory" and points["oov"].startswith("errortaxa.providers.oov")
    assert "echo" not in registry._registered and type(registry.get("echo")).__name__ == "EchoFactory"
    assert main(["echo"]) == 0  # its subcommand comes through its factory
    assert json.loads(capsys.readouterr().out)["tests"]["votes_at_least"]["params"]["properties"]["threshold"]


def test_nothing_names_a_provider_in_the_packaging_or_the_cli() -> None:
    """pyproject.toml lists no package (setup.py finds them), mypy covers errortaxa.providers as a
    whole; the CLI names no provider (its subcommands come through the factories)."""
    pyproject = (ROOT / "pyproject.toml").read_text()
    packaging = pyproject.split("[tool.mypy]")[0]
    assert "[tool.setuptools.package-dir]" not in packaging and "\npackages = [" not in packaging
    assert '"errortaxa.providers"' in pyproject.split("[tool.mypy]")[1]
    assert pyproject.count("errortaxa.providers.oov") == 1  # the entry point
    for path in (ROOT / "apps" / "errortaxa" / "cli").glob("*.py"):
        names = {n.value for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Constant)}
        assert not {"oov", "oov_command", "echo"} & names, path


def test_the_architecture_recipe_names_what_a_provider_in_the_repo_is() -> None:
    """docs/ARCHITECTURE.md: a provider in this repo is its folder plus one entry point line."""
    folders = {p.name for p in (ROOT / "providers" / "errortaxa" / "providers").iterdir()
               if (p / "__init__.py").is_file()}
    section = (ROOT / "pyproject.toml").read_text().split('[project.entry-points."errortaxa.providers"]\n')[1]
    points = dict(re.findall(r'^(\w+) = "([\w.:]+)"$', section.split("\n\n")[0], re.M))
    assert {value.split(":")[0].split(".")[2] for value in points.values()} == folders == set(points)
    recipe = next(line for line in (ROOT / "docs" / "ARCHITECTURE.md").read_text().splitlines()
                  if line.startswith("| a feature provider |"))
    paths = re.findall(r"`((?:providers|tests|setup)[\w/.]*)`", recipe)
    assert len(paths) >= 5 and all((ROOT / p.replace("NAME", "oov")).exists() for p in paths), paths
    for name in ("FeatureTestDecl", "InputColumn", "tests", "inputs", "bind", "entry-points"):
        assert name in recipe


# -- declarations --------------------------------------------------------------------------------


def test_every_installed_declaration_validates_and_matches_what_bind_accepts(tmp_path: Path) -> None:
    """The recipe of docs/ARCHITECTURE.md ("a feature provider") kept honest."""
    compiled = compile_path(None)
    (tmp_path / "echo.json").write_text("{}")
    for factory in registry.factories():
        decl = factory.declaration
        assert decl.name == factory.name and decl.problems() == [], (factory.name, decl.problems())
        assert decl.tests, f"{factory.name} declares no test"
        json.dumps(decl.json_schema())
        inputs = synthetic(decl, 4)
        check_inputs(decl, inputs, num_classes=1000)
        with pytest.raises(ProviderInputError, match="is not an input of provider") as err:
            check_inputs(decl, RequestInputs(4, {**inputs.columns, "undeclared": np.ones(4, np.int32)}),
                         num_classes=1000)
        assert err.value.reason_code == "UNKNOWN_INPUT"
        if factory.name == "echo":  # buildable here without weights: bind takes every declared column
            provider = factory.bind(factory.build(tmp_path / "echo.json", compiled), inputs)
            batch = type("B", (), {"pred": np.zeros(4, np.int32)})()
            assert provider.evaluate("votes_at_least", {"threshold": 1}, batch, np.arange(4)).holds.all()


def test_check_inputs_refuses_wrong_columns() -> None:
    decl = registry.get("oov").declaration
    for columns, code in (({"embeddings": np.ones((3, 4), np.float64)}, "WRONG_DTYPE"),
                          ({"embeddings": np.ones(3, np.float32)}, "BAD_SHAPE"),
                          ({"embeddings": np.ones((2, 4), np.float32)}, "LENGTH_MISMATCH"),
                          ({"embeddings": np.array([[1], [np.nan], [1]], np.float32)}, "NOT_FINITE"),
                          ({"knn_classes": np.array([[1], [1000], [1]], np.int32)}, "CLASS_OUT_OF_RANGE"),
                          ({"image_bytes": ["a", "b", "c"]}, "WRONG_DTYPE")):
        with pytest.raises(ProviderInputError) as err:
            check_inputs(decl, RequestInputs(3, columns), num_classes=1000)
        assert err.value.reason_code == code, (columns, err.value)


# -- the compiler's checks, from the CLI -----------------------------------------------------------


def validate(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str], *flags: str) -> tuple[int, str, Path]:
    path = tmp_path / "t.yaml"
    path.write_text(text)
    capsys.readouterr()
    code = main(["rules", "validate", str(path), *flags])
    return code, capsys.readouterr().err, path


@pytest.mark.parametrize(("feature", "key", "message"), [
    ("{provider: oov, test: fine_grained_ooov}", "feature.test",
     "provider 'oov' has no test 'fine_grained_ooov' (did you mean 'fine_grained_oov'?)"),
    ("{provider: oov, test: fine_grained_oov, params: {kk: 3}}", "feature.params.kk",
     "oov.fine_grained_oov has no parameter 'kk'"),
    ("{provider: oov, test: fine_grained_oov, params: {knn_k: 0}}", "feature.params.knn_k",
     "parameter 'knn_k': Input should be greater than or equal to 1"),
    ("{provider: echo, test: votes_at_least, params: {threshold: many}}", "feature.params.threshold",
     "parameter 'threshold'"),
])
def test_rules_validate_locates_an_unknown_test_or_parameter(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                             feature: str, key: str, message: str) -> None:
    code, err, path = validate(tmp_path, taxonomy(feature), capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"errortaxa: {path}:7: error: axes.category.rules[0].when.{key}: ") or \
        f"{path}:7: error: axes.category.rules[0].when.{key}: " in err, err
    assert message in err, err


def test_rules_validate_warns_of_a_provider_not_installed_and_strict_refuses(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    misspelt = taxonomy("{provider: ovv, test: fine_grained_oov}")
    code, err, path = validate(tmp_path, misspelt, capsys)
    assert code == 0
    assert f"{path}:7: warning: axes.category.rules[0].when.feature.provider: feature provider 'ovv' is not " \
           "installed here (did you mean 'oov'?)" in err, err
    code, err, _ = validate(tmp_path, misspelt, capsys, "--strict")
    assert code == 2 and f"{path}:7: error: " in err and "did you mean 'oov'?" in err, err
    path.write_text(misspelt)
    assert main(["rules", "validate", str(path), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["providers_missing"] == ["ovv"] and report["problems"][0]["line"] == 7
    # classify keeps going: the rule is "not evaluated" where the provider is not installed
    with pytest.raises(TaxonomyError, match="no test 'nope'"):
        compile_path(None, text=taxonomy("{provider: oov, test: nope}"), providers=registry.declarations())


def test_rules_schema_lists_the_declared_tests(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "schema"]) == 0
    args = json.loads(capsys.readouterr().out)["$defs"]["FeatureArgs"]
    declared = {(b["properties"]["provider"]["const"], b["properties"]["test"]["const"]): b["properties"]["params"]
                for b in args["anyOf"] if "const" in b["properties"]["provider"]}
    assert {("oov", "fine_grained_oov"), ("echo", "votes_at_least")} <= set(declared)
    assert declared[("oov", "fine_grained_oov")]["additionalProperties"] is False
    assert "knn_k" in declared[("oov", "fine_grained_oov")]["properties"]
    assert args["anyOf"][-1]["properties"]["provider"] == {"not": {"enum": sorted(registry.names())}}


# -- the server ----------------------------------------------------------------------------------


def start(**settings: Any) -> Any:
    return build_server(ServerConfig(**{"host": "127.0.0.1", "port": 0, "drain_seconds": 0.0,
                                        "grace_seconds": 2.0, **settings}))


@pytest.fixture
def echo_server(tmp_path: Path) -> Iterator[Client]:
    path = tmp_path / "echo.yaml"
    path.write_text(ECHO)
    config = tmp_path / "echo.json"
    config.write_text("{}")
    running = start(default_taxonomy=str(path), provider_configs={"echo": config})
    try:
        with Client(f"127.0.0.1:{running.port}", retries=0, timeout=60) as client:
            yield client
    finally:
        running.stop(0)


SAMPLES = {"target": [1, 1, 1, 5], "labels": [[1], [1], [1], [5]], "pred": [2, 3, 4, 5]}


def test_list_providers_answers_the_declarations_as_json_schema(echo_server: Client) -> None:
    providers = echo_server.list_providers()
    assert {"echo", "oov"} <= set(providers)
    echo = providers["echo"]
    assert echo["configured"] is True and providers["oov"]["configured"] is False
    assert echo["tests"]["votes_at_least"]["params"]["properties"]["threshold"]["minimum"] == 0
    votes = echo["inputs"]["properties"]["votes"]
    assert votes["x-errortaxa-dtype"] == "int32" and votes["items"]["type"] == "integer"
    assert providers["oov"]["inputs"]["properties"]["embeddings"]["items"]["type"] == "array"
    with grpc.insecure_channel(echo_server.target) as channel:
        raw = service_pb2_grpc.ErrorTaxaStub(channel).ListProviders(service_pb2.ListProvidersRequest())
    oov = next(p for p in raw.providers if p.name == "oov")
    assert [(i.name, i.dtype, i.width) for i in oov.inputs] == [
        ("embeddings", "float32", 0), ("knn_classes", "int32", 0), ("image_bytes", "bytes", -1)]


def test_classify_decides_by_the_providers_inputs(echo_server: Client) -> None:
    plain = echo_server.classify(**SAMPLES, records=True)
    assert plain.category == ["other", "other", "other", "right"]
    assert plain.records[0]["evidence"]["not_evaluated"][0]["reason"] == "no echo votes sent with the request"
    inputs = {"echo": {"votes": np.array([0, 2, 5, 9], np.int32), "note": ["a", "b", "c", "d"]}}
    got = echo_server.classify(**SAMPLES, provider_inputs=inputs, records=True)
    assert got.category == ["other", "voted", "voted", "right"]
    assert got.records[1]["evidence"]["feature"] == {"votes": 2, "note": "b"}
    # classify_many cuts the columns with the batches
    many = echo_server.classify_many(**SAMPLES, provider_inputs=inputs, batch_size=3)
    assert many.category == got.category
    traces = echo_server.explain(**SAMPLES, index=1, provider_inputs=inputs).traces
    assert [(t.rule, t.outcome) for t in traces if t.decided] == [("voted", "held")]

    async def listed() -> set[str]:
        async with AsyncClient(echo_server.target, retries=0) as client:
            return set(await client.list_providers())

    assert {"echo", "oov"} <= asyncio.run(listed())


@pytest.mark.parametrize(("inputs", "field", "reason"), [
    ({"echo": {"votes": [0.5, 1.0, 2.0, 3.0]}}, "samples.providers.echo.votes", "WRONG_DTYPE"),
    ({"echo": {"votes": [1, 2, 3]}}, "samples.providers.echo.votes", "LENGTH_MISMATCH"),
    ({"echo": {"votes": [[1], [2], [3], [4]]}}, "samples.providers.echo.votes", "BAD_SHAPE"),
    ({"echo": {"vote": [1, 2, 3, 4]}}, "samples.providers.echo.vote", "UNKNOWN_INPUT"),
    ({"ehco": {"votes": [1, 2, 3, 4]}}, "samples.providers.ehco", "UNKNOWN_PROVIDER"),
    ({"oov": {"embeddings": np.ones((4, 3), np.float32)}}, "samples.oov", "CONFLICTING_INPUTS"),
])
def test_wrong_provider_inputs_are_invalid_argument_naming_the_field(
        echo_server: Client, inputs: dict[str, Any], field: str, reason: str) -> None:
    legacy = {"knn_classes": [[1]] * 4} if reason == "CONFLICTING_INPUTS" else {}
    with pytest.raises(InvalidArgument) as err:
        echo_server.classify(**SAMPLES, provider_inputs=inputs, **legacy)
    assert (err.value.field, err.value.reason) == (field, reason), err.value
    assert field in str(err.value)


def test_the_wire_packs_typed_columns_never_doubles() -> None:
    from errortaxa.client.columns import Samples

    msg = Samples.build(target=[1, 2], pred=[1, 2], provider_inputs={
        "echo": {"votes": [3, 4], "note": ["x", "y"]}, "oov": {"embeddings": np.ones((2, 3)),
                                                               "image_bytes": [b"a", b""]}}).to_proto()
    votes, note = msg.providers["echo"].columns["votes"], msg.providers["echo"].columns["note"]
    assert (list(votes.int32_values), votes.cols, list(note.string_values)) == ([3, 4], 0, ["x", "y"])
    emb = msg.providers["oov"].columns["embeddings"]
    assert (emb.cols, len(emb.float32_values), list(msg.providers["oov"].columns["image_bytes"].bytes_values)) == \
        (3, 6, [b"a", b""])
    assert samples_pb2.SampleColumns.DESCRIPTOR.fields_by_name["oov"].GetOptions().deprecated


def test_validate_and_put_refuse_an_unknown_test_or_a_provider_not_installed(echo_server: Client) -> None:
    for feature, message in (("{provider: echo, test: votes_at_lest}", "did you mean 'votes_at_least'?"),
                             ("{provider: ehco, test: votes_at_least}", "did you mean 'echo'?"),
                             ("{provider: echo, test: votes_at_least, params: {treshold: 1}}",
                              "has no parameter 'treshold' (did you mean 'threshold'?)")):
        text = taxonomy(feature)
        check = echo_server.validate_taxonomy(text)
        assert not check.ok and [(p.line, p.severity) for p in check.problems] == [(7, "error")], check
        assert message in check.problems[0].message
        with pytest.raises(InvalidArgument) as err:
            echo_server.put_taxonomy(text)
        assert err.value.reason == "TAXONOMY_INVALID" and message in err.value.problems[0].message


def test_a_stored_version_whose_provider_was_uninstalled_still_loads(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Its feature rules are not evaluated, with a warning and a metric; never replaced by an older one."""
    text = (ROOT / "tests" / "test_providers.py").read_text().split('TAXONOMY = """\\\n')[1].split('"""')[0]
    text = text.replace("name: parity", "name: parity\nversion: \"2\"")
    store = tmp_path / "store"
    registry.register(ParityFactory())
    try:
        running = start(store=store)
        try:
            with Client(f"127.0.0.1:{running.port}", retries=0, timeout=60) as c:
                c.put_taxonomy(text, activate=True)
        finally:
            running.stop(0)
    finally:
        registry.unregister("parity")
    with caplog.at_level(logging.WARNING, logger="errortaxa.server"):
        running = start(store=store)
    try:
        assert (running.registry.active.name, running.registry.active.version) == ("parity", "2")
        assert any(getattr(r, "providers", None) == ["parity"] for r in caplog.records), caplog.records
        metrics = running.metrics.render()
        assert re.search(r'errortaxa_store_findings\{[^}]*parity.*not installed here', metrics), metrics
        with Client(f"127.0.0.1:{running.port}", retries=0, timeout=60) as c:
            got = c.classify(target=[1, 1], labels=[[1], [1]], pred=[4, 1], records=True)
        assert got.category == ["other", "right"]
        assert got.records[0]["evidence"]["not_evaluated"][0]["reason"] == \
            "no 'parity' feature provider is configured"
    finally:
        running.stop(0)
