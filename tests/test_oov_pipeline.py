"""The OOV pipeline on the CPU with a tiny randomly initialised open_clip model and generated images."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import socket
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("open_clip")
from errortaxa.engine.providers.factory import ProviderUnavailable  # noqa: E402
from errortaxa.engine.samples import SampleBatch  # noqa: E402
from errortaxa.providers.oov import OOVConfig, WeightsNotFoundError  # noqa: E402
from errortaxa.providers.oov.cache import EmbeddingCache  # noqa: E402
from errortaxa.providers.oov.embed import ImageEmbedder  # noqa: E402
from errortaxa.providers.oov.factory import OOVFactory  # noqa: E402
from errortaxa.providers.oov.images import ImageResolver, hash_images  # noqa: E402
from errortaxa.providers.oov.knn import TrainIndex, build_index  # noqa: E402
from errortaxa.providers.oov.model import ClipEncoder  # noqa: E402
from errortaxa.providers.oov.provider import OOVProvider  # noqa: E402
from errortaxa.providers.oov.scoring import zero_shot  # noqa: E402
from handmade_wordnet import HandMadeWordNet  # noqa: E402
from PIL import Image  # noqa: E402

TINY = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a network connection fails the test."""

    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise AssertionError(f"network access attempted: {address}")
        real_connect(self, address)  # AF_UNIX: DataLoader workers hand tensors over local sockets

    monkeypatch.setattr(socket.socket, "connect", guarded)


def tiny_config(tmp_path: Path, **kw: Any) -> OOVConfig:
    base: dict[str, Any] = dict(model_config=TINY, pretrained=None, random_init=True, seed=0,
                                cache_dir=str(tmp_path / "cache"), device="cpu", num_workers=0, batch_size=8)
    base.update(kw)
    return OOVConfig.from_mapping(base)


