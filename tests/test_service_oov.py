"""OOV inputs over gRPC: embeddings, kNN classes and image bytes sent with a request, against a real
server on 127.0.0.1 with a tiny randomly initialised open_clip model on the CPU (nothing downloaded),
compared with the local engine and the same provider."""

from __future__ import annotations

import asyncio
import io
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("open_clip")
from errortaxa.client import AsyncClient, Client, InvalidArgument
from errortaxa.engine import SampleBatch, default_compiled, evaluate
from errortaxa.engine.providers import registry
from errortaxa.providers.oov.knn import build_index
from errortaxa.server import RunningServer, ServerConfig, build_server
from errortaxa.server.convert import not_configured
from PIL import Image

TINY: dict[str, Any] = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
DIM = int(TINY["embed_dim"])
OOV_RULE = "fine_grained_oov"

# (target, labels, pred): the first six reach the OOV rule of the default taxonomy (no earlier rule
# holds); the last three are decided before it (correct, overlapping classes, multi-label)
SAMPLES = [
    (850, [850], 965), (636, [636], 319), (511, [511], 798), (269, [269], 187), (307, [307], 361),
    (40, [40], 672), (207, [207], 207), (250, [250], 248), (207, [207, 208], 208),
]
N = len(SAMPLES)
NAMES = [f"ILSVRC2012_val_{i + 1:08d}.JPEG" for i in range(N)]
# the classes of each sample's nearest training images: the prediction itself (the gate passes) for
# the even samples, a class sharing no superclass with it for the odd ones (the gate fails)
KNN = [[p, 0] if i % 2 == 0 else [999] for i, (_, _, p) in enumerate(SAMPLES)]
KNN_PADDED = np.array([row + [-1] * (2 - len(row)) for row in KNN], np.int32)  # the declared column: -1 pads


@pytest.fixture(autouse=True)
def no_internet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only loopback connections (the gRPC server); anything else fails the test."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in ("127.0.0.1", "::1", "localhost"):
            raise AssertionError(f"network access attempted: {address}")
        real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


def image_bytes(seed: int, fmt: str = "JPEG") -> bytes:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:40, 0:48]
    arr = (rng.integers(0, 256, 3)[None, None, :] + x[..., None] * rng.integers(1, 6)
           + y[..., None] * rng.integers(1, 6) + rng.integers(0, 30, (40, 48, 3))) % 256
    out = io.BytesIO()
    Image.fromarray(arr.astype(np.uint8)).save(out, format=fmt)
    return out.getvalue()


class World:
    """Images on disk, a training-set index, OOV configs, the local providers and the servers."""

    def __init__(self, root: Path) -> None:
        self.root = root
        val = root / "val"
        val.mkdir()
        self.images = [image_bytes(i) for i in range(N)]
        for name, data in zip(NAMES, self.images, strict=True):
            (val / name).write_bytes(data)
        base: dict[str, Any] = {"model_config": TINY, "pretrained": None, "random_init": True, "seed": 0,
                                "device": "cpu", "num_workers": 0, "batch_size": 8}
        train = [(image_bytes(100 + j, "PNG"), c) for j, c in enumerate([965, 187, 672, 0, 999, 361, 5, 6])]
        self.index = build_index(train, root / "index", config={**base, "cache_dir": "none"})
        # the server: no image directory (it sees images only as bytes), no disk cache
        self.server_config = self._write("server-oov.json", {**base, "cache_dir": "none", "index": str(root / "index")})
        # the local engine: reads the same images from disk
        self.local_config = self._write("local-oov.json", {**base, "cache_dir": str(root / "cache"),
                                                           "index": str(root / "index"), "images": [str(val)]})
        self.compiled = default_compiled()
        self.local = registry.build("oov", self.local_config, self.compiled)
        self.batch = SampleBatch.from_lists(target=[t for t, _, _ in SAMPLES], labels=[ls for _, ls, _ in SAMPLES],
                                            pred=[p for _, _, p in SAMPLES], images=NAMES)
        vectors, ok, _ = self.local.image_embeddings(NAMES)
        assert ok.all()
        self.embeddings = vectors

    def _write(self, name: str, config: dict[str, Any]) -> Path:
        path = self.root / name
        path.write_text(json.dumps(config))
        return path

    def local_records(self, providers: dict[str, Any] | None, batch: SampleBatch | None = None) -> list[Any]:
        batch = self.batch if batch is None else batch
        decisions = evaluate(self.compiled, batch, providers)
        return [json.loads(json.dumps(decisions.record(i))) for i in range(len(batch))]


