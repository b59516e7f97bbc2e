"""The gRPC service end to end: a real server on 127.0.0.1 (free port), the real engine and the real
default taxonomy, called through errortaxa.client."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

engine = pytest.importorskip("errortaxa.engine", reason="the engine is not installed")
if not hasattr(engine, "default_compiled"):  # pragma: no cover - while the engine is being written
    pytest.skip("the engine API is not complete yet", allow_module_level=True)

from errortaxa.client import (  # noqa: E402
    AlreadyExists,
    AsyncClient,
    Client,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from errortaxa.engine import SampleBatch, compile_taxonomy, default_compiled, evaluate, load_taxonomy  # noqa: E402
from errortaxa.server import RunningServer, ServerConfig, build_server  # noqa: E402
from errortaxa.server.logs import JsonFormatter, TextFormatter  # noqa: E402
from pg import shared_database  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
ANCHOR = DATA / "anchor-decisions-dev.jsonl"
MULTILABEL_CSV = DATA / "imagenet2012_multilabel_validation.csv"
needs_data = pytest.mark.skipif(not ANCHOR.is_file(), reason="../shared/data is absent")

ADMIN, READER = "a-secret-admin-token", "r-secret-read-token"


class _FormatEveryRecord(logging.Handler):
    """Build and format every log record of the server (as `errortaxa serve` does at INFO and DEBUG)."""

    def emit(self, record: logging.LogRecord) -> None:
        JsonFormatter().format(record)
        TextFormatter().format(record)


logging.getLogger("errortaxa").addHandler(_FormatEveryRecord())
logging.getLogger("errortaxa").setLevel(logging.DEBUG)


#: ``postgresql``: servers started without a store get a new database of a test PostgreSQL (make test-postgres)
TEST_STORE = os.environ.get("ERRORTAXA_TEST_STORE", "")
STORES = ["file", "postgresql"]


def start(**settings: Any) -> RunningServer:
    if TEST_STORE == "postgresql" and settings.get("store") is None:
        settings["store"] = shared_database()
    config = ServerConfig(**{"host": "127.0.0.1", "port": 0, "drain_seconds": 0.0, "grace_seconds": 2.0, **settings})
    return build_server(config)


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """A new store of each kind: a directory, a PostgreSQL database (tests/pg.py)."""
    if request.param == "file":
        return tmp_path / "store"
    return str(request.getfixturevalue("pg_url"))


def address(server: RunningServer) -> str:
    return f"127.0.0.1:{server.port}"


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    running = start()
    yield running
    running.stop(0)


@pytest.fixture()
def client(server: RunningServer) -> Iterator[Client]:
    with Client(address(server), retries=0, timeout=30) as c:
        yield c


def builtin_yaml() -> str:
    return default_compiled().loaded.sources[0].text


def variant_yaml(version: str, *, drop_husky_pair: bool = True, name: str | None = None) -> str:
    """The default taxonomy under another version; without the (248 <- 250) overlapping pair, so
    that target 250 predicted as 248 is decided differently."""
    text = builtin_yaml()
    text, n = re.subn(r'(?m)^version:\s*"?[^"\n]*"?\s*$', f'version: "{version}"', text, count=1)
    assert n == 1
    if name is not None:
        text, n = re.subn(r"(?m)^name:.*$", f"name: {name}", text, count=1)
        assert n == 1
    if drop_husky_pair:
        text = "".join(line for line in text.splitlines(keepends=True) if "[248, 250]" not in line)
    return text


def local(text: str | None = None) -> Any:
    return default_compiled() if text is None else compile_taxonomy(load_taxonomy("<test>", text=text))


def small_batch() -> dict[str, Any]:
    return {
        "target": [250, 65, 250, 1, 207],
        "labels": [[250], [65], [250, 248], [1], [207, 208]],
        "pred": [248, 65, 248, 1, 208],
        "images": [f"ILSVRC2012_val_{i:08d}.JPEG" for i in range(1, 6)],
    }


def jsonable(record: dict[str, Any]) -> Any:
    return json.loads(json.dumps(record))


def anchor_batch() -> SampleBatch:
    records = [json.loads(line) for line in ANCHOR.read_text().splitlines() if line.strip()]
    return SampleBatch.from_lists(
        target=[r["target"] for r in records], labels=[r["multi_labels"] for r in records],
        pred=[r["pred"] for r in records], images=[r["file"] for r in records],
        ids=[str(i) for i in range(len(records))],
    )


# ------------------------------------------------------------------------------------------- fidelity
@needs_data
def test_results_over_grpc_equal_the_local_engine(client: Client) -> None:
    batch = anchor_batch()
    decisions = evaluate(default_compiled(), batch)
    want = [jsonable(decisions.record(i)) for i in range(len(batch))]
    remote = client.classify(batch, records=True, with_evidence=True)
    assert remote.taxonomy.name == default_compiled().name
    assert remote.taxonomy.version == default_compiled().version
    assert remote.records == want
    assert remote.category == [r["category"] for r in want]
    assert remote.rule == [r["rule"] for r in want]
    assert remote.evidence == [r["evidence"] or None for r in want]
    primary = next(iter(decisions.axes.values()))
    assert np.array_equal(remote.witness, primary.witness)
    # the same over a stream, in batches
    streamed = client.classify_many(batch, batch_size=500, records=True)
    assert streamed.records == want


@needs_data
def test_summary_over_grpc_equals_local(client: Client) -> None:
    batch = anchor_batch()
    compiled = default_compiled()
    decisions = evaluate(compiled, batch)
    result = client.classify(batch, summary=True)
    assert result.summary is not None
    primary = next(iter(decisions.axes.values()))
    assert result.summary.counts == {k: v for k, v in primary.counts().items() if v}
    assert result.summary.samples == len(batch)
    assert result.summary.data["samples"] == len(batch)


@needs_data
def test_dataset_predictions_equal_local(tmp_path: Path) -> None:
    running = start(datasets={"multilabel": str(MULTILABEL_CSV)})
    try:
        from errortaxa.engine.inputs import read_labels

        labels = read_labels(MULTILABEL_CSV)
        rng = np.random.default_rng(0)
        pred = rng.integers(0, 1000, size=len(labels))
        pred[:500] = labels.target[:500]
        want = evaluate(default_compiled(), labels.to_batch(pred))
        with Client(address(running), retries=0) as c:
            info = c.get_dataset("multilabel")
            assert (info.size, info.problematic, info.format) == (20_000, 1308, "multilabel-csv")
            assert [d.name for d in c.list_datasets()] == ["multilabel"]
            assert c.dataset_images("multilabel") == labels.images
            in_order = c.classify_dataset_many("multilabel", pred=pred, batch_size=7000)
            assert in_order.category == [want.record(i)["category"] for i in range(len(labels))]
            # keyed by image id, in another order, as logits
            rows = rng.permutation(len(labels))[:300]
            logits = np.zeros((300, 1000), np.float32)
            logits[np.arange(300), pred[rows]] = 5.0
            keyed = c.classify_dataset("multilabel", logits=logits, images=[labels.images[r] for r in rows])
            assert keyed.rows is not None and keyed.rows.tolist() == rows.tolist()
            assert keyed.category == [want.record(int(r))["category"] for r in rows]
            with pytest.raises(NotFound) as err:
                c.classify_dataset("multilabel", pred=[1, 2], images=[labels.images[0], "nope.JPEG"])
            assert err.value.field == "dataset.images" and err.value.sample_index == 1
            with pytest.raises(NotFound):
                c.classify_dataset("nothing", pred=[1])
            with pytest.raises(InvalidArgument) as err:
                c.classify_dataset("multilabel", pred=[1, 2], offset=19_999)
            assert err.value.field == "dataset.offset"
    finally:
        running.stop(0)


def _dataset_files(root: Path) -> dict[str, tuple[Path, str, int, int]]:
    """One small label file per format: name -> (path, format, size, problematic)."""
    names = [f"ILSVRC2012_val_{i:08d}.JPEG" for i in range(1, 7)]
    root.mkdir(parents=True, exist_ok=True)
    csv_path = root / "multilabel.csv"
    csv_path.write_text(
        "id,category,original_label,proposed_labels,manually_validated,unclear_multi_labels,wrong_multi_labels,"
        "is_problematic\n"
        f'{names[0]},A,250,"250, 248",True,,,False\n'
        f"{names[1]},A,65,65,True,66,,False\n"
        f"{names[2]},M,207,,True,,,True\n"
        f'{names[3]},A,1,"1, 2",True,,"5",False\n'
        f"{names[4]},A,999,999,True,,,False\n")
    real = root / "real" / "real.json"
    real.parent.mkdir()
    real.write_text(json.dumps([[250, 248], [], [207, 208], [1], [0], [999]]))
    (real.parent / "val.txt").write_text("".join(f"{n} {t}\n" for n, t in zip(names, [250, 65, 207, 1, 0, 999],
                                                                                  strict=True)))
    targets = root / "targets.txt"
    targets.write_text("250\n65\n207\n1\n")
    jsonl = root / "samples.jsonl"
    jsonl.write_text("".join(json.dumps({"image": n, "target": t, "labels": ls, "pred": t, "problematic": i == 1})
                             + "\n" for i, (n, t, ls) in enumerate(zip(names, [250, 65, 207], [[250, 248], [65], []],
                                                                         strict=False))))
    return {"csv": (csv_path, "multilabel-csv", 5, 1), "real": (real, "real-json", 5, 0),
            "targets": (targets, "targets", 4, 0), "jsonl": (jsonl, "jsonl", 3, 1)}


def test_every_dataset_format_by_config_and_admin_call(tmp_path: Path) -> None:
    from errortaxa.engine.inputs import read_labels
    from errortaxa.engine.inputs.formats.jsonl import read_jsonl

    files = _dataset_files(tmp_path / "labels")
    store = tmp_path / "store"
    running = start(store=store, datasets={name: str(files[name][0]) for name in ("csv", "real")},
                    data_dirs=(tmp_path / "labels",))
    try:
        with Client(address(running), retries=0) as c:
            for name in ("targets", "jsonl"):  # the admin call
                assert c.register_dataset(name, str(files[name][0])).format == files[name][1]
            assert [d.name for d in c.list_datasets()] == sorted(files)
            for name, (path, fmt, size, problematic) in files.items():
                info = c.get_dataset(name)
                assert (info.format, info.size, info.problematic) == (fmt, size, problematic), name
                if fmt == "jsonl":
                    held = read_jsonl(path)
                    images, batch_of = list(held.images or []), lambda pred, held=held: dataclasses.replace(
                        held, pred=np.asarray(pred, np.int32))
                else:
                    labels = read_labels(path)
                    images, batch_of = labels.images, labels.to_batch
                assert c.dataset_images(name) == images
                pred = (np.arange(size) * 37 + 248) % 1000
                want = evaluate(default_compiled(), batch_of(pred))
                in_order = c.classify_dataset(name, pred=pred, records=True)  # top-1, dataset order
                assert in_order.records == [jsonable(want.record(i)) for i in range(size)], name
                chunked = c.classify_dataset_many(name, pred=pred, batch_size=2)  # in chunks, from offsets
                assert chunked.category == in_order.category
                rows = list(reversed(range(size)))  # logits keyed by image id, in another order
                logits = np.zeros((size, 1000), np.float32)
                logits[np.arange(size), pred[rows]] = 3.0
                keyed = c.classify_dataset(name, logits=logits, images=[images[r] for r in rows])
                assert keyed.category == [in_order.category[r] for r in rows]
                assert keyed.rows is not None and keyed.rows.tolist() == rows
    finally:
        running.stop(0)
    again = start(store=store)  # the registered datasets are remembered in the store, the configured ones not
    try:
        with Client(address(again), retries=0) as c:
            assert [d.name for d in c.list_datasets()] == ["jsonl", "targets"]
    finally:
        again.stop(0)


# ------------------------------------------------------------------------------------------- basics
def test_classify_lists_and_numpy(client: Client) -> None:
    columns = small_batch()
    want = evaluate(local(), SampleBatch.from_lists(**columns))
    got = client.classify(**columns, records=True)
    assert got.records == [jsonable(want.record(i)) for i in range(5)]
    as_numpy = client.classify(target=np.array(columns["target"]), pred=np.array(columns["pred"], np.int64),
                               labels=columns["labels"])
    assert as_numpy.category == got.category
    assert len(got) == 5 and got.category[0] == "overlapping_classes"


def test_explain_names_every_rule(client: Client) -> None:
    explanation = client.explain(target=[250], labels=[[250]], pred=[248])
    rules = [t.rule for t in explanation.traces]
    assert rules == local().axes[local().primary_axis].rule_ids
    decided = [t for t in explanation.traces if t.decided]
    assert len(decided) == 1 and decided[0].rule == "overlapping_classes" and decided[0].outcome == "held"
    assert explanation.traces[0].outcome == "failed" and explanation.traces[0].reason
    assert explanation.record["category"] == "overlapping_classes"


def test_explain_evaluates_only_the_requested_record(client: Client) -> None:
    # sample 1 reaches the OOV rule, whose evidence is not JSON: evaluating it would be an error
    columns = {"target": [250, 1], "labels": [[250], [1]], "pred": [248, 900]}
    with pytest.raises(InvalidArgument):
        client.classify(**columns, evidence=["", "not json"])
    explanation = client.explain(**columns, evidence=["", "not json"], index=0)
    assert explanation.record == jsonable(evaluate(local(), SampleBatch.from_lists(**columns)).record(0))
    assert [t.decided for t in explanation.traces].count(True) == 1


def test_request_evidence_feeds_the_oov_rule(client: Client) -> None:
    columns = {"target": [1, 1], "labels": [[1], [1]], "pred": [900, 900]}
    plain = client.classify(**columns)
    assert plain.category[0] not in {"correct", "overlapping_classes", "multi_label", "fine_grained"}
    proposals = [["n04254680", "soccer_ball", 0.7]]
    evidence = [{"oov": {"fine_grained_oov": True, "proposals": proposals}}, None]
    got = client.classify(**columns, evidence=evidence, records=True)
    assert got.category[0] == "fine_grained_oov"
    assert got.records[0]["evidence"]["feature"] == {"proposals": proposals}
    assert got.category[1] == plain.category[1]
    assert got.records[1]["evidence"]["not_evaluated"][0]["rule"] == "fine_grained_oov"


def test_taxonomy_listing_and_text(client: Client) -> None:
    infos = client.list_taxonomies()
    assert sum(i.active for i in infos) == 1
    active, text = client.get_taxonomy()
    assert active.builtin and active.active and text == builtin_yaml()
    assert active.axes[0].rules == local().axes[local().primary_axis].rule_ids
    ok = client.validate_taxonomy(variant_yaml("9.9"))
    assert ok.ok and ok.taxonomy is not None and ok.taxonomy.version == "9.9"


def test_validate_reports_every_problem_with_line_and_key(client: Client) -> None:
    text = builtin_yaml().replace("then: multi_label", "then: no_such_category", 1)
    result = client.validate_taxonomy(text, filename="mine.yaml")
    assert not result.ok and result.problems
    problem = next(p for p in result.problems if p.severity == "error")
    assert problem.file == "mine.yaml" and problem.line > 0 and problem.key_path
    assert client.validate_taxonomy("extends: /etc/passwd\n").ok is False


def test_uploaded_extends_cannot_read_a_file_of_the_server(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "leakedsecret"
    (tmp_path / "leak.yaml").write_text(variant_yaml("7.7", name=secret), encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # the in-process server's working directory holds leak.yaml
    for parent in ("leak.yaml", "leak", str(tmp_path / "leak.yaml"), "../" + tmp_path.name + "/leak.yaml"):
        upload = f"extends: {parent}\nversion: '6.6'\n"
        result = client.validate_taxonomy(upload, filename="up.yaml")
        assert not result.ok and result.taxonomy is None
        assert [p.key_path for p in result.problems] == ["extends"]
        assert "can only extend a built-in name" in result.problems[0].message
        assert secret not in str(result.problems)
        with pytest.raises(InvalidArgument) as err:
            client.put_taxonomy(upload, filename="up.yaml")
        assert "can only extend a built-in name" in err.value.problems[0].message
        assert secret not in str(err.value)
    # built-in names still resolve, also a built-in that extends another by its own relative path
    for parent in ("imagenet/peychev2023", "imagenet/vasudevan2022_severity"):
        result = client.validate_taxonomy(f"extends: {parent}\nversion: '6.6'\n")
        assert result.ok and result.taxonomy is not None and result.taxonomy.version == "6.6"


def test_uploaded_resources_cannot_read_a_file_of_the_server(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "list.txt").write_text("ILSVRC2012_val_00000001.JPEG\n", encoding="utf-8")
    np.savez(tmp_path / "table.npz", counts=np.ones((1000, 1000), np.int32))
    monkeypatch.chdir(tmp_path)  # the in-process server's working directory holds the files
    monkeypatch.delenv("ERRORTAXA_DATA_DIR", raising=False)
    for kind, name in (("sample_list", "list.txt"), ("sample_list", str(tmp_path / "list.txt")),
                       ("cooccurrence", "table.npz"), ("cooccurrence", str(tmp_path / "table.npz"))):
        upload = (f"extends: imagenet/peychev2023\nversion: '6.6'\n"
                  f"resources:\n  mine: {{kind: {kind}, file: '{name}', source: test}}\n")
        result = client.validate_taxonomy(upload, filename="up.yaml")
        assert not result.ok, (kind, name)
        mine = [p for p in result.problems if p.key_path == "resources.mine.file"]
        assert len(mine) == 1 and "not found" in mine[0].message


def test_stream_keeps_order_and_reports_progress(client: Client) -> None:
    rng = np.random.default_rng(1)
    n = 25_000
    target = rng.integers(0, 1000, n)
    pred = np.where(rng.random(n) < 0.5, target, rng.integers(0, 1000, n))
    seen: list[tuple[int, int | None]] = []
    result = client.classify_many(target=target, pred=pred, label_offsets=np.arange(n + 1),
                                  label_values=target, batch_size=10_000,
                                  progress=lambda done, total: seen.append((done, total)))
    whole = client.classify(target=target, pred=pred, label_offsets=np.arange(n + 1), label_values=target)
    assert result.category == whole.category
    assert seen == [(10_000, n), (20_000, n), (25_000, n)]


def test_stream_sends_at_most_max_in_flight_batches_ahead(client: Client) -> None:
    produced = [0]
    ahead: list[int] = []

    def batches() -> Iterator[dict[str, Any]]:
        for _ in range(30):
            produced[0] += 1
            yield small_batch()

    received = 0
    for result in client.classify_stream(batches(), max_in_flight=3):
        received += 1
        ahead.append(produced[0] - received)
        assert len(result) == 5
    assert received == 30 and max(ahead) <= 3


def test_async_client(server: RunningServer) -> None:
    async def run() -> tuple[list[str | None], list[int], str]:
        async with AsyncClient(address(server), retries=0) as c:
            one = await c.classify(**small_batch())

            async def batches() -> Any:
                for _ in range(3):
                    yield small_batch()

            sizes = [len(r) async for r in c.classify_stream(batches(), max_in_flight=1)]
            return one.category, sizes, await c.health()

    category, sizes, health = asyncio.run(run())
    assert category[0] == "overlapping_classes" and sizes == [5, 5, 5] and health == "SERVING"


def test_reflection_lists_the_services(server: RunningServer) -> None:
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )

    with grpc.insecure_channel(address(server)) as channel:
        services = set(ProtoReflectionDescriptorDatabase(channel).get_services())
    assert {"errortaxa.v1.ErrorTaxa", "grpc.health.v1.Health"} <= services


# ------------------------------------------------------------------------------------------- bad requests
BAD_REQUESTS = {
    "class id out of range": (
        lambda c: c.classify(target=[1, 2, 3], labels=[[1], [2], [3]], pred=[1, 1000, 2]),
        InvalidArgument, "samples.pred", 1),
    "negative label": (
        lambda c: c.classify(target=[1, 2], labels=[[1], [2, -4]], pred=[1, 2]),
        InvalidArgument, "samples.label_values", 1),
    "lists of different lengths": (
        lambda c: c.classify(target=[1, 2, 3], labels=[[1], [2], [3]], pred=[1, 2]),
        InvalidArgument, "samples.pred", 2),
    "images of another length": (
        lambda c: c.classify(target=[1, 2], labels=[[1], [2]], pred=[1, 2], images=["a"]),
        InvalidArgument, "samples.images", 1),
    "label offsets of another length": (
        lambda c: c.classify(target=[1, 2], pred=[1, 2], label_offsets=[0, 1], label_values=[1]),
        InvalidArgument, "samples.label_offsets", 1),
    "unknown taxonomy version": (
        lambda c: c.classify(target=[1], labels=[[1]], pred=[1], taxonomy="peychev2023@no-such-version"),
        NotFound, "taxonomy.version", None),
    "unknown taxonomy": (
        lambda c: c.classify(target=[1], labels=[[1]], pred=[1], taxonomy="nope"),
        NotFound, "taxonomy.name", None),
    "explain index out of range": (
        lambda c: c.explain(target=[1], labels=[[1]], pred=[1], index=3),
        InvalidArgument, "index", 3),
    "evidence of another length": (
        lambda c: c.classify(target=[1, 2], labels=[[1], [2]], pred=[1, 2], evidence=["{}"]),
        InvalidArgument, "samples.oov.evidence_json", 1),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_request_gets_the_right_code_and_the_server_keeps_serving(client: Client, case: str) -> None:
    call, error, field, index = BAD_REQUESTS[case]
    with pytest.raises(error) as caught:
        call(client)
    assert caught.value.field == field
    assert caught.value.sample_index == index
    assert client.health() == "SERVING"
    assert client.classify(**small_batch()).category[0] == "overlapping_classes"


def test_malformed_taxonomy_upload(tmp_path: Path) -> None:
    running = start(store=tmp_path / "store")
    try:
        with Client(address(running), retries=0) as c:
            with pytest.raises(InvalidArgument) as err:
                c.put_taxonomy("name: broken\nversion: '1'\naxes: [1, 2\n", filename="broken.yaml")
            assert err.value.problems and err.value.problems[0].file == "broken.yaml"
            assert err.value.problems[0].line >= 1
            text = builtin_yaml().replace("then: multi_label", "then: no_such_category", 1)
            with pytest.raises(InvalidArgument) as err:
                c.put_taxonomy(text)
            assert any(p.key_path for p in err.value.problems)
            # an extension whose rules are not a list (here: empty) is named, not an INTERNAL
            child = "schema: errortaxa/v1\nname: child\nversion: '1'\nextends: imagenet/peychev2023\n" \
                    "axes:\n  category:\n    rules:\n"
            checked = c.validate_taxonomy(child)
            assert not checked.ok and checked.problems[0].key_path == "axes.category.rules"
            with pytest.raises(InvalidArgument) as err:
                c.put_taxonomy(child)
            assert err.value.problems[0].key_path == "axes.category.rules"
            assert c.list_taxonomies() == [c.get_taxonomy()[0]]  # nothing stored
            assert c.health() == "SERVING"
    finally:
        running.stop(0)


def test_oversized_message_is_refused_and_the_server_keeps_serving() -> None:
    running = start(max_message_mb=1)
    try:
        with Client(address(running), retries=0) as c:
            n = 400_000  # ~ 2.5 MB of packed columns
            with pytest.raises(ResourceExhausted):
                c.classify(target=np.ones(n, int), pred=np.ones(n, int), label_offsets=np.arange(n + 1),
                           label_values=np.ones(n, int))
            assert c.health() == "SERVING"
            assert c.classify(**small_batch()).category[0] == "overlapping_classes"
    finally:
        running.stop(0)


def test_batch_over_the_sample_limit() -> None:
    running = start(max_batch=10)
    try:
        with Client(address(running), retries=0) as c:
            with pytest.raises(ResourceExhausted) as err:
                c.classify(target=[1] * 11, labels=[[1]] * 11, pred=[1] * 11)
            assert err.value.reason == "BATCH_TOO_LARGE"
            assert len(c.classify_many(target=[1] * 25, labels=[[1]] * 25, pred=[1] * 25, batch_size=10)) == 25
    finally:
        running.stop(0)


# ------------------------------------------------------------------------------------------- remote CLI
def test_remote_classify_prints_the_same_as_local_mode(server: RunningServer, tmp_path: Path) -> None:
    """``errortaxa classify INPUT --server HOST:PORT`` writes byte for byte what local mode writes: the
    records and the summary. Fields that may legitimately differ (not here: same engine, same default
    taxonomy, no OOV model on either side): the summary's ``engine_version`` (the server's engine) and
    ``taxonomy`` (the server's active version), and, when the server has an OOV model and the local
    run has none (or the reverse), the OOV decisions and ``not_evaluated`` reasons."""
    exe = shutil.which("errortaxa", path=str(Path(sys.executable).parent)) or "errortaxa"
    rng = np.random.default_rng(7)
    n = 2500
    target = rng.integers(0, 1000, n)
    pred = np.where(rng.random(n) < 0.6, target, rng.integers(0, 1000, n))
    pred[:50] = 248
    target[:50] = 250
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps({"id": f"s{i}", "image": f"ILSVRC2012_val_{i + 1:08d}.JPEG",
                                       "target": int(target[i]), "pred": int(pred[i]), "problematic": i % 17 == 0,
                                       "labels": sorted({int(target[i]), int(rng.integers(0, 1000))})}) + "\n"
                           for i in range(n)))
    npz = tmp_path / "model.npz"
    np.savez(npz, top1=pred[:40], images=np.array([f"ILSVRC2012_val_{i + 1:08d}.JPEG" for i in range(40)]))
    labels = tmp_path / "val.txt"  # 30 of the 40 images have labels: 10 skipped
    labels.write_text("".join(f"ILSVRC2012_val_{i + 1:08d}.JPEG {target[i]}\n" for i in range(30)))
    remote = ["--server", address(server)]

    def classify(source: Path, *flags: str) -> tuple[bytes, bytes, str]:
        out, summary = tmp_path / "out.jsonl", tmp_path / "summary.json"
        done = subprocess.run([exe, "classify", str(source), "--output", str(out), "--summary", str(summary),
                               *flags], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return out.read_bytes(), summary.read_bytes(), done.stderr

    for source, extra in ((inp, []), (npz, ["--labels", str(labels)])):
        local = classify(source, *extra)
        assert classify(source, *extra, *remote) == local, source.name
    assert "10 image(s) without labels were skipped" in local[2]
    assert json.loads(local[1])["skipped_without_labels"] == 10
    printed = subprocess.run([exe, "classify", str(npz), "--labels", str(labels), *remote], capture_output=True,
                             text=True, timeout=300)
    assert printed.returncode == 0 and printed.stdout.encode() == local[0]  # to stdout: the same bytes


def test_concurrent_call_limit_and_client_deadlines() -> None:
    from errortaxa.client import DeadlineExceeded

    running = start(max_concurrent_rpcs=1, concurrency=2, max_streams=1)
    try:
        with Client(address(running), retries=0) as c:
            release, answered = threading.Event(), threading.Event()

            def held_open() -> Iterator[dict[str, Any]]:
                yield small_batch()
                release.wait(30)  # the stream stays open (one call in progress) until released

            def stream() -> None:
                for _ in c.classify_stream(held_open()):
                    answered.set()

            holder = threading.Thread(target=stream)
            holder.start()
            assert answered.wait(30)
            with pytest.raises(ResourceExhausted):  # a second stream while one is open
                list(c.classify_stream([small_batch()]))
            assert c.classify(**small_batch()).category[0] == "overlapping_classes"  # the open one is idle
            release.set()
            holder.join(30)
            assert c.classify(**small_batch()).category[0] == "overlapping_classes"  # served again
            n = 300_000
            with pytest.raises(DeadlineExceeded):
                c.classify(target=np.ones(n, int), pred=np.ones(n, int), label_offsets=np.arange(n + 1),
                           label_values=np.ones(n, int), timeout=0.001)
            assert c.health() == "SERVING"
    finally:
        running.stop(0)


# ------------------------------------------------------------------------------------------- auth
def test_auth_tokens(tmp_path: Path) -> None:
    running = start(store=tmp_path / "store", read_tokens={"alice": READER}, admin_tokens={"ops": ADMIN})
    try:
        target = address(running)
        with Client(target, retries=0) as anonymous:
            for call in (lambda: anonymous.put_taxonomy(variant_yaml("2.0")),
                         lambda: anonymous.activate_taxonomy("peychev2023@1.0"),
                         lambda: anonymous.delete_taxonomy("peychev2023@2.0"),
                         lambda: anonymous.classify(**small_batch()),
                         lambda: list(anonymous.classify_stream([small_batch()])),
                         lambda: anonymous.health()):
                with pytest.raises(Unauthenticated):
                    call()
        with Client(target, token="wrong", retries=0) as wrong, pytest.raises(Unauthenticated):
            wrong.list_taxonomies()
        with Client(target, token=READER, retries=0) as reader:
            assert reader.classify(**small_batch()).category[0] == "overlapping_classes"
            assert reader.validate_taxonomy(variant_yaml("2.0")).ok
            for call in (lambda: reader.put_taxonomy(variant_yaml("2.0")),
                         lambda: reader.activate_taxonomy("peychev2023@1.0"),
                         lambda: reader.delete_taxonomy("peychev2023@2.0"),
                         lambda: reader.register_dataset("x", "/nonexistent")):
                with pytest.raises(PermissionDenied):
                    call()
        with Client(target, token=ADMIN, retries=0) as admin:
            stored = admin.put_taxonomy(variant_yaml("2.0"), activate=True)
            assert stored.created and stored.taxonomy.created_by == "ops"
            admin.activate_taxonomy("peychev2023@1.0")
            admin.delete_taxonomy("peychev2023@2.0")
        audit = [json.loads(line) for line in (tmp_path / "store" / "audit.jsonl").read_text().splitlines()]
        intents = [a for a in audit if a["phase"] == "intent"]
        assert [(a["action"], a["who"], a["version"]) for a in intents] == [
            ("put", "ops", "2.0"), ("activate", "ops", "2.0"), ("activate", "ops", "1.0"), ("delete", "ops", "2.0")]
        # each intent is followed by its done record before the next change begins
        assert [(a["id"], a["phase"]) for a in audit] == [(i["id"], p) for i in intents for p in ("intent", "done")]
        assert all(a["outcome"] == "applied" for a in audit if a["phase"] == "done")
        assert all(a["time"].endswith("Z") for a in audit)
    finally:
        running.stop(0)


def test_public_health_needs_no_token() -> None:
    running = start(admin_tokens={"ops": ADMIN}, public_health=True)
    try:
        with Client(address(running), retries=0) as anonymous:
            assert anonymous.health() == "SERVING"
            with pytest.raises(Unauthenticated):
                anonymous.list_taxonomies()
    finally:
        running.stop(0)


# ------------------------------------------------------------------------------------------- taxonomy store
def test_put_activate_delete_rules(store: Path | str) -> None:
    running = start(store=store)
    try:
        with Client(address(running), retries=0) as c:
            first = c.put_taxonomy(variant_yaml("2.0"))
            assert first.created and not first.taxonomy.active
            again = c.put_taxonomy(variant_yaml("2.0"))
            assert not again.created
            with pytest.raises(AlreadyExists):
                c.put_taxonomy(variant_yaml("2.0", drop_husky_pair=False))
            with pytest.raises(AlreadyExists):
                c.put_taxonomy(variant_yaml("1.0"))  # the builtin's name and version, other content
            c.activate_taxonomy("peychev2023@2.0")
            with pytest.raises(FailedPrecondition):
                c.delete_taxonomy("peychev2023@2.0")
            with pytest.raises(FailedPrecondition):
                c.delete_taxonomy("peychev2023@1.0")
            # a name without a version: the active one
            assert c.classify(**small_batch(), taxonomy="peychev2023").version == "2.0"
            c.activate_taxonomy("peychev2023@1.0")
            # explicit versions are served side by side
            assert c.classify(**small_batch(), taxonomy="peychev2023@2.0").category[0] != \
                c.classify(**small_batch()).category[0]
            c.delete_taxonomy("peychev2023@2.0")
            with pytest.raises(NotFound):
                c.delete_taxonomy("peychev2023@2.0")
            # a name that is not active: its newest stored version
            c.put_taxonomy(variant_yaml("1", name="trial"))
            c.put_taxonomy(variant_yaml("2", name="trial"))
            assert c.classify(**small_batch(), taxonomy="trial").taxonomy.ref == "trial@2"
            c.delete_taxonomy("trial@2")
            assert c.classify(**small_batch(), taxonomy="trial").taxonomy.ref == "trial@1"
            c.delete_taxonomy("trial@1")
            with pytest.raises(NotFound):
                c.classify(**small_batch(), taxonomy="trial")
            with pytest.raises(NotFound):
                c.classify(**small_batch(), taxonomy="peychev2023@2.0")
    finally:
        running.stop(0)


def test_restart_serves_the_last_activated_version(store: Path | str) -> None:
    running = start(store=store)
    with Client(address(running), retries=0) as c:
        c.put_taxonomy(variant_yaml("2.0"), activate=True)
        c.put_taxonomy(variant_yaml("3.0"))  # stored, never activated
    running.stop(0)
    crashed = store / ".datasets.json.0badc0de.partial" if isinstance(store, Path) else None
    if crashed is not None:
        crashed.write_text("{half")  # a crash mid-write leaves only a temporary file
    again = start(store=store)
    try:
        with Client(address(again), retries=0) as c:
            assert c.get_taxonomy()[0].version == "2.0"
            result = c.classify(**small_batch())
            assert result.version == "2.0"
            assert result.category == [
                evaluate(local(variant_yaml("2.0")), SampleBatch.from_lists(**small_batch())).record(i)["category"]
                for i in range(5)]
            versions = {(i.version, i.active) for i in c.list_taxonomies()}
            assert versions == {("1.0", False), ("2.0", True), ("3.0", False)}
        assert crashed is None or not crashed.exists()
    finally:
        again.stop(0)


def test_hot_reload_under_concurrent_clients_loses_nothing(store: Path | str) -> None:
    running = start(store=store, concurrency=8)
    target = address(running)
    columns = small_batch()
    batch = SampleBatch.from_lists(**columns)
    expected = {
        "1.0": [evaluate(local(), batch).record(i)["category"] for i in range(5)],
        "2.0": [evaluate(local(variant_yaml("2.0")), batch).record(i)["category"] for i in range(5)],
    }
    assert expected["1.0"] != expected["2.0"]
    stop = threading.Event()
    seen: list[tuple[str, list[str | None]]] = []
    failures: list[BaseException] = []
    attempts = [0]
    lock = threading.Lock()

    def worker() -> None:
        with Client(target, retries=0) as c:
            while not stop.is_set():
                with lock:
                    attempts[0] += 1
                try:
                    result = c.classify(**columns)
                except BaseException as exc:  # every failure is a lost request
                    failures.append(exc)
                    return
                with lock:
                    seen.append((result.version, result.category))

    try:
        with Client(target, retries=0) as admin:
            admin.put_taxonomy(variant_yaml("2.0"))
            threads = [threading.Thread(target=worker) for _ in range(4)]
            for t in threads:
                t.start()
            for _ in range(8):
                admin.activate_taxonomy("peychev2023@2.0")
                time.sleep(0.05)
                admin.activate_taxonomy("peychev2023@1.0")
                time.sleep(0.05)
            stop.set()
            for t in threads:
                t.join(30)
        assert not failures
        assert len(seen) == attempts[0] > 20
        assert {version for version, _ in seen} == {"1.0", "2.0"}
        for version, categories in seen:  # every response is consistent with the version it names
            assert categories == expected[version]
    finally:
        running.stop(0)


def test_a_stream_keeps_the_version_it_started_with(store: Path | str) -> None:
    running = start(store=store)
    try:
        with Client(address(running), retries=0) as admin, Client(address(running), retries=0) as c:
            admin.put_taxonomy(variant_yaml("2.0"))

            def batches() -> Iterator[dict[str, Any]]:
                yield small_batch()
                admin.activate_taxonomy("peychev2023@2.0")  # after the first batch was answered
                for _ in range(3):
                    yield small_batch()

            versions = [r.version for r in c.classify_stream(batches(), max_in_flight=1)]
            assert versions == ["1.0"] * 4
            assert c.classify(**small_batch()).version == "2.0"
    finally:
        running.stop(0)


# ------------------------------------------------------------------------------------------- lifecycle
def test_health_goes_not_serving_while_draining() -> None:
    running = start(drain_seconds=1.5)
    target = address(running)
    with Client(target, retries=0) as c:
        assert c.health() == "SERVING"
        drainer = threading.Thread(target=running.drain)
        drainer.start()
        deadline = time.monotonic() + 1.0
        status = "SERVING"
        while status == "SERVING" and time.monotonic() < deadline:
            status = c.health()
        assert status == "NOT_SERVING"
        assert c.classify(**small_batch()).category[0] == "overlapping_classes"  # still served
        drainer.join(10)
        assert running.wait(0)
        with pytest.raises(Unavailable):
            c.classify(**small_batch(), timeout=2)


class ServerProcess:
    """``python -m errortaxa.server`` in a subprocess; the port comes from its "serving" log line."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.lines: list[str] = []
        self.port = 0
        self._ready = threading.Event()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "errortaxa.server", "--port", "0", "--log-format", "json", *args],
            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}, cwd=ROOT)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        assert self._ready.wait(60), "".join(self.lines)

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if entry.get("msg") == "serving":
                self.port = int(entry["port"])
                self._ready.set()

    def messages(self) -> list[str]:
        self._reader.join(5)
        return [json.loads(line).get("msg") for line in self.lines if line.startswith("{")]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def test_sigterm_drains_and_exits_cleanly(tmp_path: Path) -> None:
    server = ServerProcess(env={"ERRORTAXA_DRAIN_SECONDS": "1.5", "ERRORTAXA_STORE": str(tmp_path / "store")})
    try:
        with Client(f"127.0.0.1:{server.port}", retries=0) as c:
            assert c.health() == "SERVING"
            server.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 1.2
            status = "SERVING"
            while status == "SERVING" and time.monotonic() < deadline:
                status = c.health()
            assert status == "NOT_SERVING"
        assert server.process.wait(30) == 0
        messages = server.messages()
        assert "draining" in messages and "stopped" in messages
    finally:
        server.close()