def make_image(seed: int, size: tuple[int, int] = (48, 40)) -> Image.Image:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=3)
    y, x = np.mgrid[0 : size[1], 0 : size[0]]
    arr = (base[None, None, :] + (x[..., None] * rng.integers(1, 6)) + (y[..., None] * rng.integers(1, 6))) % 256
    arr = arr + rng.integers(0, 30, size=arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def write_images(root: Path, n: int, *, start: int = 0, fmt: str = "PNG") -> list[str]:
    root.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(start, start + n):
        p = root / f"img_{i:04d}.{fmt.lower()}"
        make_image(i).save(p, format=fmt)
        out.append(str(p))
    return out


# -- weights --------------------------------------------------------------------------------------

def test_missing_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "ViT-L-14-336.pt"
    with pytest.raises(WeightsNotFoundError, match=r"checkpoint not found: .*ViT-L-14-336\.pt"):
        ClipEncoder(OOVConfig(model="ViT-L-14-336", checkpoint=str(missing), cache_dir=str(tmp_path)))


def test_uncached_pretrained_tag_never_downloads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    cfg = OOVConfig(model="ViT-L-14-336", pretrained="openai", open_clip_cache_dir=str(tmp_path / "clip"),
                    cache_dir=str(tmp_path / "cache"))
    with pytest.raises(WeightsNotFoundError, match="never downloads"):
        ClipEncoder(cfg)
    assert not (tmp_path / "clip").exists()
    # the factory says the provider cannot run here, and a server degrades to "not evaluated" instead
    from errortaxa.server.providers import ServerProviders

    path = tmp_path / "oov.yaml"
    path.write_text(json.dumps({k: v for k, v in dataclasses.asdict(cfg).items() if v is not None}))
    taxonomy = SimpleNamespace(same_superclass=np.eye(4, dtype=bool), vocabulary=VOCAB)
    with pytest.raises(ProviderUnavailable, match="never downloads"):
        OOVFactory().build(path, taxonomy)  # type: ignore[arg-type]
    prov = ServerProviders({"oov": path}).build(taxonomy)["oov"]  # type: ignore[arg-type]
    res = prov.evaluate("fine_grained_oov", {}, None, np.arange(3))  # type: ignore[arg-type]
    assert not res.known.any() and all("never downloads" in (r or "") for r in res.reason)


def test_no_weights_configured(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError, match="no CLIP weights configured"):
        ClipEncoder(OOVConfig(model_config=TINY, pretrained=None, cache_dir=str(tmp_path)))


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    enc = ClipEncoder(tiny_config(tmp_path, seed=3))
    ckpt = tmp_path / "tiny.pt"
    torch.save(enc.load().state_dict(), ckpt)
    loaded = ClipEncoder(tiny_config(tmp_path, seed=99, random_init=False, checkpoint=str(ckpt)))
    texts = ["A photo of a dog", "A photo of a teeter-totter"]
    np.testing.assert_array_equal(enc.encode_texts(texts), loaded.encode_texts(texts))
    assert loaded.model_id != enc.model_id  # a file's weights are another cache namespace
    # another file content gives another model id
    other = ClipEncoder(tiny_config(tmp_path, seed=4))
    ckpt2 = tmp_path / "tiny2.pt"
    torch.save(other.load().state_dict(), ckpt2)
    assert ClipEncoder(tiny_config(tmp_path, random_init=False, checkpoint=str(ckpt2))).model_id != loaded.model_id


def test_tag_weights_found_in_the_local_cache(tmp_path: Path) -> None:
    from errortaxa.providers.oov.model import resolve_weights

    clip_cache = tmp_path / "clip"
    clip_cache.mkdir()
    (clip_cache / "ViT-L-14-336px.pt").write_bytes(b"weights")  # where open_clip keeps OpenAI's file
    src = resolve_weights(OOVConfig(model="ViT-L-14-336", pretrained="openai", open_clip_cache_dir=str(clip_cache)))
    assert src.path == clip_cache / "ViT-L-14-336px.pt" and src.quick_gelu
    assert src.preprocess["size"] == 336
    with pytest.raises(Exception, match="no pretrained tag"):
        resolve_weights(OOVConfig(model="ViT-L-14-336", pretrained="nonsense", open_clip_cache_dir=str(clip_cache)))


def test_text_at_prompt_length_equals_full_context(tmp_path: Path) -> None:
    enc = ClipEncoder(tiny_config(tmp_path))
    prompts = ["A photo of a dog", "A photo of a teeter-totter", "A photo of a pj's", "A photo of a irish wolfhound",
               "A photo of a carassius auratus"]
    fast = enc.encode_texts(prompts)
    model: Any = enc.load()
    with torch.inference_mode():
        full = torch.nn.functional.normalize(model.encode_text(enc.tokenizer(prompts)), dim=-1).numpy()
    np.testing.assert_allclose(fast, full, atol=1e-5)
    np.testing.assert_array_equal(fast, enc.encode_texts(prompts))


# -- embeddings and the cache ---------------------------------------------------------------------

def test_cache_hits_and_invalidation(tmp_path: Path) -> None:
    paths = write_images(tmp_path / "imgs", 12)
    cfg = tiny_config(tmp_path)
    first = ImageEmbedder.from_encoder(ClipEncoder(cfg))
    r1 = first.embed(paths)
    assert r1.ok.all() and r1.stats.encoded == 12 and r1.stats.cache_hits == 0
    np.testing.assert_allclose(np.linalg.norm(r1.vectors, axis=1), 1.0, rtol=1e-5)

    # a new process-like embedder: everything from the memory-mapped cache, model never loaded
    again = ImageEmbedder.from_encoder(ClipEncoder(cfg))
    r2 = again.embed(paths)
    assert r2.stats.cache_hits == 12 and r2.stats.encoded == 0 and not again.encoder.loaded
    np.testing.assert_array_equal(r1.vectors, r2.vectors)

    # change one image's content: only that one is recomputed
    make_image(1000).save(paths[3], format="PNG")
    r3 = ImageEmbedder.from_encoder(ClipEncoder(cfg)).embed(paths)
    assert r3.stats.cache_hits == 11 and r3.stats.encoded == 1
    assert not np.allclose(r3.vectors[3], r1.vectors[3])
    np.testing.assert_array_equal(np.delete(r3.vectors, 3, 0), np.delete(r1.vectors, 3, 0))

    # another model: another namespace, nothing reused
    other = ImageEmbedder.from_encoder(ClipEncoder(tiny_config(tmp_path, seed=1)))
    r4 = other.embed(paths)
    assert r4.stats.cache_hits == 0 and r4.stats.encoded == 12
    # another precision is another cache key too
    assert ClipEncoder(tiny_config(tmp_path, precision="bf16")).model_id != ClipEncoder(cfg).model_id


def test_cache_store_survives_a_torn_write(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path, "m1", dim=4)
    keys = [bytes([i]) * 16 for i in range(3)]
    vecs = np.arange(12, dtype=np.float32).reshape(3, 4)
    cache.put(keys, vecs)
    # a crashed writer left a vector without its key
    with open(cache.dir / "vectors.f32", "ab") as f:
        f.write(np.ones(4, np.float32).tobytes()[:10])
    reader = EmbeddingCache(tmp_path, "m1")
    assert len(reader) == 3
    reader.put([bytes([9]) * 16], np.full((1, 4), 7, np.float32))
    fresh = EmbeddingCache(tmp_path, "m1")
    found, got = fresh.get([keys[1], bytes([9]) * 16, bytes([5]) * 16])
    assert found.tolist() == [True, True, False]
    np.testing.assert_array_equal(got[0], vecs[1])
    np.testing.assert_array_equal(got[1], np.full(4, 7, np.float32))
    # the first instance sees rows appended by others
    assert bytes([9]) * 16 in cache
    # duplicates are stored once
    fresh.put([keys[0], keys[0]], np.zeros((2, 4), np.float32))
    assert len(EmbeddingCache(tmp_path, "m1")) == 4


def test_paths_bytes_and_image_folders(tmp_path: Path) -> None:
    paths = write_images(tmp_path / "flat", 4, fmt="JPEG")
    blobs = [Path(p).read_bytes() for p in paths]
    assert hash_images(paths) == hash_images(blobs)
    emb = ImageEmbedder.from_encoder(ClipEncoder(tiny_config(tmp_path)))
    by_path = emb.embed(paths)
    by_bytes = emb.embed(blobs)
    assert by_bytes.stats.cache_hits == 4
    np.testing.assert_array_equal(by_path.vectors, by_bytes.vectors)
    bad = emb.embed([b"not an image", str(tmp_path / "missing.png")])
    assert not bad.ok.any()
    assert "cannot decode" in (bad.errors[0] or "") and "cannot read" in (bad.errors[1] or "")
    # resolution by file name in flat and ImageFolder-style trees
    tree = tmp_path / "tree" / "n01440764"
    nested = write_images(tree, 1, start=50)
    res = ImageResolver([tmp_path / "flat", tmp_path / "tree"])
    assert res.resolve(os.path.basename(paths[0])) == paths[0]
    assert res.resolve(os.path.basename(nested[0])) == nested[0]
    assert res.resolve("nothing.JPEG") is None


def test_workers_and_determinism(tmp_path: Path) -> None:
    paths = write_images(tmp_path / "imgs", 20)
    a = ImageEmbedder(ClipEncoder(tiny_config(tmp_path, cache_dir="none")), num_workers=0, batch_size=8)
    b = ImageEmbedder(ClipEncoder(tiny_config(tmp_path, cache_dir="none")), num_workers=2, batch_size=8)
    ra, rb = a.embed(paths), b.embed(paths)
    assert ra.stats.encoded == 20 and rb.stats.encoded == 20
    np.testing.assert_array_equal(ra.vectors, rb.vectors)
    np.testing.assert_array_equal(ra.vectors, a.embed(paths).vectors)


def test_zero_shot_matches_per_row_softmax() -> None:
    rng = np.random.default_rng(0)
    imgs = rng.normal(size=(5, 8)).astype(np.float32)
    imgs /= np.linalg.norm(imgs, axis=1, keepdims=True)
    texts = rng.normal(size=(7, 8)).astype(np.float32)
    texts /= np.linalg.norm(texts, axis=1, keepdims=True)
    rows = [np.array([0, 1, 2]), np.array([6]), np.array([3, 4, 5, 6, 0]), np.array([2, 2]), np.array([1, 5])]
    got = zero_shot(imgs, texts, rows, temperature=100.0, chunk=2)
    for i, r in enumerate(rows):
        logits = 100.0 * imgs[i] @ texts[r].T
        want = np.exp(logits - logits.max())
        np.testing.assert_allclose(got[i], want / want.sum(), rtol=1e-4, atol=1e-6)


# -- kNN index --------------------------------------------------------------------------------------

def image_folder(root: Path, classes: int, per_class: int) -> Path:
    for c in range(classes):
        write_images(root / f"class_{c}", per_class, start=100 * c)
    return root


def test_build_index_and_chunked_topk(tmp_path: Path) -> None:
    root = image_folder(tmp_path / "train", classes=3, per_class=5)
    enc = ClipEncoder(tiny_config(tmp_path))
    idx = build_index(root, tmp_path / "index", encoder=enc, class_names="sorted", block=4)
    assert len(idx) == 15 and idx.dim == 32 and idx.embeddings.dtype == np.float16
    assert idx.classes.tolist() == [c for c in range(3) for _ in range(5)]
    assert idx.meta["space_id"] == enc.space_id and idx.files[0].startswith("class_0")
    loaded = TrainIndex.load(tmp_path / "index")
    # every training image's nearest neighbour is itself
    q = np.asarray(loaded.embeddings, dtype=np.float32)
    sims, rows = loaded.topk(q, 4, chunk=3, query_chunk=5)
    assert rows[:, 0].tolist() == list(range(15))
    # chunked == brute force
    brute = q @ q.T
    want = np.argsort(-brute, axis=1, kind="stable")[:, :4]
    np.testing.assert_allclose(sims, np.take_along_axis(brute, want, 1), rtol=1e-5)
    assert loaded.neighbour_classes(q[:2], 1).tolist() == [[0], [0]]
    # k above N is clipped
    assert loaded.topk(q[:1], 99)[1].shape == (1, 15)
    # the same as the command's function on the CLI would call: a labels file
    (tmp_path / "labels.txt").write_text("".join(f"{f} {c}\n" for f, c in zip(loaded.files, loaded.classes,
                                                                                  strict=True)))
    idx2 = build_index(root, tmp_path / "index2", encoder=enc, labels=tmp_path / "labels.txt")
    np.testing.assert_array_equal(idx2.classes, loaded.classes)


def test_shared_model_is_reused_until_the_index_is_rebuilt(tmp_path: Path) -> None:
    from errortaxa.providers.oov.provider import shared_model

    root = image_folder(tmp_path / "train", classes=2, per_class=2)
    config = tiny_config(tmp_path, index=str(tmp_path / "index"))
    build_index(root, tmp_path / "index", encoder=ClipEncoder(config), class_names="sorted")
    encoder, index = shared_model(config)
    assert shared_model(tiny_config(tmp_path, index=str(tmp_path / "index"))) == (encoder, index)
    meta = tmp_path / "index" / "meta.json"
    os.utime(meta, ns=(meta.stat().st_atime_ns, meta.stat().st_mtime_ns + 10**9))  # rebuilt on disk
    fresh_encoder, fresh_index = shared_model(config)
    assert fresh_index is not index and fresh_encoder is not encoder and len(fresh_index or []) == 4


# -- the provider -----------------------------------------------------------------------------------

# entity -> organism -> dog -> {terrier_a*, terrier_b*, wolfhound}; organism -> cat*; entity -> rock*
WN = HandMadeWordNet(
    {"n00000002": ["n00000001"], "n00000003": ["n00000002"], "n00000010": ["n00000003"],
     "n00000011": ["n00000003"], "n00000012": ["n00000003"], "n00000020": ["n00000002"],
     "n00000030": ["n00000001"]},
    {"n00000001": ["entity"], "n00000002": ["organism", "being"], "n00000003": ["dog"],
     "n00000010": ["terrier_a"], "n00000011": ["terrier_b"], "n00000012": ["wolfhound", "Irish_wolfhound"],
     "n00000020": ["cat"], "n00000030": ["rock", "stone"]},
)  # fmt: skip
VOCAB = SimpleNamespace(wnids=["n00000010", "n00000011", "n00000020", "n00000030"])
SAME = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=bool)


