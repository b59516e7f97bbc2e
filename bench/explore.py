"""The explorer's speed (issue 17, point 7), through its real HTTP server on 127.0.0.1:

* ``apply_edit_s``: POST /api/taxonomy with a one-rule edit (the spurious-correlation rule's
  co-occurrence threshold, a different one each run so nothing is cached), answered with the
  transitions for all models and the category table: compile, classify_many over [models, images],
  transitions, table, cases; 1,000 generated models x 20,000 images (bench/synthetic.py);
* ``errors_page_ms``: GET /api/errors pages of 60 (all models and one model, with and without filters);
* ``thumb_cold_ms``: GET /thumb/IMAGE of ~500 x 375 JPEGs never asked before;
* ``start_s``: ``errortaxa explore examples/predictions.jsonl`` until /api/state answers.

Medians over the runs; where the apply time goes is printed from the server's own timings, with
the memory the view cache holds per taxonomy.

    python bench/explore.py [--models 1000] [--images 20000] [--runs 5]

Ends with one line ``RESULT {json}`` (apply_edit_s, errors_page_ms, thumb_cold_ms, start_s, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from errortaxa.engine import default_compiled
from errortaxa.explore.app import Explorer, edit_data_dirs
from errortaxa.explore.data import ExploreInputs
from errortaxa.explore.images import ImageFolder
from errortaxa.explore.server import ExploreServer
from errortaxa.study.models import ImageSet, ModelFile
from synthetic import make_images, make_predictions

ROOT = Path(__file__).resolve().parents[1]
RULE = "              - {cooccurs: {table: real_val, min_count: 2}}"


def request(url: str, body: bytes | None = None) -> tuple[bytes, float]:
    start = time.perf_counter()
    req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    with urllib.request.urlopen(req, timeout=120) as answer:
        data = answer.read()
    return data, time.perf_counter() - start


def write_jpegs(folder: Path, names: list[str], seed: int = 0) -> None:
    """Photo-like 500 x 375 JPEGs (smooth gradients and texture), ImageNet's median size."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:375, 0:500].astype(np.float32)
    for name in names:
        a, b, c = rng.uniform(0.005, 0.03, 3)
        base = np.stack([128 + 100 * np.sin(a * x + b * y), 128 + 100 * np.cos(b * x - c * y),
                         128 + 100 * np.sin(c * x * 0.5 + a * y)], axis=-1)
        noise = rng.normal(0, 12, base.shape)
        Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)).save(folder / name, quality=90)


def memory_of(explorer: Explorer) -> dict[str, float]:
    """Bytes the corpus and one cached view hold (numpy arrays), in MB."""
    c, v = explorer.corpus, explorer.loaded
    corpus = sum(a.nbytes for a in (c.preds, c.pair_id, c.pair_keys, c.pair_count, c.pair_row, c.pair_pred,
                                    c.pair_target, c.errors, c.error_pairs, c.order_models, c.target, c.hit,
                                    c.error_model, c.error_pair, c.target_pair))
    view = v.pair_value.nbytes + v.pair_rule.nbytes + v.counts.nbytes
    tables = sum(getattr(node, "nbytes", 0) for node in (v.taxonomy.same_superclass, v.taxonomy.membership,
                                                         *v.taxonomy.cooccurrence.values()))
    return {"corpus_mb": corpus / 1e6, "view_decisions_mb": view / 1e6, "view_taxonomy_tables_mb": tables / 1e6}


