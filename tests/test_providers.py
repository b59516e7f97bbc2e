"""The feature-provider registry, with a third-party provider (tests/parity_provider.py) that no module
above the providers layer knows: classify takes its option, the server builds it and binds it to a
request's inputs, a study builds it from its config, and it is found through an entry point too."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from errortaxa.cli import main
from errortaxa.client import Client, InvalidArgument
from errortaxa.engine import SampleBatch, compile_path
from errortaxa.engine.features import UnavailableProvider
from errortaxa.engine.providers import registry
from errortaxa.engine.providers.factory import ProviderConfigError, ProviderUnavailable
from errortaxa.server import ServerConfig, build_server
from errortaxa.server.config import load_config
from errortaxa.server.convert import not_configured
from errortaxa.study.models import ImageSet, ModelFile
from errortaxa.study.study import run_study
from parity_provider import NeedsExtraFactory, ParityFactory

ROOT = Path(__file__).resolve().parents[1]
TAXONOMY = """\
schema: errortaxa/v1
name: parity
axes:
  category:
    values: [{id: right, tags: [mla_correct]}, {id: even}, {id: odd}, {id: other}]
    rules:
      - {id: right, when: {pred_is_target: true}, then: right}
      - {id: even, when: {feature: {provider: parity, test: even}}, then: even}
      - {id: odd, when: {not: {feature: {provider: parity, test: even}}}, then: odd}
      - {id: other, when: {always: true}, then: other}
"""
# (target, pred): 4 and 6 are even, 3 odd, 7 cannot be evaluated, the last is correct
SAMPLES = [(1, 4), (1, 3), (1, 7), (1, 6), (5, 5)]


@pytest.fixture
def parity(tmp_path: Path) -> Iterator[dict[str, Path]]:
    """The parity factory registered, its config file and a taxonomy that asks it."""
    registry.register(ParityFactory())
    config = tmp_path / "parity.yaml"
    config.write_text("modulus: 2\n")
    taxonomy = tmp_path / "parity-taxonomy.yaml"
    taxonomy.write_text(TAXONOMY)
    yield {"config": config, "taxonomy": taxonomy}
    registry.unregister("parity")


def jsonl(path: Path) -> Path:
    path.write_text("".join(json.dumps({"id": f"s{i}", "target": t, "labels": [t], "pred": p}) + "\n"
                            for i, (t, p) in enumerate(SAMPLES)))
    return path


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_registry(parity: dict[str, Path]) -> None:
    assert registry.names()[0] == "parity" and "oov" in registry.names()  # registered first, then entry points
    assert registry.get("oov").config_option == "--oov-config"
    with pytest.raises(ValueError, match="already registered"):
        registry.register(ParityFactory())
    with pytest.raises(KeyError, match=r"no feature provider 'nope' is installed \(installed: parity, .*oov"):
        registry.get("nope")
    with pytest.raises(ProviderConfigError, match="no feature provider 'nope'"):
        registry.build("nope", parity["config"], compile_path(parity["taxonomy"]))
    registry.register(NeedsExtraFactory())
    try:
        with pytest.raises(ProviderUnavailable, match=r"'--needs_extra-config' needs the needs_extra extra: pip"):
            registry.build("needs_extra", parity["config"], compile_path(parity["taxonomy"]))
    finally:
        registry.unregister("needs_extra")


def test_entry_point_discovery(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A distribution that declares ``parity`` in the group ``errortaxa.providers`` adds the provider."""
    info = tmp_path / "site" / "errortaxa_parity-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: errortaxa-parity\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[errortaxa.providers]\nparity = parity_provider:ParityFactory\n")
    assert "parity" not in registry.names()
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert "parity" in registry.names() and isinstance(registry.get("parity"), ParityFactory)
    bad = tmp_path / "bad" / "errortaxa_bad-0.1.dist-info"  # an entry point whose factory has another name
    bad.mkdir(parents=True)
    (bad / "METADATA").write_text("Metadata-Version: 2.1\nName: errortaxa-bad\nVersion: 0.1\n")
    (bad / "entry_points.txt").write_text("[errortaxa.providers]\nparity = parity_provider:NeedsExtraFactory\n")
    monkeypatch.syspath_prepend(str(tmp_path / "bad"))
    with pytest.raises(TypeError, match="makes provider 'needs_extra'"):
        registry.names()


