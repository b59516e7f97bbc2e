#!/usr/bin/env python
"""Benchmark of the OOV provider (issue 4, item 6). Ends with one ``RESULT {json}`` line.

1. Image embeddings per second of CLIP ViT-L/14 at 336 px over a batch-size sweep (bf16 autocast and
   SDPA on a GPU; fp32 on the CPU), with FLOPs per image (torch's FlopCounterMode) and, on a GPU, the
   share of its dense bf16 peak.
2. An end-to-end OOV pass through :class:`errortaxa.providers.oov.OOVProvider` (hash, decode in DataLoader
   workers, embed, cache, kNN gate over a generated training-set index, WordNet proposals, prompt
   embeddings, zero-shot scoring): 20,000 generated images with ViT-L/14@336 on a GPU; on the CPU a
   small model (ViT-B-32) on a few hundred images. Cold (empty caches) and warm (a second provider
   reading the on-disk caches, as the next model's run would).
3. The reference's way on a sample: one image at a time in fp32, image and all its prompts encoded
   per error, no cache; its per-image time projected to the same pass.

Weights are random (none can be downloaded here); speed does not depend on them.

    python bench/oov.py              # GPU when CUDA is available, else the CPU figures
    python bench/oov.py --quick      # smaller CPU run (smoke test)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
ANCHOR = ROOT.parent / "shared" / "data" / "anchor-decisions-dev.jsonl"

# dense bf16 tensor-core peaks (TFLOP/s, without sparsity)
PEAK_BF16 = {"H200": 989.4, "H100 SXM": 989.4, "H100 80GB HBM3": 989.4, "H100 NVL": 835.0,
             "H100 PCIe": 756.0, "H100": 989.4, "A100": 312.0, "L40S": 362.0, "A10": 125.0}  # fmt: skip


def peak_for(name: str) -> float | None:
    for key, val in PEAK_BF16.items():
        if key in name:
            return val
    return None


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- generated images ------------------------------------------------------------------------------

def _write_image(job: tuple[str, int]) -> None:
    from PIL import Image

    path, seed = job
    rng = np.random.default_rng(seed)
    h, w = 375, 500
    y, x = np.mgrid[0:h, 0:w]
    base = rng.integers(0, 256, size=3)
    img = (base + x[..., None] * rng.integers(1, 4, size=3) // 3 + y[..., None] * rng.integers(1, 4, size=3) // 3)
    img = (img + rng.integers(0, 40, size=(h // 25, w // 25, 3)).repeat(25, 0).repeat(25, 1)) % 256
    Image.fromarray(img.astype(np.uint8)).save(path, format="JPEG", quality=85)


def write_images(jobs: list[tuple[str, int]], workers: int) -> None:
    for p, _ in jobs:
        Path(p).parent.mkdir(parents=True, exist_ok=True)
    if workers > 1 and len(jobs) > 64:
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(_write_image, jobs, chunksize=64))
    else:
        for j in jobs:
            _write_image(j)


# -- 1. throughput sweep ------------------------------------------------------------------------------

def throughput(device: torch.device, batches: list[int], reps: int) -> dict[str, Any]:
    from errortaxa.providers.oov import OOVConfig
    from errortaxa.providers.oov.embed import set_deterministic
    from errortaxa.providers.oov.model import ClipEncoder
    from torch.utils.flop_counter import FlopCounterMode

    set_deterministic()
    precision = "bf16" if device.type == "cuda" else "fp32"
    cfg = OOVConfig(model="ViT-L-14-336", pretrained=None, random_init=True, cache_dir="none",
                    device=str(device), precision=precision)
    enc = ClipEncoder(cfg)
    enc.load()
    shape = enc.input_shape
    with FlopCounterMode(display=False) as fc:
        enc.encode_pixels(torch.randn(1, *shape))
    flops = float(fc.get_total_flops())
    sweep = []
    for bs in batches:
        x = torch.randn(bs, *shape)
        if device.type == "cuda":
            x = x.pin_memory()
        try:
            enc.encode_pixels(x)  # warm-up
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(reps):
                enc.encode_pixels(x)
            if device.type == "cuda":
                torch.cuda.synchronize()
            dt = (time.perf_counter() - t0) / reps
        except torch.cuda.OutOfMemoryError:
            log(f"  batch {bs}: out of memory")
            torch.cuda.empty_cache()
            break
        ips = bs / dt
        sweep.append({"batch": bs, "images_per_s": round(ips, 2), "tflops": round(ips * flops / 1e12, 3)})
        log(f"  batch {bs:4d}: {ips:9.2f} images/s  {ips * flops / 1e12:8.3f} TFLOP/s")
    best = max(sweep, key=lambda r: r["images_per_s"]) if sweep else None
    out: dict[str, Any] = {"model": "ViT-L-14-336", "precision": precision, "sdpa": device.type == "cuda",
                           "gflops_per_image": round(flops / 1e9, 2), "sweep": sweep,
                           "best_batch": best["batch"] if best else None,
                           "best_images_per_s": best["images_per_s"] if best else None}
    if device.type == "cuda" and best:
        name = torch.cuda.get_device_name(device)
        peak = peak_for(name)
        out["gpu"] = name
        out["peak_bf16_tflops"] = peak
        out["peak_share"] = round(best["tflops"] / peak, 4) if peak else None
    del enc
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return out


# -- 2. end-to-end pass --------------------------------------------------------------------------------

def oov_pairs(n: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """(pred, target) pairs: the reference's OOV errors (cycled) when the data is here, else random."""
    pairs: list[tuple[int, int]] = []
    if ANCHOR.is_file():
        for line in ANCHOR.read_text().splitlines():
            r = json.loads(line)
            if r["category"] == "fine_grained_oov":
                pairs.append((int(r["pred"]), int(r["target"])))
    if not pairs:
        pairs = [(int(a), int(b)) for a, b in rng.integers(0, 1000, size=(200, 2)) if a != b]
    return [pairs[i % len(pairs)] for i in range(n)]


