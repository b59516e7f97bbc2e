"""The OOV embedding jobs on Ray Data (a local instance, a tiny random open_clip model on the CPU):
the Ray-built training-set index equals the single-process one; the cache fill; the resource plan."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("ray")
torch = pytest.importorskip("torch")
pytest.importorskip("open_clip")
import yaml  # noqa: E402
from errortaxa.cli import main  # noqa: E402
from errortaxa.providers.oov import OOVConfig  # noqa: E402
from errortaxa.providers.oov.embed import ImageEmbedder  # noqa: E402
from errortaxa.providers.oov.errors import OOVConfigError  # noqa: E402
from errortaxa.providers.oov.knn import TrainIndex, build_index  # noqa: E402
from errortaxa.providers.oov.model import ClipEncoder  # noqa: E402
from errortaxa.providers.oov.ray_index import build_index_ray, plan  # noqa: E402
from test_oov_pipeline import make_image, tiny_config  # noqa: E402

RAY_FLAGS = ["--ray", "local", "--actors", "2", "--cpus-per-actor", "1", "--ray-batch-size", "8"]


def _train_dir(root: Path, classes: int = 4, per_class: int = 10) -> Path:
    for c in range(classes):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(per_class):
            make_image(100 * c + i).save(root / f"class{c}" / f"img_{i:02d}.png")
    (root / f"class{classes - 1}" / "broken.png").write_bytes(b"not an image")  # skipped by both paths
    return root


def _config_file(tmp_path: Path, config: OOVConfig) -> Path:
    path = tmp_path / "oov.yaml"
    keys = ("model_config", "pretrained", "random_init", "seed", "cache_dir", "device", "num_workers", "batch_size")
    path.write_text(yaml.safe_dump({k: getattr(config, k) if k != "model_config" else dict(config.model_config or {})
                                    for k in keys}))
    return path


def _queries(encoder: ClipEncoder, tmp_path: Path) -> np.ndarray:
    paths = []
    for j in range(6):
        p = tmp_path / "queries" / f"q{j}.png"
        p.parent.mkdir(exist_ok=True)
        make_image(5000 + j).save(p)
        paths.append(str(p))
    vecs, errs = ImageEmbedder(encoder, cache=None, memo=None).encode_items(paths)
    assert not any(errs)
    return vecs


def _assert_same_index(a: TrainIndex, b: TrainIndex, queries: np.ndarray, atol: float) -> None:
    assert a.files == b.files and len(a) == 40
    np.testing.assert_array_equal(a.classes, b.classes)
    for key in ("model_id", "space_id", "model", "weights", "dim", "count", "skipped", "dtype", "num_classes",
                "source", "precision", "device", "version"):
        assert a.meta[key] == b.meta[key], key
    assert a.embeddings.dtype == b.embeddings.dtype
    np.testing.assert_allclose(np.asarray(a.embeddings, np.float32), np.asarray(b.embeddings, np.float32), atol=atol)
    for q in (queries, np.asarray(b.embeddings[:8], np.float32)):
        sa, ra = a.topk(q, 5)
        sb, rb = b.topk(q, 5)
        np.testing.assert_array_equal(ra, rb)
        np.testing.assert_allclose(sa, sb, atol=atol)
        np.testing.assert_array_equal(a.neighbour_classes(q, 5), b.neighbour_classes(q, 5))


def test_ray_index_equals_single_process(tmp_path: Path, ray_local: Any, capsys: pytest.CaptureFixture[str]) -> None:
    root = _train_dir(tmp_path / "train")
    config = tiny_config(tmp_path)
    single = build_index(root, tmp_path / "single", config=config, class_names="sorted")
    code = main(["oov", "index", str(root), "--out", str(tmp_path / "ray"), "--class-names", "sorted",
                 "--oov-config", str(_config_file(tmp_path, config)), *RAY_FLAGS])
    assert code == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["count"] == 40 and printed["skipped"] == 1
    distributed = TrainIndex.load(tmp_path / "ray")
    assert distributed.meta["ray"] == {"actors": 2, "gpus_per_actor": 0.0, "cpus_per_actor": 1.0, "batch_size": 8}
    assert ray_local.is_initialized()  # the shared instance is left running
    _assert_same_index(distributed, single, _queries(ClipEncoder(config), tmp_path), atol=1e-6)


def test_ray_fills_the_embedding_cache(tmp_path: Path, ray_local: Any, capsys: pytest.CaptureFixture[str]) -> None:
    root = _train_dir(tmp_path / "imgs", classes=2, per_class=6)
    config = tiny_config(tmp_path)
    code = main(["oov", "embed", str(root), "--oov-config", str(_config_file(tmp_path, config)), *RAY_FLAGS[:-1], "4"])
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 1  # the broken file
    assert (report["images"], report["encoded"], report["cache_hits"], report["failed"]) == (13, 12, 0, 1)
    assert "broken.png" in report["failures"][0]
    paths = sorted(str(p) for p in root.rglob("img_*.png"))
    embedder = ImageEmbedder.from_encoder(ClipEncoder(config))
    assert report["model_id"] == embedder.encoder.model_id
    cached = embedder.embed(paths)
    assert cached.ok.all() and cached.stats.cache_hits == 12 and cached.stats.encoded == 0
    fresh, _ = ImageEmbedder(embedder.encoder, cache=None, memo=None).encode_items(paths)
    np.testing.assert_allclose(cached.vectors, fresh, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_ray_index_on_gpu_actors(tmp_path: Path, ray_local: Any) -> None:
    if ray_local.cluster_resources().get("GPU", 0) < 1:
        pytest.skip("the Ray instance has no GPU")
    root = _train_dir(tmp_path / "train")
    config = tiny_config(tmp_path, device="auto", batch_size=16)
    single = build_index(root, tmp_path / "single", config=config, class_names="sorted")
    distributed = build_index_ray(root, tmp_path / "ray", config=config, class_names="sorted", batch_size=16)
    assert distributed.meta["device"] == "cuda" and distributed.meta["precision"] == "bf16"
    assert distributed.meta["ray"]["gpus_per_actor"] == 1.0
    _assert_same_index(distributed, single, _queries(ClipEncoder(config), tmp_path), atol=2e-2)


def test_plan_defaults() -> None:
    base = OOVConfig(batch_size=128)
    gpu = plan(base, {"CPU": 64.0, "GPU": 8.0})
    assert (gpu.actors, gpu.gpus_per_actor, gpu.cpus_per_actor, gpu.batch_size) == (8, 1.0, 8.0, 1024)
    assert (gpu.config.device, gpu.config.precision, gpu.config.num_workers) == ("cuda", "bf16", 7)
    cpu = plan(base, {"CPU": 16.0})
    assert (cpu.actors, cpu.gpus_per_actor, cpu.cpus_per_actor) == (4, 0.0, 4.0)
    assert (cpu.config.device, cpu.config.precision) == ("cpu", "fp32")
    small = plan(base.replace(num_workers=0), {"CPU": 2.0, "GPU": 1.0}, actors=1, batch_size=32)
    assert (small.actors, small.cpus_per_actor, small.batch_size, small.config.num_workers) == (1, 2.0, 32, 0)
    assert plan(base.replace(device="cpu"), {"CPU": 8.0, "GPU": 2.0}).gpus_per_actor == 0.0
    with pytest.raises(OOVConfigError, match="no GPU"):
        plan(base.replace(device="cuda"), {"CPU": 8.0})


def test_missing_ray_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    code = main(["oov", "index", str(tmp_path), "--out", str(tmp_path / "i"), "--ray", "local",
                 "--oov-config", str(_config_file(tmp_path, tiny_config(tmp_path)))])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "pip install 'errortaxa[ray]'" in err[0]
