"""The study subcommands: ``study``, ``mcnemar``, ``diff`` (taxonomy diff) and ``agreement``, over the
functions of ``errortaxa.study`` (imported when a command runs: the study extra may be missing)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from errortaxa.cli.common import taxonomy_from
from errortaxa.cli.providers import add_provider_options, provider_configs, providers_from
from errortaxa.engine import CompiledTaxonomy, evaluate
from errortaxa.engine.inputs import LabeledImages, read_labels
from errortaxa.engine.outputs import write_text

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("study", help="classify many models' predictions; per-model statistics, plots, report")
    p.add_argument("sources", nargs="+",
                   help="directories of per-model prediction files (any predictions format: .npz, .npy, "
                        ".jsonl), files, or .txt lists of files")
    p.add_argument("--labels", help="the multi-label CSV (or a ReaL json / target list) defining the images; "
                                    "default: the first JSONL file's own samples")
    p.add_argument("--taxonomy", help="taxonomy YAML file or built-in name (default: the embedded default)")
    p.add_argument("--metadata", help="model metadata CSV (column 'name' = prediction file name without suffix)")
    p.add_argument("--image-list", help="images to report accuracy on apart (e.g. the 68 of ImageNet-M)")
    p.add_argument("--out", required=True, help="output directory (models.csv, models.parquet, top_errors.json)")
    p.add_argument("--report", action="store_true", help="also write plots (PNG, SVG) and report.html")
    p.add_argument("--color-by", help="metadata column that colours the plots (default: the first one)")
    p.add_argument("--top-k", type=int, default=10, help="most common errors kept per category")
    p.add_argument("--ray", metavar="ADDRESS", help="distribute models on a Ray cluster ('local' for a local one)")
    p.add_argument("--compare-taxonomy", metavar="B.yaml",
                   help="also classify every model's predictions with taxonomy B: confusion matrix of the two "
                        "taxonomies' categories on the errors of all models pooled, with example errors per cell "
                        "(printed, taxonomy_diff.json, and in the report)")
    p.add_argument("--compare-axis", help="axis of the compared taxonomy (default: its primary axis)")
    add_provider_options(p, "; each (image, class) pair is asked once for all models, and with --ray every "
                            "worker loads this file")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_study, extra="study")

    p = sub.add_parser("mcnemar", help="exact McNemar test of two models on the same images")
    p.add_argument("model_a")
    p.add_argument("model_b")
    p.add_argument("--labels", help="label file defining the images (needed for .npz inputs)")
    p.add_argument("--taxonomy", help="taxonomy YAML file or built-in name (default: the embedded default)")
    p.add_argument("--top1", action="store_true", help="compare top-1 instead of multi-label correctness")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_mcnemar, extra="study")

    p = sub.add_parser("diff", help="confusion matrix of categories between two taxonomies on the same input "
                                    "(also: rules diff A.yaml B.yaml INPUT)")
    add_diff_arguments(p)

    p = sub.add_parser("agreement", help="agreement of a taxonomy with an external categorisation "
                                         "(imagenet-mistakes JSON)")
    p.add_argument("external", nargs="+", help="imagenet-mistakes JSON files: file name -> {\"top_prediction\", "
                                               "\"failure category\", \"failure severity\"}")
    p.add_argument("--labels", required=True, help="label file defining the images (multi-label CSV)")
    p.add_argument("--taxonomy", help="taxonomy YAML file or built-in name (default: the embedded default)")
    p.add_argument("--json", help="also write the result as JSON here")
    p.set_defaults(func=cmd_agreement)


def _labels(path: str | None) -> LabeledImages | None:
    return None if path is None else read_labels(path)


def cmd_study(args: argparse.Namespace) -> int:
    from errortaxa.engine.inputs import PREDICTIONS, detect, read_predictions
    from errortaxa.study.models import ImageSet, discover_models, read_image_list, read_metadata
    from errortaxa.study.study import run_study

    taxonomy = taxonomy_from(args.taxonomy)
    compare = taxonomy_from(args.compare_taxonomy) if args.compare_taxonomy else None
    if compare is not None and args.compare_axis and args.compare_axis not in compare.axes:
        print(f"errortaxa: error: taxonomy '{compare.name}' has no axis '{args.compare_axis}' "
              f"(axes: {', '.join(compare.axes)})", file=sys.stderr)
        return 2
    # strictly, as classify: a bad config or missing weights is a one-line error (UsageError)
    # (a compared taxonomy gets the same provider, or one from the same file: run_study)
    providers = providers_from(args, taxonomy)
    models = discover_models(args.sources)
    if not models:
        print("errortaxa: error: no prediction files found", file=sys.stderr)
        return 2
    labels = _labels(args.labels)
    if labels is not None:
        images = ImageSet.from_labels(labels)
    else:
        first = next((m for m in models if detect(m.path, PREDICTIONS).carries_labels), None)
        if first is None:
            print("errortaxa: error: predictions without labels of their own need --labels", file=sys.stderr)
            return 2
        images = ImageSet(read_predictions(first.path, len(taxonomy.vocabulary)).with_labels(None)[0])
    metadata = read_metadata(args.metadata) if args.metadata else None
    image_list = read_image_list(args.image_list) if args.image_list else None
    # RayNotInstalled and ProviderUnavailable are failed preconditions: exit 2 with one line (cli.errors)
    result = run_study(taxonomy, images, models, metadata=metadata, image_list=image_list,
                       progress=False if args.no_progress or args.quiet else None, top_k=args.top_k,
                       ray_address=args.ray,
                       compare=compare, compare_axis=args.compare_axis, providers=providers or None,
                       provider_configs=provider_configs(args))
    paths = result.write(args.out)
    if result.diff is not None:
        from errortaxa.study.diff import format_diff

        print(f"taxonomy comparison, all {len(result.table)} models pooled:")
        print(format_diff(result.diff))
    if args.report:
        from errortaxa.study.report import write_report

        paths.update(write_report(result, args.out, color_by=args.color_by))
    if not args.quiet:
        print(f"{len(result.table)} models x {result.images} images in {result.seconds:.1f} s", file=sys.stderr)
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return 0


def _correctness(path: str, taxonomy: CompiledTaxonomy, labels: LabeledImages | None) -> tuple[Any, Any, list[str]]:
    """(multi-label correct, top-1 correct, image names) of one model's predictions."""
    from errortaxa.study.diff import read_samples

    batch = read_samples(path, labels, len(taxonomy.vocabulary))
    decisions = evaluate(taxonomy, batch)
    keep = ~batch.problematic
    names = batch.images or [str(i) for i in range(len(batch))]
    mla_correct = taxonomy.axes[taxonomy.primary_axis].mla_correct[decisions.primary.value]
    return (mla_correct[keep], (batch.pred == batch.target)[keep],
            [n for n, k in zip(names, keep.tolist(), strict=True) if k])