def start(**settings: Any) -> RunningServer:
    return build_server(ServerConfig(**{"host": "127.0.0.1", "port": 0, "drain_seconds": 0.0,
                                        "grace_seconds": 2.0, **settings}))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return World(tmp_path_factory.mktemp("oov-service"))


@pytest.fixture(scope="module")
def oov_server(world: World) -> Iterator[RunningServer]:
    running = start(provider_configs={"oov": world.server_config})
    yield running
    running.stop(0)


@pytest.fixture(scope="module")
def plain_server() -> Iterator[RunningServer]:
    running = start()
    yield running
    running.stop(0)


def client_of(server: RunningServer) -> Client:
    return Client(f"127.0.0.1:{server.port}", retries=0, timeout=120)


def columns() -> dict[str, Any]:
    return {"target": [t for t, _, _ in SAMPLES], "labels": [ls for _, ls, _ in SAMPLES],
            "pred": [p for _, _, p in SAMPLES], "images": NAMES}


def close(got: Any, want: Any) -> bool:
    """Equal, floats within 1e-5 (the zero-shot probabilities are rounded to 6 places, and prompt
    embeddings computed in other batches may differ in the last float32 bits)."""
    if isinstance(want, float) and isinstance(got, float):
        return abs(got - want) <= 1e-5
    if isinstance(want, dict) and isinstance(got, dict):
        return got.keys() == want.keys() and all(close(got[k], want[k]) for k in want)
    if isinstance(want, list) and isinstance(got, list):
        return len(got) == len(want) and all(close(g, w) for g, w in zip(got, want, strict=True))
    return bool(got == want)


def oov_reason(record: dict[str, Any]) -> str | None:
    for entry in record["evidence"].get("not_evaluated", []):
        if entry["rule"] == OOV_RULE:
            return str(entry["reason"])
    return None


def test_embeddings_and_knn_classes_decide_as_the_local_engine(world: World, oov_server: RunningServer) -> None:
    bound = world.local.bind(embeddings=dict(zip(NAMES, world.embeddings, strict=True)),
                             knn_classes=dict(zip(NAMES, KNN, strict=True)))
    want = world.local_records({"oov": bound})
    categories = [r["category"] for r in want]
    assert categories[6:] == ["correct", "overlapping_classes", "multi_label"]
    assert all(oov_reason(r) is None for r in want)  # every OOV row was evaluated
    assert OOV_RULE in categories  # the test held somewhere: its evidence (proposals) travels too
    with client_of(oov_server) as c:
        got = c.classify(**columns(), oov_embeddings=world.embeddings, knn_classes=KNN, records=True)
        assert close(got.records, want)
        # the same inputs as the oov provider's declared columns (samples.providers["oov"])
        generic = c.classify(**columns(), records=True, provider_inputs={
            "oov": {"embeddings": world.embeddings, "knn_classes": KNN_PADDED}})
        assert close(generic.records, want)
        # the odd samples fail the kNN gate: decided by a later rule, OOV evaluated (not skipped)
        assert all(r["category"] != OOV_RULE for r in got.records[1:6:2])
        # the same over a stream, in batches of 4 (the OOV columns are cut with the samples)
        streamed = c.classify_many(**columns(), oov_embeddings=world.embeddings, knn_classes=KNN, records=True,
                                   batch_size=4)
        assert close(streamed.records, want)
        # samples without an image name: their inputs are keyed per sample
        nameless = c.classify(**{**columns(), "images": None}, oov_embeddings=world.embeddings, knn_classes=KNN,
                              records=True)
        assert close([(r["category"], r["evidence"].get("feature")) for r in nameless.records],
                     [(r["category"], r["evidence"].get("feature")) for r in want])
        # explain sees the same inputs
        explanation = c.explain(**columns(), oov_embeddings=world.embeddings, knn_classes=KNN, index=0)
        assert close(explanation.record, want[0])
        oov_trace = next(t for t in explanation.traces if t.rule == OOV_RULE)
        assert oov_trace.outcome in ("held", "failed")