def test_a_crash_keeps_the_activated_version(tmp_path: Path) -> None:
    store = tmp_path / "store"
    server = ServerProcess("--store", str(store))
    try:
        with Client(f"127.0.0.1:{server.port}", retries=0) as c:
            c.put_taxonomy(variant_yaml("2.0"), activate=True)
        server.process.kill()  # SIGKILL: no drain, no clean stop
        server.process.wait()
    finally:
        server.close()
    again = start(store=store)
    try:
        with Client(address(again), retries=0) as c:
            assert c.classify(**small_batch()).version == "2.0"
    finally:
        again.stop(0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Restarts:
    """A server on a fixed port that the test stops and starts again (``restart`` returns at once;
    the new server binds after ``delay`` seconds). ``start_after``: the first one too."""

    def __init__(self, start_after: float | None = None, **settings: Any) -> None:
        self.config = ServerConfig(**{"host": "127.0.0.1", "port": _free_port(), "drain_seconds": 0.0, **settings})
        self.servers: list[RunningServer] = []
        self._timers: list[threading.Timer] = []
        if start_after is None:
            self.servers.append(build_server(self.config))
        else:
            self._later(start_after)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.config.port}"

    def _later(self, delay: float, before_start: Any = None) -> None:
        def start_again() -> None:
            if before_start is not None:
                before_start()
            self.servers.append(build_server(self.config))

        timer = threading.Timer(delay, start_again)
        self._timers.append(timer)
        timer.start()

    def restart(self, delay: float = 1.0, before_start: Any = None) -> None:
        self.servers[-1].stop(0)
        self._later(delay, before_start)

    def close(self) -> None:
        for timer in self._timers:
            timer.join()
        for running in self.servers:
            running.stop(0)