def batch_of(images: Sequence[str | None], pred: list[int], target: list[int]) -> SampleBatch:
    return SampleBatch.from_lists(target=target, labels=[[t] for t in target], pred=pred,
                                  images=images)  # type: ignore[arg-type]


def make_provider(tmp_path: Path, **kw: Any) -> OOVProvider:
    cfg = tiny_config(tmp_path, images=[str(tmp_path / "val")], **kw.pop("config", {}))
    return OOVProvider(cfg, same_superclass=SAME, wordnet=WN, vocab=VOCAB, **kw)


def test_gate_and_reasons(tmp_path: Path) -> None:
    val = write_images(tmp_path / "val", 3)
    names = [os.path.basename(p) for p in val]
    prov = make_provider(tmp_path)
    batch = batch_of([names[0], names[1], names[2], "missing.png", None], pred=[0, 0, 3, 0, 0],
                     target=[2, 2, 2, 2, 2])
    # no index: known=False with the reason, for rows that have an image
    res = prov.evaluate("fine_grained_oov", {}, batch, np.arange(5))
    assert not res.known.any()
    assert "training-set index" in (res.reason[0] or "")
    assert "image not found: missing.png" in (res.reason[3] or "")
    assert res.reason[4] == "no image for the sample"
    # given neighbour classes: gate holds when one shares a superclass with the prediction
    knn = {names[0]: [2, 2, 1], names[1]: [3, 2, 2], names[2]: [3, 2, 2]}
    bound = prov.bind(knn_classes=knn)
    res = bound.evaluate("fine_grained_oov", {"k": 10}, batch, np.arange(3))
    assert res.known.tolist() == [True, True, True]
    assert bound.last_stats["gate_passed"] == 2  # row 0 (class 1 ~ pred 0), row 2 (class 3 == pred 3)
    assert not res.holds[1] and res.evidence[1] is None
    # k limits the neighbours looked at
    bound.evaluate("fine_grained_oov", {"k": 2}, batch, np.arange(3))
    assert bound.last_stats["gate_passed"] == 1
    # with a real index
    root = image_folder(tmp_path / "train", classes=4, per_class=3)
    index = build_index(root, tmp_path / "index", encoder=prov.encoder, class_names="sorted")
    with_index = make_provider(tmp_path, index=index)
    res = with_index.evaluate("fine_grained_oov", {}, batch, np.arange(3))
    assert res.known.all()  # k=10 of 12 training images: every class appears, the gate passes
    assert with_index.last_stats["gate_passed"] == 3
    with pytest.raises(ValueError, match="no test"):
        prov.evaluate("spurious", {}, batch, np.arange(1))
    with pytest.raises(ValueError, match="invalid parameters of oov/fine_grained_oov: knn: Extra inputs"):
        prov.evaluate("fine_grained_oov", {"knn": 3}, batch, np.arange(1))
    # the taxonomy's parameter name; gate: false scores every row that has an embedding
    bound.evaluate("fine_grained_oov", {"knn_k": 2}, batch, np.arange(3))
    assert bound.last_stats["gate_passed"] == 1
    bound.evaluate("fine_grained_oov", {"gate": False}, batch, np.arange(3))
    assert bound.last_stats["gate_passed"] == 3


