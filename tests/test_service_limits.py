"""Bounded parsing and compiling: taxonomies over a limit are refused fast, by the server
(INVALID_ARGUMENT naming the limit and its value, real server on 127.0.0.1) and by the CLI."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from errortaxa.client import Client, InvalidArgument
from errortaxa.engine import TaxonomyError, load_taxonomy
from errortaxa.engine.language import limits
from errortaxa.engine.language.limits import Limits, TaxonomyTooLarge, check_yaml
from errortaxa.server import RunningServer, ServerConfig, build_server

ROOT = Path(__file__).resolve().parents[1]


def alias_bomb(size: int = 544) -> str:
    """Nine levels of nine aliases each (9**9 leaves once expanded), padded to ``size`` bytes."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    lines.append("j: [" + ",".join(["*i"] * 9) + "]")
    text = "\n".join(lines) + "\n"
    assert len(text) <= size
    return text + "#" * (size - len(text) - 1) + "\n"


def many_cooccurs(n: int = 1000) -> str:
    """``n`` rules, each with its own co-occurrence threshold: ``n`` distinct class-pair tables."""
    rules = "".join(
        f"      - {{id: c{i}, before: model_failure, then: model_failure, "
        f"when: {{pred_vs_target: {{cooccurs: {{table: real_val, min_count: {i + 3}}}}}}}}}\n" for i in range(n))
    return ("schema: errortaxa/v1\nname: many\nversion: \"1\"\nextends: imagenet/peychev2023\n"
            "axes:\n  category:\n    rules:\n" + rules)


def deep(depth: int) -> str:
    return "name: deep\nx: " + "[" * depth + "]" * depth + "\n"


CASES = {
    "alias bomb": (alias_bomb(), "max_nodes = 200000"),
    "alias uses": ("a: &a 1\nb: [" + ",".join(["*a"] * 101) + "]\n", "max_aliases = 100"),
    "nesting": (deep(65), "max_depth = 64"),
    "size": ("name: big\n# " + "x" * (1024 * 1024) + "\n", "max_bytes = 1048576"),
    "pair tables": (many_cooccurs(), "max_pair_tables = 64"),
    "pair tables with the inherited ones": (many_cooccurs(62), "max_pair_tables = 64"),  # the compiler's check
}


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    running = build_server(ServerConfig(host="127.0.0.1", port=0, drain_seconds=0.0, grace_seconds=1.0))
    yield running
    running.stop(0)


@pytest.fixture()
def client(server: RunningServer) -> Iterator[Client]:
    with Client(f"127.0.0.1:{server.port}", retries=0, timeout=30) as c:
        yield c


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("rpc", ["validate", "put"])
def test_a_taxonomy_over_a_limit_is_refused_within_50_ms(client: Client, case: str, rpc: str) -> None:
    text, named = CASES[case]
    call = client.validate_taxonomy if rpc == "validate" else client.put_taxonomy
    best = float("inf")
    for _ in range(3):  # the best of three: the machine is shared
        start = time.perf_counter()
        with pytest.raises(InvalidArgument) as caught:
            call(text)
        best = min(best, time.perf_counter() - start)
        assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert named in caught.value.message and caught.value.reason == "LIMIT_EXCEEDED"
        assert caught.value.field == "yaml"
    # the compiler's own check comes after the inherited default taxonomy is read and 64 tables are built
    bound = 0.25 if case == "pair tables with the inherited ones" else 0.05
    assert best < bound, f"{case}: refused after {best * 1000:.0f} ms"
    assert client.validate_taxonomy(many_cooccurs(3)).ok  # a small one still compiles


def test_the_limits_are_configurable() -> None:
    running = build_server(ServerConfig(host="127.0.0.1", port=0, drain_seconds=0.0, taxonomy_max_aliases=200,
                                        taxonomy_max_pair_tables=2000, taxonomy_max_bytes=2 * 1024 * 1024))
    try:
        with Client(f"127.0.0.1:{running.port}", retries=0, timeout=60) as c:
            assert c.validate_taxonomy("a: &a 1\nb: [" + ",".join(["*a"] * 101) + "]\n").ok is False  # not a limit
            assert c.validate_taxonomy(many_cooccurs(70)).ok
    finally:
        running.stop(0)
        limits.configure(Limits())


def test_limits_of_the_default_taxonomy_leave_room() -> None:
    text = (ROOT / "rules" / "imagenet" / "peychev2023.yaml").read_text()
    check_yaml("peychev2023.yaml", text, Limits(max_bytes=len(text.encode()), max_aliases=1, max_depth=12,
                                                 max_nodes=4000))