def numbered_batches(count: int) -> list[dict[str, Any]]:
    """``count`` copies of small_batch() whose sample ids name the batch: "<batch>.<sample>"."""
    return [{**small_batch(), "ids": [f"{b}.{i}" for i in range(5)]} for b in range(count)]


def ids_of(results: list[Any]) -> list[list[str]]:
    return [[r["id"] for r in result.records] for result in results]


def test_channel_options_given_to_the_client_replace_its_own(server: RunningServer) -> None:
    """gRPC keeps the first of two options with one name: the caller's must replace the client's."""
    small = [("grpc.max_receive_message_length", 200)]
    with Client(address(server), retries=0, options=small) as c:
        with pytest.raises(ResourceExhausted):
            c.classify(**small_batch(), records=True)
    with Client(address(server), retries=0) as c:
        assert len(c.classify(**small_batch(), records=True)) == 5


def test_client_retries_unavailable_with_backoff() -> None:
    server = Restarts(start_after=0.5)
    try:
        with Client(server.target, backoff=0.1, max_backoff=1.0) as c:  # waits for the server, then retries
            assert c.classify(**small_batch(), timeout=5).category[0] == "overlapping_classes"
        with Client(f"127.0.0.1:{_free_port()}", retries=1, backoff=0.01) as nobody, pytest.raises(Unavailable):
            nobody.health(timeout=2)  # a health check does not wait: UNAVAILABLE after its retry
    finally:
        server.close()