def cmd_mcnemar(args: argparse.Namespace) -> int:
    import numpy as np
    from errortaxa.study.stats import mcnemar_exact

    taxonomy = taxonomy_from(args.taxonomy)
    labels = _labels(args.labels)
    mla_a, top_a, names_a = _correctness(args.model_a, taxonomy, labels)
    mla_b, top_b, names_b = _correctness(args.model_b, taxonomy, labels)
    common = sorted(set(names_a) & set(names_b))
    ia = {n: i for i, n in enumerate(names_a)}
    ib = {n: i for i, n in enumerate(names_b)}
    ra = np.array([ia[n] for n in common], np.int64)
    rb = np.array([ib[n] for n in common], np.int64)
    a, b = (top_a, top_b) if args.top1 else (mla_a, mla_b)
    result = mcnemar_exact(a[ra] if ra.size else a[:0], b[rb] if rb.size else b[:0])
    if args.json:
        print(json.dumps({"a": args.model_a, "b": args.model_b, "measure": "top1" if args.top1 else "mla",
                          **result.to_dict()}))
        return 0
    measure = "top-1" if args.top1 else "multi-label"
    print(f"{result.samples} shared non-problematic images, {measure} correctness")
    print(f"  A {Path(args.model_a).name}: {result.accuracy_a:.4f}   B {Path(args.model_b).name}: "
          f"{result.accuracy_b:.4f}")
    print(f"  both correct {result.both_correct}, only A {result.only_a}, only B {result.only_b}, "
          f"both wrong {result.both_wrong}")
    print(f"  exact McNemar p = {result.p_value:.4g}")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from errortaxa.study.diff import diff_taxonomies, format_diff, read_samples

    a, b = taxonomy_from(args.taxonomy_a), taxonomy_from(args.taxonomy_b)
    batch = read_samples(args.input, _labels(args.labels), len(a.vocabulary))
    result = diff_taxonomies(a, b, batch, axis_a=args.axis_a, axis_b=args.axis_b,
                             errors_only=not args.all, examples=args.examples)
    print(format_diff(result))
    if args.json:
        write_text(args.json, json.dumps(result.to_dict(), indent=1) + "\n")
    return 0


def cmd_agreement(args: argparse.Namespace) -> int:
    from errortaxa.study.agreement import agreement, format_agreement, read_external

    taxonomy = taxonomy_from(args.taxonomy)
    labels = read_labels(args.labels)
    external = read_external(args.external)
    result = agreement(taxonomy, labels, external)
    print(format_agreement(result))
    if args.json:
        write_text(args.json, json.dumps(result, indent=1) + "\n")
    return 0


def add_diff_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of ``diff`` (also registered as ``rules diff`` by the main CLI)."""
    p.add_argument("taxonomy_a")
    p.add_argument("taxonomy_b")
    p.add_argument("input", help="JSONL samples, or .npz predictions with --labels")
    p.add_argument("--labels", help="for .npz input: the label file")
    p.add_argument("--axis-a", help="axis of taxonomy A (default: its primary axis)")
    p.add_argument("--axis-b", help="axis of taxonomy B (default: its primary axis)")
    p.add_argument("--all", action="store_true", help="include samples both taxonomies call correct")
    p.add_argument("--examples", type=int, default=3, help="example errors per cell")
    p.add_argument("--json", help="also write the diff as JSON here")
    p.set_defaults(func=cmd_diff)