def start_time(runs: int) -> list[float]:
    """Seconds from starting ``errortaxa explore`` on the bundled example to its first answer."""
    exe = Path(sys.executable).parent / "errortaxa"
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.Popen([str(exe), "explore", str(ROOT / "examples" / "predictions.jsonl"), "--port", "0",
                                 "-q"], stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().strip()
            request(url + "api/state")
            out.append(time.perf_counter() - start)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    taxonomy = default_compiled()
    batch = make_images(taxonomy, args.images)
    preds = make_predictions(taxonomy, batch, args.models)
    models = [ModelFile(f"model{m:04d}", f"model{m:04d}.npz") for m in range(args.models)]
    inputs = ExploreInputs(taxonomy=taxonomy, images=ImageSet(batch), models=models, preds=preds)
    yaml_text = taxonomy.loaded.sources[0].text
    assert RULE in yaml_text
    os.environ["ERRORTAXA_DATA_DIR"] = os.pathsep.join(edit_data_dirs(taxonomy, None))  # as errortaxa explore
    start = time.perf_counter()
    explorer = Explorer(inputs, yaml_text=yaml_text, sources=["generated"], views=3)
    print(f"{args.models} models x {args.images} images: {explorer.corpus.error_total} errors, "
          f"{len(explorer.corpus.pair_keys)} distinct (image, class) errors; explorer built in "
          f"{time.perf_counter() - start:.2f} s")
    memory = memory_of(explorer)
    print("memory: " + ", ".join(f"{k} {v:.1f}" for k, v in memory.items()))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        names = explorer.corpus.image_names[: 10 * args.runs]
        write_jpegs(folder, names)
        wnids = taxonomy.vocabulary.wnids
        images = ImageFolder(folder, lambda n: wnids[int(explorer.corpus.target[explorer.corpus.image_index[n]])]
                             if n in explorer.corpus.image_index else None)
        server = ExploreServer(explorer, images, "127.0.0.1", 0)
        server.serve_in_thread()
        url = server.url
        try:
            apply_s: list[float] = []
            parts: list[dict[str, float]] = []
            for run in range(args.runs):
                edited = yaml_text.replace(RULE, RULE.replace("min_count: 2", f"min_count: {3 + run}"))
                data, seconds = request(url + "api/taxonomy?model=model0000", edited.encode())
                answer: dict[str, Any] = json.loads(data)
                assert answer["ok"], answer.get("problems")
                apply_s.append(seconds)
                parts.append(answer["timings"])
                moved = sum(sum(r) for r in answer["transitions"]["all"]) - sum(
                    answer["transitions"]["all"][i][j] for i, a in enumerate(answer["transitions"]["from"])
                    for j, b in enumerate(answer["transitions"]["to"]) if a == b)
                print(f"apply edit {run}: {seconds:.3f} s, {moved} errors moved category; " + ", ".join(
                    f"{k} {v:.3f}" for k, v in answer["timings"].items()))
            page_ms: list[float] = []
            queries = ["", "&category=fine_grained", "&min_models=5", "&model=model0001",
                       "&model=model0002&category=model_failure", "&group=organism&sort=image"]
            for run in range(args.runs):
                for q in queries:
                    _, seconds = request(url + f"api/errors?limit=60&offset={60 * run}{q}")
                    page_ms.append(seconds * 1000)
            thumb_ms: list[float] = []
            for name in names:
                _, seconds = request(url + "thumb/" + urllib.parse.quote(name))
                thumb_ms.append(seconds * 1000)
            _, warm = request(url + "thumb/" + urllib.parse.quote(names[0]))
        finally:
            server.shutdown()
            server.server_close()
    starts = start_time(max(1, min(args.runs, 3)))
    where = {k: statistics.median(p.get(k, 0.0) for p in parts) for k in parts[0]}
    print("apply edit, median seconds by part: " + ", ".join(f"{k} {v:.3f}" for k, v in where.items()))
    print(f"errors page: median {statistics.median(page_ms):.1f} ms, max {max(page_ms):.1f} ms "
          f"({len(page_ms)} pages)")
    print(f"thumbnail: cold median {statistics.median(thumb_ms):.1f} ms, warm {warm * 1000:.2f} ms")
    print(f"start-up on the bundled example: {', '.join(f'{s:.2f}' for s in starts)} s")
    load = os.getloadavg()
    print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    result = {"apply_edit_s": round(statistics.median(apply_s), 3),
              "errors_page_ms": round(statistics.median(page_ms), 1),
              "thumb_cold_ms": round(statistics.median(thumb_ms), 1),
              "start_s": round(statistics.median(starts), 2),
              "models": args.models, "images": args.images, "runs": args.runs,
              "apply_parts_s": {k: round(v, 3) for k, v in where.items()},
              "memory_mb": {k: round(v, 1) for k, v in memory.items()}}
    print("RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