def test_holds_when_best_prompt_is_out_of_vocabulary(tmp_path: Path) -> None:
    prov = make_provider(tmp_path)
    text = prov._shared.text
    wolfhound = text.get("n00000012")[1]  # "A photo of a irish wolfhound"
    terrier_b = text.get("n00000011")[0]
    batch = batch_of(["a.png", "b.png"], pred=[0, 0], target=[2, 2])
    bound = prov.bind(embeddings={"a.png": wolfhound * 3.0, "b.png": terrier_b},
                      knn_classes={"a.png": [1], "b.png": [0]})
    res = bound.evaluate("fine_grained_oov", {}, batch, np.array([0, 1]))
    assert res.known.tolist() == [True, True]
    assert res.holds.tolist() == [True, False]
    ev = res.evidence[0]
    # pred terrier_a, target cat: terrier_a, terrier_b (same superclass), wolfhound (2 lemmas, a sibling)
    # and dog (from the meta label "dog" on; entity and organism lie on the target's path)
    assert ev["num_prompts"] == 5
    top = ev["proposals"]
    assert len(top) == 5 and top[0]["wnid"] == "n00000012" and top[0]["lemma"] == "irish wolfhound"
    assert {"wnid", "lemma", "probability"} == set(top[0])
    assert abs(sum(p["probability"] for p in top) - 1.0) < 1e-4
    assert top[0]["probability"] == max(p["probability"] for p in top)
    # the top parameter
    res = bound.evaluate("fine_grained_oov", {"top": 2}, batch, np.array([0]))
    assert len(res.evidence[0]["proposals"]) == 2