def test_unary_calls_are_retried_across_a_server_restart_on_the_same_port() -> None:
    server = Restarts()
    try:
        with Client(server.target) as c:  # default retries and backoff
            assert c.classify(**small_batch()).category[0] == "overlapping_classes"
            server.restart(delay=1.0)
            started = time.monotonic()
            assert c.classify(**small_batch()).category[0] == "overlapping_classes"  # retried until it is back
            assert time.monotonic() - started >= 0.9 and len(server.servers) == 2

            async def async_call() -> list[str | None]:
                async with AsyncClient(server.target) as ac:
                    assert (await ac.health()) == "SERVING"
                    server.restart(delay=1.0)
                    return (await ac.classify(**small_batch())).category

            assert asyncio.run(async_call())[0] == "overlapping_classes"
            assert len(server.servers) == 3
    finally:
        server.close()


def test_a_stream_is_retried_when_the_server_is_not_up_yet() -> None:
    server = Restarts(start_after=0.8)
    try:
        batches = numbered_batches(6)
        with Client(server.target) as c:
            results = list(c.classify_stream(iter(batches), records=True, max_in_flight=2))
        assert ids_of(results) == [b["ids"] for b in batches]
        assert server.servers[0].metrics.samples["ClassifyStream"] == 30
    finally:
        server.close()