def end_to_end(device: torch.device, model: str, n_images: int, distinct_pairs: int, train_per_class: int,
               workdir: Path, workers: int) -> tuple[dict[str, Any], dict[str, Any]]:
    from errortaxa.engine import default_compiled
    from errortaxa.engine.knowledge.vocabulary import Vocabulary
    from errortaxa.engine.knowledge.wordnet import WordNet
    from errortaxa.engine.samples import SampleBatch
    from errortaxa.providers.oov import OOVConfig
    from errortaxa.providers.oov.knn import build_index
    from errortaxa.providers.oov.model import ClipEncoder
    from errortaxa.providers.oov.provider import OOVProvider

    rng = np.random.default_rng(0)
    wn, vocab = WordNet.load(), Vocabulary.imagenet()
    compiled = default_compiled()
    same = compiled.same_superclass
    n_super = len(compiled.superclass_names)
    pool = oov_pairs(10_000, rng)
    uniq = list(dict.fromkeys(pool))[:distinct_pairs]
    pairs = [uniq[i % len(uniq)] for i in range(n_images)]

    t0 = time.perf_counter()
    val_dir = workdir / "val"
    names = [f"BENCH_val_{i:08d}.JPEG" for i in range(n_images)]
    write_images([(str(val_dir / n), i) for i, n in enumerate(names)], workers)
    # training set: the predicted classes (so the gate has neighbours to find) plus some others
    classes = sorted({p for p, _ in uniq} | {int(c) for c in rng.integers(0, 1000, size=max(4, len(uniq) // 4))})
    train_jobs = [(str(workdir / "train" / vocab.wnids[c] / f"{vocab.wnids[c]}_{j}.JPEG"), 10_000_000 + c * 100 + j)
                  for c in classes for j in range(train_per_class)]
    write_images(train_jobs, workers)
    t_gen = time.perf_counter() - t0
    log(f"  generated {n_images} + {len(train_jobs)} images in {t_gen:.1f}s")

    precision = "bf16" if device.type == "cuda" else "fp32"
    cfg = OOVConfig(model=model, pretrained=None, random_init=True, cache_dir=str(workdir / "cache"),
                    device=str(device), precision=precision, images=(str(val_dir),),
                    batch_size=256 if device.type == "cuda" else 64, num_workers=workers)
    enc = ClipEncoder(cfg)
    t0 = time.perf_counter()
    index = build_index(workdir / "train", workdir / "index", encoder=enc, vocab=vocab, class_names="wnid")
    t_index = time.perf_counter() - t0
    log(f"  index of {len(index)} training images in {t_index:.1f}s")

    batch = SampleBatch.from_lists(target=[t for _, t in pairs], labels=[[t] for _, t in pairs],
                                   pred=[p for p, _ in pairs], images=names)
    rows = np.arange(n_images)

    def run(label: str) -> tuple[float, Any, dict[str, Any], OOVProvider]:
        prov = OOVProvider(cfg, same_superclass=same, wordnet=wn, vocab=vocab, encoder=ClipEncoder(cfg),
                           index=str(workdir / "index"))
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        res = prov.evaluate("fine_grained_oov", {}, batch, rows)
        if device.type == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t
        stats = dict(prov.last_stats)
        stats["prompts_encoded"] = prov._shared.text.encoded_prompts
        stats["model_loaded"] = prov.encoder.loaded
        log(f"  {label}: {dt:.2f}s ({n_images / dt:.1f} images/s) gate {stats.get('gate_passed')} "
            f"oov {int(res.holds.sum())} prompts encoded {stats['prompts_encoded']}")
        return dt, res, stats, prov

    cold_s, cold, cold_stats, prov = run("cold")
    warm_s, warm, warm_stats, _ = run("warm")
    same_answers = bool(np.array_equal(cold.holds, warm.holds) and cold.evidence == warm.evidence)
    n_prompts = [len(prov.generator.generate(p, t)) for p, t in uniq]
    e2e = {
        "model": model, "precision": precision, "images": n_images, "distinct_pairs": len(uniq),
        "superclasses": n_super, "training_images": len(index), "index_s": round(t_index, 2),
        "cold_s": round(cold_s, 2), "warm_s": round(warm_s, 2),
        "cold_images_per_s": round(n_images / cold_s, 1), "warm_images_per_s": round(n_images / warm_s, 1),
        "gate_passed": int(cold_stats.get("gate_passed", 0)), "oov": int(cold.holds.sum()),
        "known": int(cold.known.sum()), "prompts_per_pair_mean": round(float(np.mean(n_prompts)), 1),
        "prompts_encoded_cold": cold_stats["prompts_encoded"], "prompts_encoded_warm": warm_stats["prompts_encoded"],
        "embedding_cold": cold_stats.get("embedding"), "embedding_warm": warm_stats.get("embedding"),
        "warm_loaded_model": warm_stats["model_loaded"], "cold_equals_warm": same_answers,
    }
    ctx = {"pairs": pairs, "names": names, "val_dir": val_dir, "wn": wn, "vocab": vocab, "same": same}
    return e2e, ctx


# -- 3. the reference's way ----------------------------------------------------------------------------

def reference_way(device: torch.device, ctx: dict[str, Any], sample: int, model: str) -> dict[str, Any]:
    """Per error: open + preprocess the image, encode it and all its prompts (fp32, full context), softmax."""
    from errortaxa.providers.oov import OOVConfig
    from errortaxa.providers.oov.model import ClipEncoder
    from errortaxa.providers.oov.proposals import generate
    from PIL import Image

    cfg = OOVConfig(model=model, pretrained=None, random_init=True, cache_dir="none", device=str(device),
                    precision="fp32")
    enc = ClipEncoder(cfg)
    m = enc.load()
    tok, pre = enc.tokenizer, enc.transform
    times = []
    prompts_seen = []
    for i in range(sample):
        pred, target = ctx["pairs"][i]
        t = time.perf_counter()
        props = generate(pred, target, wordnet=ctx["wn"], vocab=ctx["vocab"], same_superclass=ctx["same"])
        prompts = [f"A photo of a {p.lemma}" for p in props]
        image = pre(Image.open(ctx["val_dir"] / ctx["names"][i]).convert("RGB")).unsqueeze(0).to(device)
        text = tok(prompts).to(device)
        with torch.no_grad():
            fi = m.encode_image(image)  # type: ignore[operator]
            ft = m.encode_text(text)  # type: ignore[operator]
        fi = fi / fi.norm(dim=-1, keepdim=True)
        ft = ft / ft.norm(dim=-1, keepdim=True)
        probs = (100.0 * fi @ ft.T).softmax(dim=-1).squeeze(0)
        int(torch.argmax(probs).item())
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
        prompts_seen.append(len(prompts))
    per = float(np.mean(times[1:] if len(times) > 2 else times))
    log(f"  reference way: {per:.3f}s per image ({np.mean(prompts_seen):.0f} prompts each), sample {sample}")
    return {"model": model, "precision": "fp32", "sample": sample, "s_per_image": round(per, 4),
            "prompts_mean": round(float(np.mean(prompts_seen)), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda")
    ap.add_argument("--quick", action="store_true", help="a smaller run (CPU smoke test)")
    ap.add_argument("--images", type=int, default=None, help="images of the end-to-end pass")
    ap.add_argument("--workdir", default=None, help="where the generated images and caches go (default: temp)")
    args = ap.parse_args()
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    gpu = device.type == "cuda"
    workers = max(1, min(16, (os.cpu_count() or 2) - 1))
    result: dict[str, Any] = {"device": torch.cuda.get_device_name(device) if gpu else "cpu",
                              "cpu_threads": torch.get_num_threads(), "torch": torch.__version__}
    if gpu:
        batches, reps, model, n_images, distinct, per_class, ref_sample = [16, 32, 64, 128, 256, 512], 5, \
            "ViT-L-14-336", 20_000, 2000, 10, 50
    elif args.quick:
        batches, reps, model, n_images, distinct, per_class, ref_sample = [1], 1, "ViT-B-32", 64, 8, 2, 3
    else:
        batches, reps, model, n_images, distinct, per_class, ref_sample = [1, 2, 4], 2, "ViT-B-32", 300, 30, 4, 6
    if args.images:
        n_images = args.images
    log(f"[1] ViT-L-14-336 image embeddings on {result['device']}")
    result["throughput"] = throughput(device, batches, reps)
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        log(f"[2] end-to-end OOV pass, {n_images} images, {model}")
        e2e, ctx = end_to_end(device, model, n_images, distinct, per_class, Path(tmp), workers)
        result["end_to_end"] = e2e
        log(f"[3] the reference's way, {ref_sample} images")
        ref = reference_way(device, ctx, ref_sample, model)
    ref["projected_s"] = round(ref["s_per_image"] * n_images, 1)
    result["reference_way"] = ref
    result["speedup_cold"] = round(ref["projected_s"] / e2e["cold_s"], 1)
    result["speedup_warm"] = round(ref["projected_s"] / e2e["warm_s"], 1)
    if not gpu:
        result["note"] = ("no GPU here: CPU figures (ViT-L/14@336 fp32 sweep; end-to-end with a small model); "
                          "the GPU figures (bf16, 20,000 images) run when CUDA is available")
    print("RESULT " + json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