def test_end_to_end_is_deterministic_and_cached(tmp_path: Path) -> None:
    val = write_images(tmp_path / "val", 6, fmt="JPEG")
    names = [os.path.basename(p) for p in val]
    root = image_folder(tmp_path / "train", classes=4, per_class=3)
    first = make_provider(tmp_path)
    index = build_index(root, tmp_path / "index", encoder=first.encoder, class_names="sorted")
    batch = batch_of(names, pred=[0, 1, 0, 3, 2, 0], target=[2, 2, 3, 0, 0, 2])
    rows = np.array([0, 1, 2, 3, 4, 5])
    p1 = make_provider(tmp_path, index=str(tmp_path / "index"))
    r1 = p1.evaluate("fine_grained_oov", {}, batch, rows)
    assert r1.known.all() and p1.last_stats["embedding"]["encoded"] == 6
    # a fresh provider: every embedding (images and prompts) from the disk cache, the model never loads
    p2 = make_provider(tmp_path, index=index)
    r2 = p2.evaluate("fine_grained_oov", {}, batch, rows)
    assert p2.last_stats["embedding"]["cache_hits"] == 6
    assert p2._shared.text.encoded_prompts == 0 and not p2.encoder.loaded
    assert r1.holds.tolist() == r2.holds.tolist() and r1.evidence == r2.evidence
    # no cache at all: recomputed, same answers
    p3 = make_provider(tmp_path, index=index, config={"cache_dir": "none"})
    r3 = p3.evaluate("fine_grained_oov", {}, batch, rows)
    assert r1.holds.tolist() == r3.holds.tolist() and r1.evidence == r3.evidence
    # image bytes sent with the request instead of files
    p4 = make_provider(tmp_path, index=index).bind(image_bytes={n: Path(p).read_bytes() for n, p in zip(
        names, val, strict=True)})
    batch_b = batch_of([f"{n}" for n in names], pred=[0, 1, 0, 3, 2, 0], target=[2, 2, 3, 0, 0, 2])
    r4 = p4.evaluate("fine_grained_oov", {}, batch_b, rows)
    assert r4.evidence == r1.evidence


