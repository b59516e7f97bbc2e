"""One error hierarchy: each kind maps to CLI exit status 2 with one line, and to its gRPC status
code with the location as field details (over a real server on 127.0.0.1), by type."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from errortaxa.cli.errors import KIND_OF_STATUS, UsageError, remote_error, user_errors
from errortaxa.client import Client, FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted
from errortaxa.engine import SampleBatch, SampleError, TaxonomyError, load_taxonomy
from errortaxa.engine.errors import (
    KINDS,
    ErrorTaxaError,
    InvalidInput,
    LimitExceeded,
    Location,
    kind_of,
    kinds_of_class,
)
from errortaxa.engine.errors import AlreadyExists as EngineAlreadyExists
from errortaxa.engine.errors import DeadlineExceeded as EngineDeadlineExceeded
from errortaxa.engine.errors import FailedPrecondition as EngineFailedPrecondition
from errortaxa.engine.errors import NotFound as EngineNotFound
from errortaxa.engine.errors import PermissionDenied as EnginePermissionDenied
from errortaxa.engine.errors import Unauthenticated as EngineUnauthenticated
from errortaxa.engine.errors import Unavailable as EngineUnavailable
from errortaxa.engine.inputs import InputError, InputNeedsMore, InputNotFound, read_labels, read_predictions
from errortaxa.engine.language.problems import InvalidTaxonomy, Problem, TaxonomyNotFound
from errortaxa.engine.samples import ClassOutOfRange
from errortaxa.server import RunningServer, ServerConfig, build_server
from errortaxa.server.errors import STATUS_OF, ServiceError, from_error

ROOT = Path(__file__).resolve().parents[1]
EXE = shutil.which("errortaxa", path=str(Path(sys.executable).parent)) or "errortaxa"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=300)


def test_engine_errors_derive_from_one_base_with_a_location(tmp_path: Path) -> None:
    with pytest.raises(InputNotFound) as missing:
        read_predictions(tmp_path / "nope.jsonl")
    assert kind_of(missing.value) is EngineNotFound and missing.value.location.file == str(tmp_path / "nope.jsonl")
    (tmp_path / "real.json").write_text("[[1]]")
    with pytest.raises(InputNeedsMore) as needs:
        read_labels(tmp_path / "real.json")
    assert kind_of(needs.value) is EngineFailedPrecondition
    with pytest.raises(SampleError) as bad_sample:
        SampleBatch.from_lists(target=[1, 2], labels=[[1], [2]], pred=[1, 2000]).validate(1000)
    assert isinstance(bad_sample.value, ClassOutOfRange)
    assert (bad_sample.value.location.sample, bad_sample.value.field) == (1, "pred")
    assert str(bad_sample.value) == "sample 1: field 'pred': class id 2000 is outside 0..999"
    with pytest.raises(TaxonomyNotFound) as no_taxonomy:
        load_taxonomy(tmp_path / "absent.yaml")
    assert kind_of(no_taxonomy.value) is EngineNotFound and isinstance(no_taxonomy.value, TaxonomyError)
    with pytest.raises(TaxonomyError) as bad_taxonomy:
        load_taxonomy(tmp_path / "t.yaml", text="schema: errortaxa/v1\nname: x\nversion: '1'\naxes: 3\n")
    assert kind_of(bad_taxonomy.value) is InvalidInput and bad_taxonomy.value.location.file == str(tmp_path / "t.yaml")
    for error in (missing.value, needs.value, bad_sample.value, no_taxonomy.value, bad_taxonomy.value):
        assert isinstance(error, ErrorTaxaError)


def _project_modules() -> list[str]:
    """Every module of the project's packages (engine, applications, server, providers; not the
    standalone client distribution), by walking the source folders."""
    names = []
    for top in ("engine", "apps", "server", "providers"):
        for file in sorted((ROOT / top / "errortaxa").rglob("*.py")):
            parts = file.relative_to(ROOT / top).with_suffix("").parts
            if parts[-1] != "__main__":
                names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _subclasses(cls: type[BaseException]) -> Iterator[type[BaseException]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_every_error_class_of_the_project_derives_from_the_base_with_one_kind() -> None:
    import importlib

    modules = _project_modules()
    assert len(modules) > 100 and "errortaxa.server.store" in modules and "errortaxa.providers.oov.errors" in modules
    for name in modules:
        importlib.import_module(name)
    ours = {c for c in _subclasses(BaseException) if c.__module__ in modules}
    assert len(ours) > 40
    groups = []
    for cls in sorted(ours, key=lambda c: (c.__module__, c.__qualname__)):
        where = f"{cls.__module__}.{cls.__qualname__}"
        assert issubclass(cls, ErrorTaxaError), f"{where} is outside the one error tree"
        kinds = kinds_of_class(cls)
        assert len(kinds) <= 1, f"{where} has several kinds: {kinds}"
        if not kinds:  # a group: caught, never made as it is (or it makes one of its members)
            groups.append(cls.__name__)
            try:
                made = cls.__new__(cls)
            except TypeError:
                continue
            assert len(kinds_of_class(type(made))) == 1 and isinstance(made, cls), where
    assert sorted(groups) == ["BadRequest", "ErrorTaxaError", "InputFileError", "OOVError", "ProviderError",
                              "ServiceError", "TaxonomyError"]
    assert [c.__name__ for c in ours].count("MissingExtra") == 1


def test_a_group_makes_its_member_and_a_taxonomy_error_is_one_line() -> None:
    error = TaxonomyError([Problem("t.yaml", 4, ("axes",), "must be a mapping"), Problem("t.yaml", 5, (), "w",
                                                                                           "warning"),
                           Problem("t.yaml", 9, ("name",), "is missing")])
    assert type(error) is InvalidTaxonomy and kind_of(error) is InvalidInput
    assert str(error) == "t.yaml:4: axes: must be a mapping (and 1 more error(s))"
    missing = InputNotFound("gone.npz", "cannot read")
    assert kind_of(missing) is EngineNotFound and not isinstance(missing, InvalidInput | ValueError)
    assert not isinstance(InputNeedsMore("a", "b"), InvalidInput) and not isinstance(
        TaxonomyNotFound([Problem("x", None, (), "no such")]), InvalidInput)
    for error in (missing, TaxonomyNotFound([Problem("x", None, (), "no such")])):
        assert isinstance(error, ErrorTaxaError)


def test_location_reads_as_one_prefix() -> None:
    assert str(Location(file="in.jsonl", record=17, field="pred")) == "in.jsonl record 17: field 'pred'"
    assert str(Location(file="t.yaml", line=4, key_path=("axes", "x", "rules", 2))) == "t.yaml:4: axes.x.rules[2]"
    assert str(Location(file="p.npz", where="key 'top1' row 3 (a)")) == "p.npz key 'top1' row 3 (a)"
    assert str(InvalidInput("two\nlines", Location(sample=0))) == "sample 0: two lines"


# ---------------------------------------------------------------------------------------------
# the CLI: exit status 2 and one line, for every kind


KIND_ERRORS: list[ErrorTaxaError] = [
    InvalidInput("bad value", Location(file="f.txt", record=2, field="x")),
    EngineNotFound("no such thing", Location(file="f.txt")),
    EngineFailedPrecondition("needs the other file first", Location(file="f.txt")),
    LimitExceeded("too many samples", Location(field="samples")),
    UsageError("--flag: wrong"),
    SampleError(3, "labels", "has 2 entries for 4 samples"),
    EngineAlreadyExists("taxonomy@1 exists with other content", Location(field="version")),
    EngineUnavailable("the server is shutting down"),
    remote_error("127.0.0.1:1", "UNAVAILABLE", "failed to connect"),
    TaxonomyError([Problem("t.yaml", 4, ("axes",), "must be a mapping"), Problem("t.yaml", 9, (), "bad")]),
]


@pytest.mark.parametrize("error", KIND_ERRORS, ids=lambda e: type(e).__name__)
def test_cli_maps_every_kind_to_exit_2_and_one_line(error: ErrorTaxaError, capsys: pytest.CaptureFixture[str]
                                                    ) -> None:
    with user_errors() as status:
        raise error
    assert status.code == 2
    err = capsys.readouterr().err
    if isinstance(error, TaxonomyError):  # its problems, one a line
        assert err == "".join(f"{p}\n" for p in error.problems)
    else:
        assert err == f"errortaxa: error: {error}\n"


def test_cli_exit_2_and_one_line_from_real_files(tmp_path: Path) -> None:
    (tmp_path / "real.json").write_text("[[1]]")
    np.save(tmp_path / "model.npy", np.zeros(50_000, np.int64))
    (tmp_path / "bad.jsonl").write_text('{"image": "a", "target": 1, "labels": [1], "pred": 1000}\n')
    cases = [
        (("classify", str(tmp_path / "bad.jsonl")), "bad.jsonl record 1: field 'pred'"),  # invalid input
        (("classify", str(tmp_path / "nope.jsonl")), "nope.jsonl: cannot read: No such file"),  # not found
        (("classify", str(tmp_path / "model.npy"), "--labels", str(tmp_path / "real.json")),
         "ReaL labels need the original validation labels"),  # failed precondition
        (("rules", "validate", str(tmp_path / "absent.yaml")), "no such taxonomy file"),  # not found (taxonomy)
    ]
    for args, message in cases:
        p = run(*args)
        assert p.returncode == 2, (args, p.stderr)
        assert message in p.stderr and len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr


# ---------------------------------------------------------------------------------------------
# the server: the status code by kind, the location as field details


def test_every_kind_has_a_status_code() -> None:
    assert STATUS_OF == {InvalidInput: grpc.StatusCode.INVALID_ARGUMENT, EngineNotFound: grpc.StatusCode.NOT_FOUND,
                         EngineFailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
                         LimitExceeded: grpc.StatusCode.RESOURCE_EXHAUSTED,
                         EngineAlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
                         EngineUnavailable: grpc.StatusCode.UNAVAILABLE,
                         EnginePermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
                         EngineUnauthenticated: grpc.StatusCode.UNAUTHENTICATED,
                         EngineDeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED}
    assert set(STATUS_OF) == set(KINDS) and set(KIND_OF_STATUS.values()) == set(KINDS)
    assert all(STATUS_OF[KIND_OF_STATUS[code.name]] is code for code in STATUS_OF.values())  # the CLI's agrees
    for kind in (EngineAlreadyExists, EngineUnavailable):
        mapped = from_error(kind("the taxonomy replica is behind", Location(field="taxonomy")))
        assert (mapped.status_code, mapped.detail.field, mapped.detail.reason) == (STATUS_OF[kind], "taxonomy",
                                                                                  kind.code)
    # a status chosen below a handler is an error of the status's kind
    for code in STATUS_OF.values():
        error = ServiceError(code, "refused", field="x", reason="WHY")
        assert isinstance(error, ErrorTaxaError) and STATUS_OF[kind_of(error)] is code and error.status_code is code
        assert str(error) == "refused" and error.detail.reason == "WHY"
    # by type, never by message text: a sample error that says "outside" is not a class out of range
    mapped = from_error(SampleError(4, "images", "names an image outside the set"))
    assert (mapped.status_code, mapped.detail.reason, mapped.detail.field, mapped.detail.sample_index) == (
        grpc.StatusCode.INVALID_ARGUMENT, "INVALID_SAMPLE", "images", 4)
    mapped = from_error(ClassOutOfRange(2, "pred", "class id 1000 is too big"))
    assert mapped.detail.reason == "CLASS_OUT_OF_RANGE"
    mapped = from_error(InputError("a.csv", "bad", record=3, field="id"))
    assert (mapped.detail.field, mapped.detail.row, mapped.detail.reason) == ("id", 2, "BAD_INPUT_FILE")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def server(data_dir: Path) -> Iterator[RunningServer]:
    running = build_server(ServerConfig(host="127.0.0.1", port=0, drain_seconds=0.0, grace_seconds=2.0, max_batch=10,
                                        data_dirs=(data_dir,)))
    yield running
    running.stop(0)


def test_server_maps_every_kind_to_its_status_code(server: RunningServer, data_dir: Path) -> None:
    tmp_path = data_dir
    (tmp_path / "bad.csv").write_text("id,original_label,proposed_labels,unclear_multi_labels,is_problematic\n"
                                      "a.JPEG,1,1,,maybe\n")
    (tmp_path / "real.json").write_text("[[1]]")
    with Client(f"127.0.0.1:{server.port}", retries=0) as client:
        with pytest.raises(InvalidArgument) as invalid:
            client.register_dataset("bad", str(tmp_path / "bad.csv"))
        assert (invalid.value.field, invalid.value.row, invalid.value.reason) == ("path", 1, "BAD_INPUT_FILE")
        assert "bad.csv' record 2: field 'is_problematic': cannot be read as a label file" in str(invalid.value)
        assert "maybe" not in str(invalid.value)  # errors name the place, never the file's content
        with pytest.raises(NotFound) as missing:
            client.register_dataset("missing", str(tmp_path / "nope.csv"))
        assert (missing.value.field, missing.value.reason) == ("path", "NOT_FOUND")
        with pytest.raises(FailedPrecondition) as needs:
            client.register_dataset("real", str(tmp_path / "real.json"))
        assert (needs.value.field, needs.value.reason) == ("path", "FAILED_PRECONDITION")
        with pytest.raises(ResourceExhausted) as limit:
            client.classify(target=[1] * 11, labels=[[1]] * 11, pred=[1] * 11)
        assert (limit.value.field, limit.value.reason) == ("samples.target", "BATCH_TOO_LARGE")
        with pytest.raises(InvalidArgument) as out_of_range:
            client.classify(target=[1, 2], labels=[[1], [2]], pred=[1, 1000])
        assert (out_of_range.value.field, out_of_range.value.sample_index, out_of_range.value.reason) == (
            "samples.pred", 1, "CLASS_OUT_OF_RANGE")
        assert client.health() == "SERVING"
        assert json.dumps(client.classify(target=[1], labels=[[1]], pred=[1]).category) == '["correct"]'


def test_errors_cross_process_boundaries_intact() -> None:
    import pickle

    errors: list[ErrorTaxaError] = [
        InputError("in.jsonl", "class id 1000 is outside 0..999", record=17, field="pred"),
        InputNotFound("gone.npz", "cannot read: No such file or directory"),
        ClassOutOfRange(3, "pred", "class id 1000 is outside 0..999"),
        TaxonomyError([Problem("t.yaml", 4, ("axes",), "must be a mapping")]),
        UsageError("--flag: wrong"),
    ]
    for error in errors:
        again = pickle.loads(pickle.dumps(error))
        assert type(again) is type(error) and str(again) == str(error) and again.location == error.location
        assert again.code == error.code and again.reason == error.reason


REMOVE_ONLY = ("schema: errortaxa/v1\nname: x\nversion: '1'\naxes:\n  category:\n    values: [{id: a}]\n"
               "    rules:\n      - {id: non_prototypical, remove: true}\n")


def test_an_axis_with_only_remove_rules_is_a_located_problem(server: RunningServer, tmp_path: Path) -> None:
    """Not an IndexError: ``rules validate`` exits 2 with one line per problem, the server's
    Validate reports the problems and Put is INVALID_ARGUMENT with them."""
    path = tmp_path / "t.yaml"
    path.write_text(REMOVE_ONLY)
    with pytest.raises(TaxonomyError) as caught:
        load_and_compile(path)
    left = [p for p in caught.value.problems if p.message == "the axis has no rules left"]
    assert [(p.line, p.key_path) for p in left] == [(7, ("axes", "category", "rules"))]
    p = run("rules", "validate", str(path))
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.splitlines() == [str(problem) for problem in caught.value.problems]
    assert f"{path}:7: error: axes.category.rules: the axis has no rules left" in p.stderr.splitlines()
    with Client(f"127.0.0.1:{server.port}", retries=0) as client:
        checked = client.validate_taxonomy(REMOVE_ONLY, filename="t.yaml")
        assert not checked.ok
        assert ("axes.category.rules", 7, "the axis has no rules left") in [
            (problem.key_path, problem.line, problem.message) for problem in checked.problems]
        with pytest.raises(InvalidArgument) as refused:
            client.put_taxonomy(REMOVE_ONLY, filename="t.yaml")
        assert "the axis has no rules left" in [problem.message for problem in refused.value.problems]
        assert client.health() == "SERVING"


def load_and_compile(path: Path) -> None:
    from errortaxa.engine import compile_taxonomy

    compile_taxonomy(load_taxonomy(path))