def test_image_bytes_decide_as_the_local_engine_reading_the_files(world: World, oov_server: RunningServer) -> None:
    want = world.local_records({"oov": world.local})  # images from disk, kNN gate over the index
    assert all(oov_reason(r) is None for r in want)
    with client_of(oov_server) as c:
        got = c.classify(**columns(), image_bytes=world.images, records=True)
        assert close(got.records, want)
        # the server has no image directory: without bytes it cannot see the images
        blind = c.classify(**columns(), records=True)
        assert all("image not found" in (oov_reason(r) or "") for r in blind.records[:6])
        # an image that does not decode: that sample is not evaluated, with the decode error
        sent = list(world.images)
        sent[0] = b"not an image"
        sent[2] = b""  # none for that sample
        partly = c.classify(**columns(), image_bytes=sent, records=True)
        reason = oov_reason(partly.records[0]) or ""
        assert "decode" in reason and NAMES[0] in reason
        assert "image not found" in (oov_reason(partly.records[2]) or "")
        assert close(partly.records[1:2] + partly.records[3:], want[1:2] + want[3:])
        # kNN classes beside the bytes replace the index for the samples that carry a row
        knn = [KNN[0], None, None, None, None, None, None, None, None]
        mixed = c.classify(**columns(), image_bytes=world.images, knn_classes=knn, records=True)
        local_mixed = world.local_records({"oov": world.local.bind(knn_classes={NAMES[0]: KNN[0]})})
        assert close(mixed.records, local_mixed)


def test_evidence_answers_first_then_the_server_model(world: World, oov_server: RunningServer) -> None:
    want = world.local_records({"oov": world.local})
    answer = {"oov": {OOV_RULE: True, "proposals": ["sent"]}}
    with client_of(oov_server) as c:
        got = c.classify(**columns(), image_bytes=world.images, evidence=[answer] + [None] * (N - 1), records=True)
    assert got.records[0]["category"] == OOV_RULE and got.records[0]["evidence"]["feature"] == {"proposals": ["sent"]}
    assert close(got.records[1:], want[1:])


def test_dataset_predictions_carry_oov_inputs(world: World, tmp_path: Path) -> None:
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(json.dumps({"image": n, "target": t, "labels": ls, "pred": t}) + "\n"
                              for n, (t, ls, _) in zip(NAMES, SAMPLES, strict=True)))
    running = start(provider_configs={"oov": world.server_config}, datasets={"mini": str(labels)})
    try:
        bound = world.local.bind(embeddings=dict(zip(NAMES, world.embeddings, strict=True)),
                                 knn_classes=dict(zip(NAMES, KNN, strict=True)))
        want = world.local_records({"oov": bound})
        pred = [p for _, _, p in SAMPLES]
        with client_of(running) as c:
            got = c.classify_dataset("mini", pred=pred, oov_embeddings=world.embeddings, knn_classes=KNN, records=True)
            assert close(got.records, want)
            chunked = c.classify_dataset_many("mini", pred=pred, image_bytes=world.images, batch_size=4,
                                              records=True)
            assert close(chunked.records, world.local_records({"oov": world.local}))
            # keyed by image, in another order: the OOV rows follow the predictions
            order = [4, 0, 2]
            keyed = c.classify_dataset("mini", pred=[pred[i] for i in order], images=[NAMES[i] for i in order],
                                       oov_embeddings=world.embeddings[order], knn_classes=[KNN[i] for i in order],
                                       records=True)
            assert close(keyed.records, [want[i] for i in order])
            with pytest.raises(InvalidArgument) as err:
                c.classify_dataset("mini", pred=pred, oov_embeddings=world.embeddings[:3])
            assert err.value.field == "dataset.oov.embeddings"
    finally:
        running.stop(0)


def test_a_server_without_a_model_classifies_everything_else(world: World, plain_server: RunningServer) -> None:
    want = world.local_records(None)  # the local engine without an OOV provider
    with client_of(plain_server) as c:
        got = c.classify(**columns(), oov_embeddings=world.embeddings, knn_classes=KNN, image_bytes=world.images,
                         records=True, summary=True)
        streamed = c.classify_many(**columns(), oov_embeddings=np.ones((N, 768), np.float32), batch_size=4,
                                   records=True)
    for records in (got.records, streamed.records):
        for mine, local in zip(records, want, strict=True):
            if oov_reason(local) is None:  # decided before the OOV rule: exactly the local record
                assert mine == local
            else:  # not evaluated, with the reason, then decided by the next rule as locally
                reason = not_configured(registry.get("oov"))
                assert oov_reason(mine) == reason and "--oov-config" in reason
                assert (mine["category"], mine["rule"]) == (local["category"], local["rule"])
    assert sum(oov_reason(r) is not None for r in got.records) == 6
    assert got.summary is not None and got.summary.data["not_evaluated"][OOV_RULE] == 6