def test_an_async_stream_is_retried_across_a_restart() -> None:
    server = Restarts()
    batches = numbered_batches(5)

    async def run() -> list[Any]:
        async with AsyncClient(server.target) as c:
            assert (await c.health()) == "SERVING"
            server.restart(delay=0.8)  # down when the stream starts

            async def source() -> Any:
                for item in batches:
                    yield item

            return [r async for r in c.classify_stream(source(), records=True, max_in_flight=2)]

    try:
        results = asyncio.run(run())
        assert ids_of(results) == [b["ids"] for b in batches]
        assert server.servers[-1].metrics.samples["ClassifyStream"] == 25
    finally:
        server.close()


def test_a_stream_resumes_after_a_restart_on_the_version_it_started_with(tmp_path: Path) -> None:
    from errortaxa.server.store import TaxonomyStore

    store = tmp_path / "store"

    def activate_builtin() -> None:
        opened = TaxonomyStore(store)
        with opened.change("activate", "test", taxonomy="peychev2023", version="1.0") as change_id:
            opened.activate("peychev2023", "1.0", change_id)

    server = Restarts(store=store)
    try:
        batch = SampleBatch.from_lists(**small_batch())
        expected = {version: [evaluate(local(text), batch).record(i)["category"] for i in range(5)]
                    for version, text in (("1.0", None), ("2.0", variant_yaml("2.0")))}
        with Client(server.target, token=None) as c:
            c.put_taxonomy(variant_yaml("2.0"), activate=True)
            batches = numbered_batches(8)
            results = []
            for i, result in enumerate(c.classify_stream(iter(batches), records=True, max_in_flight=2)):
                results.append(result)
                if i == 2:  # the restarted server's active version is 1.0 (changed behind its back)
                    server.restart(delay=0.5, before_start=activate_builtin)
        assert ids_of(results) == [b["ids"] for b in batches]
        assert {result.version for result in results} == {"2.0"}  # every batch on the stream's version
        assert all(result.category == expected["2.0"] for result in results)
        assert len(server.servers) == 2 and server.servers[1].metrics.samples["ClassifyStream"] > 0
        with Client(server.target) as c:
            assert c.classify(**small_batch()).version == "1.0"
    finally:
        server.close()