def test_classify_takes_the_providers_option(parity: dict[str, Path], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    records, out = jsonl(tmp_path / "in.jsonl"), tmp_path / "out.jsonl"
    taxonomy = str(parity["taxonomy"])
    assert main(["classify", str(records), "--taxonomy", taxonomy, "--parity-config", str(parity["config"]),
                 "--output", str(out)]) == 0
    got = read(out)
    assert [r["category"] for r in got] == ["even", "odd", "other", "even", "right"]
    assert got[0]["evidence"]["feature"] == {"value": 4, "from": "pred"}
    assert got[2]["evidence"]["not_evaluated"][0]["reason"] == "seven is unknowable"
    # without the option: not evaluated, the next rule decides
    assert main(["classify", str(records), "--taxonomy", taxonomy, "--output", str(out)]) == 0
    assert [r["category"] for r in read(out)] == ["other"] * 4 + ["right"]
    # a bad config, a missing file, remote mode: one line, exit status 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("modulus: zero\n")
    for args, message in (([ "--parity-config", str(bad)], "modulus must be a positive integer"),
                          (["--parity-config", str(tmp_path / "nope.yaml")], "nope.yaml: no such file"),
                          (["--parity-config", str(bad), "--server", "127.0.0.1:1"], "applies to local mode")):
        capsys.readouterr()
        assert main(["classify", str(records), "--taxonomy", taxonomy, *args]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and message in err, err
    # its subcommand
    assert main(["parity", "4"]) == 0 and capsys.readouterr().out == "even\n"


def test_rules_validate_names_a_provider_that_is_not_installed(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(TAXONOMY)
    assert main(["rules", "validate", str(path)]) == 0
    err = capsys.readouterr().err
    assert f"{path}:8: warning: axes.category.rules[1].when.feature.provider: feature provider 'parity' is not " \
           "installed here" in err, err
    assert main(["rules", "validate", str(path), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["providers_missing"] == ["parity"]


def test_completion_covers_the_provider_contributed_commands(parity: dict[str, Path],
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion", "bash"]) == 0
    script = capsys.readouterr().out
    words = {line.split(")")[0].strip(): line.split()[3:-1] for line in script.splitlines()
             if line.startswith("        sub:") or line.startswith("        opt:")}
    assert {"parity", "oov", "study", "completion"} <= set(words["sub:"])
    assert {"--parity-config", "--oov-config", "--quiet"} <= set(words["opt:classify"])
    assert {"proposals", "index", "embed"} <= set(words["sub:oov"])


def start(**settings: Any) -> Any:
    return build_server(ServerConfig(**{"host": "127.0.0.1", "port": 0, "drain_seconds": 0.0,
                                        "grace_seconds": 2.0, **settings}))


def columns() -> dict[str, Any]:
    return {"target": [t for t, _ in SAMPLES], "labels": [[t] for t, _ in SAMPLES], "pred": [p for _, p in SAMPLES]}


def test_server_builds_and_binds_the_provider(parity: dict[str, Path]) -> None:
    running = start(default_taxonomy=str(parity["taxonomy"]), provider_configs={"parity": parity["config"]})
    try:
        with Client(f"127.0.0.1:{running.port}", retries=0, timeout=60) as c:
            plain = c.classify(**columns(), records=True)
            assert plain.category == ["even", "odd", "other", "even", "right"]
            # the request's kNN classes (its declared input), bound by the factory: the first class decides
            knn = np.array([[3, -1], [8, 1], [2, -1], [7, -1], [0, -1]], np.int32)
            bound = c.classify(**columns(), provider_inputs={"parity": {"knn_classes": knn}}, records=True)
            assert bound.category == ["odd", "even", "even", "other", "right"]
            assert bound.records[1]["evidence"]["feature"] == {"value": 8, "from": "knn"}
            with pytest.raises(InvalidArgument) as err:  # the factory's own check names the field
                c.classify(**columns(), provider_inputs={"parity": {"knn_classes": knn[:, :1]}})
            assert (err.value.field, err.value.reason) == ("samples.providers.parity.knn_classes", "NO_COLUMNS")
            # the OOV inputs of the deprecated message are the oov provider's, not parity's
            legacy = c.classify(**columns(), knn_classes=knn, records=True)
            assert legacy.category == plain.category
    finally:
        running.stop(0)


def test_server_without_the_providers_config(parity: dict[str, Path]) -> None:
    running = start(default_taxonomy=str(parity["taxonomy"]))
    try:
        with Client(f"127.0.0.1:{running.port}", retries=0, timeout=60) as c:
            got = c.classify(**columns(), provider_inputs={"parity": {"knn_classes": [[2]] * len(SAMPLES)}},
                             records=True)
        reason = not_configured(registry.get("parity"))
        assert "--parity-config" in reason
        assert [r["evidence"]["not_evaluated"][0]["reason"] for r in got.records[:4]] == [reason] * 4
    finally:
        running.stop(0)


def test_server_settings_name_the_providers_config(parity: dict[str, Path], tmp_path: Path) -> None:
    config = parity["config"]
    assert load_config(["--parity-config", str(config)], {}).provider_configs == {"parity": config}
    assert load_config([], {"ERRORTAXA_PARITY_CONFIG": str(config)}).provider_configs == {"parity": config}
    assert load_config(["--oov-config", "oov.yaml"], {}).provider_configs == {"oov": Path("oov.yaml")}
    settings = tmp_path / "server.toml"
    settings.write_text('parity_config = "parity.yaml"\n')  # relative to the settings file
    assert load_config(["--config", str(settings)], {}).provider_configs == {"parity": config}
    bad = tmp_path / "bad.yaml"
    bad.write_text("modulus: 0\n")
    with pytest.raises(ValueError, match="modulus must be a positive integer"):
        start(default_taxonomy=str(parity["taxonomy"]), provider_configs={"parity": bad})


def test_server_provider_that_cannot_run_says_why(parity: dict[str, Path]) -> None:
    registry.register(NeedsExtraFactory())
    try:
        text = parity["taxonomy"].read_text().replace("provider: parity", "provider: needs_extra")
        parity["taxonomy"].write_text(text)
        running = start(default_taxonomy=str(parity["taxonomy"]), provider_configs={"needs_extra": parity["config"]})
        try:
            assert isinstance(running.registry.active.providers["needs_extra"], UnavailableProvider)
            with Client(f"127.0.0.1:{running.port}", retries=0, timeout=60) as c:
                got = c.classify(**columns(), provider_inputs={"parity": {"knn_classes": [[2]] * len(SAMPLES)}},
                             records=True)
            reason = got.records[0]["evidence"]["not_evaluated"][0]["reason"]
            assert "needs the needs_extra extra" in reason
        finally:
            running.stop(0)
    finally:
        registry.unregister("needs_extra")


def test_study_builds_the_provider_from_its_config(parity: dict[str, Path], tmp_path: Path) -> None:
    taxonomy = compile_path(parity["taxonomy"])
    images = ImageSet(SampleBatch.from_lists(target=[t for t, _ in SAMPLES], labels=[[t] for t, _ in SAMPLES],
                                             pred=[0] * len(SAMPLES), images=[f"i{i}" for i in range(len(SAMPLES))]))
    preds = np.array([[p for _, p in SAMPLES], [2, 2, 2, 2, 5]], np.int32)
    models = [ModelFile(f"m{m}", "") for m in range(2)]
    other = tmp_path / "other.yaml"  # another taxonomy: its provider is rebuilt from the config
    other.write_text(TAXONOMY.replace("name: parity", "name: other"))
    result = run_study(taxonomy, images, models, progress=False, predictions=lambda m: preds[int(m.name[1:])],
                       provider_configs={"parity": parity["config"]}, compare=compile_path(other))
    assert result.table["all.n.even"].tolist() == [2, 4] and result.table["all.n.odd"].tolist() == [1, 0]
    assert result.diff is not None and result.diff.agreement == 1.0
    with pytest.raises(ValueError, match="pass provider_configs"):
        run_study(taxonomy, images, models, progress=False, ray_address="local",
                  providers=registry.build_all({"parity": parity["config"]}, taxonomy))


def _names_the_oov_provider(path: Path) -> list[str]:
    """Imports of the oov package and the string "oov" (but the proto's field: ``msg.HasField("oov")``,
    and the one constant naming the provider of the deprecated wire alias: ``ALIAS_PROVIDER = "oov"``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    wire = {id(arg) for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "HasField" for arg in node.args}
    wire |= {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Assign)
             and [getattr(t, "id", None) for t in node.targets] == ["ALIAS_PROVIDER"]}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("errortaxa.providers.oov"):
            found.append(f"{path}:{node.lineno}: imports {node.module}")
        elif isinstance(node, ast.Import) and any(a.name.startswith("errortaxa.providers.oov") for a in node.names):
            found.append(f"{path}:{node.lineno}: imports the oov package")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in wire and (
                node.value == "oov" or "errortaxa.providers.oov" in node.value):
            found.append(f"{path}:{node.lineno}: names 'oov'")
    return found


def test_no_module_above_the_providers_names_the_oov_provider() -> None:
    """The CLI, the studies and the server reach providers through the registry only (the study's
    agreement module maps external category names such as "out of vocabulary", not the provider)."""
    files = [p for folder in ("apps", "server") for p in (ROOT / folder).rglob("*.py")
             if p.name != "agreement.py"]
    assert files and [hit for path in files for hit in _names_the_oov_provider(path)] == []
