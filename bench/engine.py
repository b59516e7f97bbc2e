"""Engine throughput: 1000 models x 20,000 images with the default taxonomy, against a faithful
row-at-a-time baseline (pandas ``DataFrame.apply`` of a per-row function, as the reference does)
timed side by side in the same run.

    python bench/engine.py [--models 1000] [--images 20000] [--baseline-rows 20000]

Ends with one line ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from errortaxa.engine import CompiledTaxonomy, SampleBatch, default_compiled
from errortaxa.engine.imageset import ImageSetClassifier
from synthetic import make_images, make_predictions


def baseline_row_function(taxonomy: CompiledTaxonomy) -> Any:
    """The reference's way: one Python function per row, over sets and dicts (no CLIP step)."""
    c = len(taxonomy.vocabulary)
    supers = [set(taxonomy.superclasses_of(k)) or {f"single_{k}"} for k in range(c)]
    overlap_matrix = next(iter(_mappings(taxonomy)))
    overlapping = {(int(a), int(b)) for a, b in zip(*np.nonzero(overlap_matrix), strict=True)}
    cooc = next(iter(taxonomy.cooccurrence.values()))
    cooc_pairs = {(int(a), int(b)): int(cooc[a, b]) for a, b in zip(*np.nonzero(cooc), strict=True)}
    rule = next(r for r in taxonomy.axes["category"].rules if r.id == "non_prototypical")
    non_prototypical = rule.node.images or frozenset()  # type: ignore[attr-defined]

    def classify(row: pd.Series) -> str:
        target, pred, labels = row["target"], row["pred"], row["labels"]
        if pred == target and target in labels:
            return "correct"
        if row["problematic"] and not labels and pred == target:
            return "problematic_correct"
        if (pred, target) in overlapping:
            return "overlapping_classes"
        if pred in labels:
            return "multi_label"
        if any(supers[pred] & supers[lab] for lab in labels):
            return "fine_grained"
        if row["problematic"] and target not in labels:
            if supers[pred] & supers[target]:
                return "fine_grained_target"
            if cooc_pairs.get((pred, target), 0) >= 2:
                return "spurious_correlation_target"
        if any(cooc_pairs.get((pred, lab), 0) >= 2 and not supers[pred] & supers[lab] for lab in labels):
            return "spurious_correlation"
        if row["image"] in non_prototypical:
            return "non_prototypical"
        return "model_failure"

    return classify


def _mappings(taxonomy: CompiledTaxonomy) -> list[np.ndarray]:
    rule = next(r for r in taxonomy.axes["category"].rules if r.id == "overlapping_classes")
    return [rule.node.matrix]  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--baseline-rows", type=int, default=20_000)
    args = parser.parse_args()

    taxonomy = default_compiled()
    images = make_images(taxonomy, args.images)
    preds = make_predictions(taxonomy, images, args.models)
    total = preds.size
    print(f"{args.models} models x {args.images} images = {total:,} predictions; "
          f"{(preds == images.target[None, :]).mean():.1%} top-1 correct", flush=True)

    # ErrorTaxa: every model through one shared per-(image, class) memo; per-model results built.
    start = time.perf_counter()
    classifier = ImageSetClassifier(taxonomy, images)
    counts = np.zeros((args.models, len(taxonomy.axes["category"].values)), np.int64)
    for m in range(args.models):
        decisions = classifier.classify(preds[m])
        value = decisions.primary.value
        counts[m] = np.bincount(value[value >= 0], minlength=counts.shape[1])
    engine_s = time.perf_counter() - start
    rate = total / engine_s
    print(f"engine (shared memo): {engine_s:.2f} s, {rate / 1e6:.1f} M predictions/s", flush=True)

    # The same engine without sharing: plain batch evaluation of 1,000,000 predictions.
    k = max(1, 1_000_000 // args.images)
    rows = np.tile(np.arange(args.images), k)
    big = images.take(rows, preds[:k].ravel())
    start = time.perf_counter()
    plain = taxonomy.evaluate(big)
    batch_s = time.perf_counter() - start
    batch_rate = len(big) / batch_s
    print(f"engine (plain batch of {len(big):,}): {batch_rate / 1e6:.2f} M predictions/s", flush=True)
    assert np.array_equal(plain.primary.value[: args.images], classifier.classify(preds[0]).primary.value)

    # Baseline: the reference's row-at-a-time DataFrame.apply on a sample, side by side.
    n = min(args.baseline_rows, args.images)
    sample = images.take(np.arange(n), preds[0, :n])
    frame = pd.DataFrame({
        "target": sample.target.tolist(), "pred": sample.pred.tolist(),
        "labels": [sample.labels_of(i) for i in range(n)], "problematic": sample.problematic.tolist(),
        "image": list(sample.images or []),
    })
    row_function = baseline_row_function(taxonomy)
    start = time.perf_counter()
    baseline = frame.apply(row_function, axis=1)
    baseline_s = time.perf_counter() - start
    baseline_rate = n / baseline_s
    ours = classifier.classify(preds[0, :n], np.arange(n)).primary.value_names()
    agree = float(np.mean(baseline.to_numpy() == np.where(ours == "fine_grained_oov", "model_failure", ours)))
    print(f"baseline (DataFrame.apply, {n:,} rows): {baseline_rate:,.0f} rows/s; agreement with engine "
          f"{agree:.2%}", flush=True)

    result = {
        "predictions_per_s": round(rate),
        "baseline_ratio": round(rate / baseline_rate, 1),
        "batch_predictions_per_s": round(batch_rate),
        "baseline_rows_per_s": round(baseline_rate),
        "seconds": round(engine_s, 3),
        "models": args.models,
        "images": args.images,
        "baseline_agreement": round(agree, 4),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.python_implementation()} "
                   f"{platform.python_version()}",
    }
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()


__all__ = ["SampleBatch", "baseline_row_function"]
