"""Benchmark: a study of generated models end to end (read, classify, aggregate, write the table).

Default: 1000 models x 20,000 images, each model a top-1 .npz over the 50,000 validation images
(the images are the first 20,000). Reports seconds and predictions per second, single-process
and, when Ray is installed, on a local Ray cluster, and the same single-process study with a taxonomy
comparison (``--compare-taxonomy`` with the severity taxonomy's ``severity`` axis, all models pooled).
``bootstrap_s`` is the compute time of the default study's bootstrap of the per-class means'
intervals (in a background thread, mostly while ``single_s`` decides the models), ``consistency_s``
the error consistency of all pairs of models (``--consistency``, computed apart on the same
decisions, not written). Ends with one line ``RESULT {json}``.

    python bench/study.py [--models 1000] [--images 20000] [--no-ray] [--no-compare]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from errortaxa.engine import compile_path, default_compiled
from errortaxa.study.consistency import study_consistency
from errortaxa.study.models import ImageSet, discover_models, read_metadata
from errortaxa.study.study import run_study
from synthetic import make_images, make_predictions


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--no-compare", action="store_true")
    args = parser.parse_args()
    tax = default_compiled()
    images = make_images(tax, args.images, seed=0)
    result: dict[str, object] = {"models": args.models, "images": args.images, "taxonomy": tax.name}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "models"
        root.mkdir()
        t = time.perf_counter()
        full = np.zeros(50_000, np.int16)
        for start in range(0, args.models, 100):
            preds = make_predictions(tax, images, min(100, args.models - start), seed=1 + start)
            for k, p in enumerate(preds):
                full[: args.images] = p
                np.savez(root / f"model{start + k:04d}.npz", top1=full)
        result["generate_s"] = round(time.perf_counter() - t, 2)
        pd.DataFrame({"name": [f"model{i:04d}" for i in range(args.models)],
                      "family": np.array(["cnn", "vit", "mlp"])[np.arange(args.models) % 3]}
                     ).to_csv(Path(tmp) / "meta.csv", index=False)
        iset = ImageSet(images)
        t = time.perf_counter()
        models = discover_models([root])
        study = run_study(tax, iset, models, metadata=read_metadata(Path(tmp) / "meta.csv"), progress=False)
        study.write(Path(tmp) / "out")
        seconds = time.perf_counter() - t
        predictions = args.models * args.images
        result["single_s"] = round(seconds, 2)
        result["bootstrap_s"] = round(study.timings["bootstrap_s"], 2)
        assert study.decisions is not None
        pairs = study_consistency(study.decisions, study.error_categories)  # as --consistency computes it
        result["consistency_s"] = round(pairs.seconds, 2)
        print(f"error consistency of {args.models} models: {pairs.seconds:.1f} s", file=sys.stderr)
        result["single_predictions_per_s"] = round(predictions / seconds)
        print(f"single process: {seconds:.1f} s, {predictions / seconds:,.0f} predictions/s", file=sys.stderr)
        if not args.no_compare:
            other = compile_path(Path(__file__).resolve().parents[1] / "rules/imagenet/vasudevan2022_severity.yaml")
            t = time.perf_counter()
            compared = run_study(tax, iset, models, progress=False, compare=other, compare_axis="severity")
            seconds = time.perf_counter() - t
            assert compared.diff is not None
            result["compare_s"] = round(seconds, 2)
            result["compare_pooled_errors"] = compared.diff.samples
            result["compare_matches_single"] = bool(compared.table.equals(study.table.drop(columns=["family"])))
            print(f"single process with --compare-taxonomy: {seconds:.1f} s", file=sys.stderr)
        try:
            import ray  # noqa: F401
        except ImportError:
            ray_ok = False
        else:
            ray_ok = not args.no_ray
        if ray_ok:
            t = time.perf_counter()
            distributed = run_study(tax, iset, models, ray_address="local", progress=False)
            seconds = time.perf_counter() - t
            result["ray_local_s"] = round(seconds, 2)
            result["ray_predictions_per_s"] = round(predictions / seconds)
            cols = [c for c in distributed.table.columns]
            result["ray_matches_single"] = bool(distributed.table[cols].equals(study.table[cols]))
            print(f"ray (local): {seconds:.1f} s", file=sys.stderr)
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
