"""Engine throughput: 1000 models x 20,000 images with the default taxonomy, against a faithful
row-at-a-time baseline timed side by side in the same run: the reference's ``classify_error``
structure (Peychev et al.), a pandas ``DataFrame.apply`` of a per-row function, without its CLIP step.

The headline is ``ImageSetClassifier.classify_many`` over the [models, images] prediction matrix,
timed from an empty memo to the category and rule of every prediction and the counts per model.
Also printed: one full ``Decisions`` per model on the warm memo, and a plain 1 M batch.

    python bench/engine.py [--models 1000] [--images 20000] [--baseline-rows 20000]

Ends with one line ``RESULT {json}`` (predictions_per_s, baseline_ratio, ...).
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
from errortaxa.engine import CompiledTaxonomy, default_compiled, evaluate
from errortaxa.engine.run.imageset import ImageSetClassifier
from synthetic import make_images, make_predictions


def baseline_row_function(taxonomy: CompiledTaxonomy) -> Any:
    """The reference's way (Peychev et al.'s ``classify_error``, without its CLIP step): one Python
    call per DataFrame row, reading the row's attributes, with superclasses as per-class sets of
    names, the overlapping classes as a dict of lists, the co-occurring pairs as a set of tuples,
    and a list of strings per row (the category and its evidence) as the result."""
    c = len(taxonomy.vocabulary)
    wnids = taxonomy.vocabulary.wnids
    class_to_superclasses = [set(taxonomy.superclasses_of(k)) or {wnids[k]} for k in range(c)]
    overlap = _rule_node(taxonomy, "overlapping_classes").pair.matrix  # [prediction, target]
    overlapping: dict[int, list[int]] = {}
    for pred, target in zip(*np.nonzero(overlap), strict=True):
        overlapping.setdefault(int(target), []).append(int(pred))
    cooc = next(iter(taxonomy.cooccurrence.values()))
    common_pairs = {(int(a), int(b)) for a, b in zip(*np.nonzero(cooc >= 2), strict=True)
                    if class_to_superclasses[a].isdisjoint(class_to_superclasses[b])}
    non_prototypical = _rule_node(taxonomy, "non_prototypical").images or frozenset()

    def same_superclass(a: int, b: int) -> bool:
        return not class_to_superclasses[a].isdisjoint(class_to_superclasses[b])

    def classify_error(row: pd.Series) -> list[str]:
        found: list[str] = []
        if not row.multi_label:
            if row.target == row.top1:
                found.append("problematic_empty_correct")
            elif row.top1 in overlapping.get(row.target, []):
                found.append("problematic_empty_overlapping")
            else:
                found.append("problematic_empty_wrong")
        elif row.target == row.top1:
            if row.target in row.multi_label:
                return ["correct"]
            found.append("problematic_correct_wrong_label")
        else:
            if row.top1 in overlapping.get(row.target, []):
                return ["overlapping_classes"]
            if row.top1 in row.multi_label:
                return ["multi_label"]
        shared = [str(label) for label in row.multi_label if same_superclass(label, row.top1)]
        if shared:
            names = ",".join(sorted(class_to_superclasses[row.top1]))
            return [*found, "fine_grained", f"[{names}]", ",".join(shared)]
        if row.target not in row.multi_label:
            if row.target == row.top1 or same_superclass(row.target, row.top1):
                return [*found, "fine_grained_target", f"[{','.join(sorted(class_to_superclasses[row.top1]))}]"]
            if (row.target, row.top1) in common_pairs:
                return [*found, "spurious_correlation_target"]
        co_occurring = [str(label) for label in row.multi_label if (label, row.top1) in common_pairs]
        if co_occurring:
            return [*found, "spurious_correlation", ",".join(co_occurring)]
        if row.file_name in non_prototypical:
            return [*found, "non_prototypical"]
        return [*found, "model_failure"]

    return classify_error


def _rule_node(taxonomy: CompiledTaxonomy, rule_id: str) -> Any:
    return next(r for r in taxonomy.axes["category"].rules if r.id == rule_id).node


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

    # ErrorTaxa: all models at once through the shared per-(image, class) memo; the result is the
    # category and rule of every prediction ([models, images] arrays) and the counts per model.
    start = time.perf_counter()
    classifier = ImageSetClassifier(taxonomy, images)
    many = classifier.classify_many(preds)
    categories = many.values()  # the category index of every prediction, [models, images]
    engine_s = time.perf_counter() - start
    assert categories.shape == preds.shape and (categories >= 0).all()
    rate = total / engine_s
    print(f"engine (classify_many, {os.cpu_count()} threads): {engine_s:.2f} s, {rate / 1e6:.1f} M predictions/s",
          flush=True)

    # The per-model path (a full Decisions object per model, evidence included) on a warm memo.
    start = time.perf_counter()
    counts = np.zeros((args.models, len(taxonomy.axes["category"].values)), np.int64)
    for m in range(args.models):
        value = classifier.classify(preds[m]).primary.value
        counts[m] = np.bincount(value[value >= 0], minlength=counts.shape[1])
    per_model_s = time.perf_counter() - start
    per_model_rate = total / per_model_s
    print(f"engine (one Decisions per model, warm memo): {per_model_rate / 1e6:.1f} M predictions/s", flush=True)
    assert np.array_equal(counts, many.counts["category"])

    # The same engine without sharing: plain batch evaluation of 1,000,000 predictions.
    k = max(1, min(args.models, 1_000_000 // args.images))
    rows = np.tile(np.arange(args.images), k)
    big = images.take(rows, preds[:k].ravel())
    start = time.perf_counter()
    plain = evaluate(taxonomy, big)
    batch_s = time.perf_counter() - start
    batch_rate = len(big) / batch_s
    print(f"engine (plain batch of {len(big):,}): {batch_rate / 1e6:.2f} M predictions/s", flush=True)
    assert np.array_equal(plain.primary.value[: args.images], classifier.classify(preds[0]).primary.value)

    # Baseline: the reference's row-at-a-time DataFrame.apply on a sample, side by side.
    n = min(args.baseline_rows, args.images)
    sample = images.take(np.arange(n), preds[0, :n])
    frame = pd.DataFrame({
        "target": sample.target.tolist(), "top1": sample.pred.tolist(),
        "multi_label": [sample.labels_of(i) for i in range(n)], "is_problematic": sample.problematic.tolist(),
        "file_name": list(sample.images or []),
    })
    classify_error = baseline_row_function(taxonomy)
    start = time.perf_counter()
    baseline = frame.apply(classify_error, axis=1)
    baseline_s = time.perf_counter() - start
    baseline_rate = n / baseline_s
    clean = ~sample.problematic  # the reference's outcome ids for problematic samples differ from ours
    theirs = np.array([next(t for t in types if not t.startswith(("[", "problematic_")) and not t[0].isdigit())
                       for types in baseline], object)
    ours = many.value_names()[0, :n]
    ours = np.where(ours == "fine_grained_oov", "model_failure", ours)  # no CLIP step in either
    agree = float(np.mean(theirs[clean] == ours[clean]))
    print(f"baseline (DataFrame.apply, {n:,} rows): {baseline_rate:,.0f} rows/s; agreement with the engine on "
          f"non-problematic samples {agree:.2%}", flush=True)

    result = {
        "predictions_per_s": round(rate),
        "baseline_ratio": round(rate / baseline_rate, 1),
        "per_model_predictions_per_s": round(per_model_rate),
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