def test_corrupt_image_is_not_evaluated(tmp_path: Path) -> None:
    (tmp_path / "val").mkdir()
    (tmp_path / "val" / "broken.JPEG").write_bytes(b"\xff\xd8 broken")
    prov = make_provider(tmp_path).bind(image_bytes={"sent.png": b"garbage"}, knn_classes={})
    res = prov.evaluate("fine_grained_oov", {}, batch_of(["broken.JPEG", "sent.png"], [0, 0], [2, 2]),
                        np.array([0, 1]))
    assert not res.known.any()
    assert all("cannot decode image" in (r or "") for r in res.reason)


def test_png_with_alpha_and_grayscale(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.new("LA", (20, 30), (128, 200)).save(buf, format="PNG")
    emb = ImageEmbedder.from_encoder(ClipEncoder(tiny_config(tmp_path)))
    assert emb.embed([buf.getvalue()]).ok.all()


def test_cli_index_and_embed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    import yaml
    from errortaxa.cli import main

    root = image_folder(tmp_path / "train", classes=2, per_class=3)
    cfg = tmp_path / "oov.yaml"
    cfg.write_text(yaml.safe_dump({"model_config": TINY, "pretrained": None, "random_init": True,
                                   "cache_dir": str(tmp_path / "cache"), "device": "cpu", "num_workers": 0}))
    assert main(["oov", "index", str(root), "--out", str(tmp_path / "idx"), "--oov-config", str(cfg),
                 "--class-names", "sorted"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["count"] == 6 and out["num_classes"] == 2
    assert TrainIndex.load(tmp_path / "idx").classes.tolist() == [0, 0, 0, 1, 1, 1]
    assert main(["oov", "embed", str(root), "--oov-config", str(cfg)]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["images"] == 6 and out["encoded"] == 6
    assert main(["oov", "embed", str(root), "--oov-config", str(cfg)]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["cache_hits"] == 6
    # a missing checkpoint: one line, exit status 2
    assert main(["oov", "index", str(root), "--out", str(tmp_path / "i2"), "--checkpoint",
                 str(tmp_path / "missing.pt")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


def test_factory_builds_for_a_compiled_taxonomy(tmp_path: Path) -> None:
    import yaml
    from errortaxa.engine.providers.factory import ProviderConfigError
    from errortaxa.server.providers import ServerProviders

    compiled = SimpleNamespace(same_superclass=SAME, vocabulary=VOCAB)
    good = tmp_path / "oov.yaml"
    good.write_text(yaml.safe_dump({"model_config": TINY, "pretrained": None, "random_init": True,
                                    "cache_dir": str(tmp_path / "cache"), "device": "cpu"}))
    prov = OOVFactory().build(good, compiled)  # type: ignore[arg-type]
    assert isinstance(prov, OOVProvider) and prov.name == "oov"
    assert prov.generator.class_wnids == VOCAB.wnids
    # no weights (or no GPU with require_gpu): the factory says why; a server's rows are "not evaluated"
    missing = tmp_path / "missing.yaml"
    missing.write_text(yaml.safe_dump({"checkpoint": str(tmp_path / "ViT-L-14-336.pt")}))
    with pytest.raises(ProviderUnavailable, match="checkpoint not found"):
        OOVFactory().build(missing, compiled)  # type: ignore[arg-type]
    down = ServerProviders({"oov": missing}).build(compiled)["oov"]  # type: ignore[arg-type]
    res = down.evaluate("fine_grained_oov", {}, None, np.arange(2))  # type: ignore[arg-type]
    assert res.known.tolist() == [False, False] and "checkpoint not found" in (res.reason[0] or "")
    # a malformed config is an error naming the option and the file, not a silent "unavailable"
    typo = tmp_path / "typo.yaml"
    typo.write_text(yaml.safe_dump({"modle": "ViT-B-32"}))
    with pytest.raises(ProviderConfigError, match=r"--oov-config .*typo\.yaml: unknown oov configuration keys"):
        OOVFactory().build(typo, compiled)  # type: ignore[arg-type]