BAD: dict[str, tuple[dict[str, Any], str, int | None, str, str]] = {
    "embedding dim": ({"oov_embeddings": np.ones((N, DIM + 1), np.float32)}, "samples.oov.embeddings", None,
                      "EMBEDDING_DIM", str(DIM)),
    "embedding rows": ({"oov_embeddings": np.ones((N - 2, DIM), np.float32)}, "samples.oov.embeddings", N - 2,
                       "LENGTH_MISMATCH", f"{N - 2} rows for {N} samples"),
    "embedding not finite": ({"oov_embeddings": np.full((N, DIM), np.nan, np.float32)}, "samples.oov.embeddings", 0,
                             "NOT_FINITE", "NaN"),
    "image bytes rows": ({"image_bytes": [b"x"] * (N + 1)}, "samples.oov.image_bytes", N, "LENGTH_MISMATCH",
                         "image_bytes"),
    "knn rows": ({"knn_classes": [[1]] * 3}, "samples.oov.knn_classes", 3, "LENGTH_MISMATCH", "3 rows"),
    "knn class": ({"knn_classes": [[1]] * 4 + [[1000]] + [[1]] * (N - 5)}, "samples.oov.knn_classes", 4,
                  "CLASS_OUT_OF_RANGE", "0..999"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_oov_inputs_name_the_field_and_the_server_keeps_serving(oov_server: RunningServer, case: str) -> None:
    inputs, field, index, reason, message = BAD[case]
    with client_of(oov_server) as c:
        with pytest.raises(InvalidArgument) as err:
            c.classify(**columns(), **inputs)
        assert (err.value.field, err.value.sample_index, err.value.reason) == (field, index, reason)
        assert message in str(err.value)
        with pytest.raises(InvalidArgument) as err:  # in a stream, too
            list(c.classify_stream([{**columns(), **inputs}]))
        assert err.value.field == field
        assert c.health() == "SERVING"
        assert c.classify(**columns()).category[6:] == ["correct", "overlapping_classes", "multi_label"]


@pytest.mark.parametrize(("column", "values", "reason"), [
    ("embeddings", np.ones((N, DIM + 1), np.float32), "EMBEDDING_DIM"),  # the provider's own check, at bind
    ("knn_classes", np.full((N, 1), 1000, np.int32), "CLASS_OUT_OF_RANGE"),  # the declaration's (class_ids)
])
def test_bad_oov_provider_inputs_name_the_generic_field(oov_server: RunningServer, column: str, values: np.ndarray,
                                                        reason: str) -> None:
    with client_of(oov_server) as c, pytest.raises(InvalidArgument) as err:
        c.classify(**columns(), provider_inputs={"oov": {column: values}})
    assert (err.value.field, err.value.reason) == (f"samples.providers.oov.{column}", reason)


def test_row_count_is_checked_without_a_model(plain_server: RunningServer) -> None:
    with client_of(plain_server) as c:
        with pytest.raises(InvalidArgument) as err:
            c.classify(**columns(), oov_embeddings=np.ones((N + 1, 4), np.float32))
        assert err.value.field == "samples.oov.embeddings" and err.value.sample_index == N
        assert c.classify(**columns(), oov_embeddings=np.ones((N, 4), np.float32)).category[6] == "correct"


def test_async_client_sends_oov_inputs(world: World, oov_server: RunningServer) -> None:
    bound = world.local.bind(embeddings=dict(zip(NAMES, world.embeddings, strict=True)),
                             knn_classes=dict(zip(NAMES, KNN, strict=True)))
    want = world.local_records({"oov": bound})

    async def run() -> tuple[list[Any], list[Any]]:
        async with AsyncClient(f"127.0.0.1:{oov_server.port}", retries=0, timeout=120) as c:
            one = await c.classify(**columns(), oov_embeddings=world.embeddings, knn_classes=KNN, records=True)
            many = await c.classify_many(**columns(), oov_embeddings=world.embeddings, knn_classes=KNN,
                                         records=True, batch_size=5)
            return one.records, many.records

    one, many = asyncio.run(run())
    assert close(one, want) and close(many, want)
