"""CLI conventions: --version and __version__, --quiet, NO_COLOR, shell completion, and the
machine-readable formats of ``rules validate`` (JSON) and ``rules test`` (JSON, JUnit XML)."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import shutil
import struct
import subprocess
import sys
import termios
import xml.etree.ElementTree as ET
from pathlib import Path

import errortaxa.cli
import errortaxa.client
import errortaxa.engine
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXE = shutil.which("errortaxa", path=str(Path(sys.executable).parent)) or "errortaxa"
DEFAULT = str(ROOT / "rules" / "imagenet" / "peychev2023.yaml")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=300,
                          env=None if env is None else {**os.environ, **env})


def run_on_a_terminal(*args: str, env: dict[str, str]) -> tuple[int, str]:
    """Run with stdout and stderr on a pseudo-terminal; its status and everything it showed."""
    main, side = pty.openpty()
    fcntl.ioctl(side, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a sized terminal
    proc = subprocess.Popen([EXE, *args], stdin=subprocess.DEVNULL, stdout=side, stderr=side,
                            env={**os.environ, "TERM": "xterm", **env})
    os.close(side)
    shown = b""
    while True:
        ready, _, _ = select.select([main], [], [], 300)
        if not ready:
            proc.kill()
            break
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the terminal closes when the process ends
            break
        if not chunk:
            break
        shown += chunk
    os.close(main)
    return proc.wait(60), shown.decode(errors="replace")


def cases_file(tmp_path: Path) -> Path:
    """A taxonomy with one passing, one failing and one not checkable case."""
    path = tmp_path / "cases.yaml"
    path.write_text(f"""\
schema: errortaxa/v1
name: with_cases
version: "2"
extends: {DEFAULT}
resources:
  non_prototypical: {{kind: sample_list, file: no_such_list.txt, optional: true, source: test}}
cases:
  - name: husky as eskimo dog
    sample: {{target: 250, labels: [250], pred: 248}}
    expect: {{category: overlapping_classes}}
  - name: wrong on purpose
    sample: {{target: 250, labels: [250], pred: 250}}
    expect: {{category: multi_label}}
  - name: needs the list
    sample: {{target: 0, labels: [0], pred: 999, image: ILSVRC2012_val_00003189.JPEG}}
    expect: {{category: non_prototypical}}