def test_metrics_endpoint(tmp_path: Path) -> None:
    running = start(metrics_port=0)
    try:
        with Client(address(running), retries=0) as c:
            c.classify(**small_batch())
            with pytest.raises(InvalidArgument):
                c.classify(target=[1], labels=[[1]], pred=[5000])
        assert running.metrics_port
        with urllib.request.urlopen(f"http://127.0.0.1:{running.metrics_port}/metrics", timeout=5) as response:
            text = response.read().decode()
        call = 'grpc_service="errortaxa.v1.ErrorTaxa",grpc_method="Classify",grpc_type="unary"'
        assert f'grpc_server_started_total{{{call}}} 2' in text
        assert f'grpc_server_handled_total{{{call},grpc_code="OK"}} 1' in text
        assert f'grpc_server_handled_total{{{call},grpc_code="INVALID_ARGUMENT"}} 1' in text
        assert 'errortaxa_samples_total{grpc_method="Classify"} 5' in text
        assert f'grpc_server_handling_seconds_count{{{call}}} 2' in text
        assert "errortaxa_active_taxonomy_info{name=\"peychev2023\"" in text
    finally:
        running.stop(0)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_tls(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    running = start(tls_cert=cert, tls_key=key, admin_tokens={"ops": ADMIN})
    try:
        with Client(address(running), root_certificates=cert, token=ADMIN, retries=0) as c:
            assert c.classify(**small_batch()).category[0] == "overlapping_classes"
        with Client(address(running), token=ADMIN, retries=0) as plain, pytest.raises(Unavailable):
            plain.health(timeout=2)
    finally:
        running.stop(0)


def test_config_file_env_and_flags(tmp_path: Path) -> None:
    from errortaxa.server import load_config

    config_file = tmp_path / "serve.toml"
    config_file.write_text('port = 6000\nstore = "store"\nconcurrency = 3\n[admin_tokens]\nops = "from-file"\n')
    config = load_config(["--config", str(config_file), "--port", "7000", "--read-token", "alice=r1"],
                         {"ERRORTAXA_CONCURRENCY": "5", "ERRORTAXA_READ_TOKENS": "bob=r2"})
    assert config.port == 7000 and config.concurrency == 5
    assert config.store == tmp_path / "store"
    assert config.admin_tokens == {"ops": "from-file"}
    assert config.read_tokens == {"bob": "r2", "alice": "r1"}
    from errortaxa.server import main

    assert main(["--tls-cert", "x.pem"], {}) == 2  # a certificate without its key