def test_the_cli_applies_the_same_limits(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(alias_bomb())
    start = time.perf_counter()
    with pytest.raises(TaxonomyTooLarge) as caught:
        load_taxonomy(str(bomb))
    assert time.perf_counter() - start < 0.05
    assert isinstance(caught.value, TaxonomyError) and "max_nodes" in str(caught.value)
    done = subprocess.run([sys.executable, "-c", "import sys; from errortaxa.cli import main; sys.exit(main())",
                           "rules", "validate", str(bomb)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "max_nodes = 200000" in done.stdout + done.stderr


# ---------------------------------------------------------------------------------------------
# --limit NAME=VALUE: the server's limit names and environment variables, one settings path


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    environ = {k: v for k, v in os.environ.items() if not k.startswith(limits.ENV_PREFIX)}
    return subprocess.run([sys.executable, "-c", "import sys; from errortaxa.cli import main; sys.exit(main())",
                           *args], capture_output=True, text=True, timeout=300, env={**environ, **(env or {})})


def test_every_command_that_compiles_takes_limit() -> None:
    import argparse

    from errortaxa.cli import build_parser

    def commands(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield (*words, name), sub
                    yield from commands(sub, (*words, name))

    having = {" ".join(words) for words, sub in commands(build_parser()) if "--limit" in sub._option_string_actions}
    assert {"classify", "rules validate", "rules test", "rules explain", "rules show", "rules diff", "study", "diff",
            "mcnemar", "agreement"} <= having
    assert not having & {"rules schema", "store check", "completion"}


def test_limit_on_the_cli_reads_as_the_server_settings(tmp_path: Path) -> None:
    from errortaxa.server.config import load_config

    many = tmp_path / "many.yaml"
    many.write_text(many_cooccurs(70))  # a trusted user's taxonomy with 70 distinct class-pair tables
    refused = cli("rules", "validate", str(many))
    assert refused.returncode == 2 and "over the limit max_pair_tables = 64" in refused.stderr
    assert cli("rules", "validate", str(many), "--limit", "max_pair_tables=128").returncode == 0
    variable = limits.env_name("max_pair_tables")
    assert variable == "ERRORTAXA_TAXONOMY_MAX_PAIR_TABLES"
    assert cli("rules", "validate", str(many), env={variable: "128"}).returncode == 0
    lowered = cli("rules", "validate", str(many), "--limit", "max_pair_tables=70", "--limit", "max_depth=3",
                  env={variable: "128"})  # --limit over the environment, repeatable
    assert lowered.returncode == 2 and "over the limit max_depth = 3" in lowered.stderr
    data = tmp_path / "in.jsonl"
    data.write_text('{"image": "a", "target": 1, "labels": [1], "pred": 2}\n')
    assert cli("classify", str(data), "--taxonomy", str(many)).returncode == 2
    classified = cli("classify", str(data), "--taxonomy", str(many), "--limit", "max_pair_tables=128")
    assert classified.returncode == 0 and '"image":"a"' in classified.stdout
    # the server reads its settings taxonomy_<name> (file, $ERRORTAXA_TAXONOMY_<NAME>, flags) the same way
    server = load_config(["--taxonomy-max-pair-tables", "128"], {limits.env_name("max_depth"): "3"}).limits
    assert server == limits.from_settings({limits.env_name("max_depth"): "3"}, ["max_pair_tables=128"])
    assert {f"taxonomy_{name}" for name in limits.NAMES} <= set(ServerConfig.__dataclass_fields__)


@pytest.mark.parametrize(("args", "env", "message"), [
    (("--limit", "max_pair_table=9"), {}, "--limit 'max_pair_table=9': unknown taxonomy limit 'max_pair_table' "
                                          "(limits: max_bytes, max_aliases, max_depth, max_nodes, max_pair_tables)"),
    (("--limit", "max_depth=0"), {}, "must be a positive integer, got '0'"),
    (("--limit", "max_depth"), {}, "expected NAME=VALUE"),
    ((), {"ERRORTAXA_TAXONOMY_MAX_NODES": "many"}, "$ERRORTAXA_TAXONOMY_MAX_NODES: taxonomy limit max_nodes must be"),
])
def test_a_bad_limit_is_one_line_and_exit_2(args: tuple[str, ...], env: dict[str, str], message: str) -> None:
    done = cli("rules", "validate", str(ROOT / "rules" / "imagenet" / "peychev2023.yaml"), *args, env=env)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("errortaxa: error: ") and message in done.stderr