""")
    return path


def invalid_file(tmp_path: Path) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text("schema: errortaxa/v1\nname: bad\naxes:\n  category:\n    rules:\n"
                    "      - {id: r, when: {always: true}, then: nowhere}\n")
    return path


# --- version ---------------------------------------------------------------------------------

def test_version_flag_and_attributes_agree_with_the_distributions() -> None:
    from setuptools.config.pyprojecttoml import read_configuration

    p = run("--version")
    assert p.returncode == 0 and p.stdout == f"errortaxa {errortaxa.engine.__version__}\n"
    assert errortaxa.cli.__version__ == errortaxa.engine.__version__
    # each distribution's pyproject reads its version from the attribute (one source of truth)
    # (not expanded: its packages are found by setup.py, which the pyproject alone does not run)
    engine = read_configuration(ROOT / "pyproject.toml", expand=False)
    assert "version" in engine["project"]["dynamic"]
    assert engine["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "errortaxa.engine.version.__version__"}
    client = read_configuration(ROOT / "clients" / "python" / "pyproject.toml")["project"]["version"]
    assert client == errortaxa.client.__version__


# --- quiet -----------------------------------------------------------------------------------

def test_quiet_drops_the_notes_before_or_after_the_subcommand(tmp_path: Path) -> None:
    (tmp_path / "val.txt").write_text("".join(f"{i % 1000}\n" for i in range(50_000)))
    real = tmp_path / "real.json"
    real.write_text(json.dumps([[] if i < 5 else [i % 1000] for i in range(50_000)]))
    np.savez(tmp_path / "model.npz", top1=np.arange(50_000) % 1000)
    base = ("classify", str(tmp_path / "model.npz"), "--labels", str(real), "--output", str(tmp_path / "o.jsonl"))
    p = run(*base)
    assert p.returncode == 0 and "5 image(s) without labels were skipped" in p.stderr
    for args in (("-q", *base), (*base, "--quiet")):
        p = run(*args)
        assert p.returncode == 0 and p.stderr == "", p.stderr
        assert len((tmp_path / "o.jsonl").read_text().splitlines()) == 49_995


def test_quiet_drops_the_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(f'{{"id": "{i}", "target": 1, "labels": [1], "pred": 2}}\n' for i in range(100_001)))
    out = str(tmp_path / "out.jsonl")
    status, shown = run_on_a_terminal("classify", str(inp), "--output", out, env={})
    assert status == 0 and "pred/s" in shown
    status, shown = run_on_a_terminal("classify", str(inp), "--output", out, "--quiet", env={})
    assert status == 0 and shown == ""


# --- NO_COLOR --------------------------------------------------------------------------------

def test_rules_test_colours_a_terminal_unless_no_color(tmp_path: Path) -> None:
    path = str(cases_file(tmp_path))
    status, shown = run_on_a_terminal("rules", "test", path, env={})
    assert status == 1 and "\033[32mPASS\033[0m husky" in shown and "\033[31mFAIL\033[0m wrong" in shown
    status, shown = run_on_a_terminal("rules", "test", path, env={"NO_COLOR": "1"})
    assert status == 1 and "\033[" not in shown and "PASS husky" in shown and "FAIL wrong" in shown
    p = run("rules", "test", path)  # not a terminal: plain
    assert "\033[" not in p.stdout and "SKIP needs the list" in p.stdout


# --- completion ------------------------------------------------------------------------------

def complete(script: Path, *words: str, cwd: Path) -> list[str]:
    """What the completion function offers for ``words`` (the last one being completed)."""
    quoted = " ".join(f"'{w}'" for w in words)
    line = (f'source "{script}"; COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; _errortaxa; '
            'printf "%s\\n" "${COMPREPLY[@]}"')
    p = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=60, cwd=cwd)
    assert p.returncode == 0, p.stderr
    return p.stdout.split()


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completion_knows_subcommands_options_choices_and_files(tmp_path: Path) -> None:
    p = run("completion", "bash")
    assert p.returncode == 0
    script = tmp_path / "errortaxa.bash"
    script.write_text(p.stdout)
    (tmp_path / "preds.jsonl").write_text("")
    assert "classify" in complete(script, "errortaxa", "", cwd=tmp_path)
    assert complete(script, "errortaxa", "ru", cwd=tmp_path) == ["rules"]
    assert complete(script, "errortaxa", "-q", "rules", "te", cwd=tmp_path) == ["test"]
    assert complete(script, "errortaxa", "rules", "test", "--fo", cwd=tmp_path) == ["--format"]
    assert complete(script, "errortaxa", "rules", "test", "--format", "", cwd=tmp_path) == ["text", "json", "junit"]
    assert complete(script, "errortaxa", "classify", "pr", cwd=tmp_path) == ["preds.jsonl"]
    assert complete(script, "errortaxa", "classify", "x", "--output", "pr", cwd=tmp_path) == ["preds.jsonl"]
    assert complete(script, "errortaxa", "classify", "--qu", cwd=tmp_path) == ["--quiet"]
    assert complete(script, "errortaxa", "serve", "--log-format", "", cwd=tmp_path) == ["json", "text"]
    assert complete(script, "errortaxa", "completion", "", cwd=tmp_path) == ["bash", "zsh"]


def test_zsh_completion_is_the_bash_one_through_bashcompinit(tmp_path: Path) -> None:
    p = run("completion", "zsh")
    assert p.returncode == 0 and "bashcompinit" in p.stdout
    assert "complete -o default -F _errortaxa errortaxa" in p.stdout
    zsh = shutil.which("zsh")
    if zsh is not None:
        script = tmp_path / "errortaxa.zsh"
        script.write_text(p.stdout)
        assert subprocess.run([zsh, "-n", str(script)], timeout=60).returncode == 0


# --- rules validate --format json -------------------------------------------------------------

def test_rules_validate_json_on_a_valid_and_an_invalid_taxonomy(tmp_path: Path) -> None:
    p = run("rules", "validate", DEFAULT, "--format", "json")
    assert p.returncode == 0
    report = json.loads(p.stdout)
    assert report["ok"] is True and report["taxonomy"]["name"] == "peychev2023"
    assert report["axes"] == ["category"] and report["rules"] > 0
    assert all(problem["severity"] == "warning" for problem in report["problems"])
    p = run("rules", "validate", str(invalid_file(tmp_path)), "--format", "json")
    assert p.returncode == 2
    report = json.loads(p.stdout)
    assert report["ok"] is False
    [problem] = [q for q in report["problems"] if "unknown value 'nowhere'" in q["message"]]
    assert problem["line"] == 6 and problem["severity"] == "error" and problem["file"].endswith("bad.yaml")


# --- rules test --format json | junit ---------------------------------------------------------

def test_rules_test_json_lists_every_case_with_its_status(tmp_path: Path) -> None:
    p = run("rules", "test", str(cases_file(tmp_path)), "--format", "json")
    assert p.returncode == 1
    report = json.loads(p.stdout)
    assert (report["passed"], report["failed"], report["skipped"]) == (1, 1, 1) and report["ok"] is False
    status = {case["name"]: case for case in report["cases"]}
    assert status["husky as eskimo dog"]["status"] == "passed"
    assert status["wrong on purpose"]["status"] == "failed"
    assert status["wrong on purpose"]["message"] == "category: expected multi_label, got correct"
    assert status["needs the list"]["status"] == "skipped" and "non_prototypical" in status["needs the list"]["message"]
    assert all(isinstance(case["line"], int) for case in report["cases"])


def test_rules_test_junit_is_xml_with_testcases_failures_and_skips(tmp_path: Path) -> None:
    p = run("rules", "test", str(cases_file(tmp_path)), "--format", "junit")
    assert p.returncode == 1
    root = ET.fromstring(p.stdout)
    assert root.tag == "testsuites" and root.get("tests") == "3"
    [suite] = root.findall("testsuite")
    assert (suite.get("failures"), suite.get("skipped"), suite.get("errors")) == ("1", "1", "0")
    cases = {case.get("name"): case for case in suite.findall("testcase")}
    assert set(cases) == {"husky as eskimo dog", "wrong on purpose", "needs the list"}
    assert all(case.get("classname") == "with_cases@2" and case.get("line") for case in cases.values())
    assert list(cases["husky as eskimo dog"]) == []
    [failure] = cases["wrong on purpose"].findall("failure")
    assert failure.get("message") == "category: expected multi_label, got correct"
    [skipped] = cases["needs the list"].findall("skipped")
    assert "non_prototypical" in (skipped.get("message") or "")
    p = run("rules", "test", DEFAULT, "--format", "junit")
    assert p.returncode == 0 and ET.fromstring(p.stdout).find("testsuite/testcase/failure") is None


def test_rules_test_of_an_invalid_taxonomy_in_each_format(tmp_path: Path) -> None:
    bad = str(invalid_file(tmp_path))
    p = run("rules", "test", bad, "--format", "junit")
    assert p.returncode == 2
    [error] = ET.fromstring(p.stdout).findall("testsuite/testcase/error")
    assert "unknown value 'nowhere'" in (error.text or "")
    p = run("rules", "test", bad, "--format", "json")
    assert p.returncode == 2 and json.loads(p.stdout)["ok"] is False
    p = run("rules", "test", bad)
    assert p.returncode == 2 and "unknown value 'nowhere'" in p.stderr
