"""The study subcommands: ``study``, ``mcnemar``, ``diff`` (taxonomy diff) and ``agreement``, over the
functions of ``errortaxa.study`` (imported when a command runs: the study extra may be missing)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from errortaxa.cli.common import (
    COLUMNS_HELP,
    TAXONOMY_HELP,
    add_limit_option,
    label_options,
    read_options,
    taxonomy_from,
)
from errortaxa.cli.errors import UsageError
from errortaxa.cli.providers import add_provider_options, provider_configs, providers_from
from errortaxa.engine import CompiledTaxonomy, FeatureProvider, evaluate
from errortaxa.engine.errors import InvalidInput
from errortaxa.engine.inputs import LabeledImages, ReadOptions, read_labels
from errortaxa.engine.knowledge.datasets import DATASETS
from errortaxa.engine.outputs import write_text

__all__ = ["StudyInputs", "add_source_options", "register", "study_images", "study_inputs"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("study", help="classify many models' predictions; per-model statistics, plots, report")
    add_source_options(p, "; each (image, class) pair is asked once for all models, and with --ray every "
                          "worker loads this file")
    p.add_argument("--out", required=True, help="output directory (models.csv, models.parquet, top_errors.json, "
                                                "study.json: the sources with their content hashes)")
    p.add_argument("--report", action="store_true", help="also write plots (PNG, SVG) and report.html")
    p.add_argument("--color-by", help="metadata column that colours the plots (default: the first one)")
    p.add_argument("--top-k", type=_positive, default=10, help="most common errors kept per category")
    p.add_argument("--ray", metavar="ADDRESS", help="distribute models on a Ray cluster ('local' for a local one)")
    p.add_argument("--compare-taxonomy", metavar="B.yaml",
                   help="also classify every model's predictions with taxonomy B: confusion matrix of the two "
                        "taxonomies' categories on the errors of all models pooled, with example errors per cell "
                        "(printed, taxonomy_diff.json, and in the report)")
    p.add_argument("--compare-axis", help="axis of the compared taxonomy (default: its primary axis)")
    p.add_argument("--reference-tables", action="store_true",
                   help="also write OUT/reference/non_problematic_stats_{all,organism,artifact,other}.csv in the "
                        "layout and units of the reference pipeline's published tables (Peychev et al. 2023)")
    p.add_argument("--resamples", type=_non_negative, default=1000,
                   help="bootstrap resamples over images for the intervals of the per-class means (MLA and its "
                        "minor / explainable variants; default 1000, 0: none)")
    p.add_argument("--seed", type=_non_negative, default=0, help="seed of the bootstrap resamples (default 0)")
    p.add_argument("--baseline", metavar="MODEL",
                   help="add every model's difference from MODEL in each headline statistic with a paired "
                        "bootstrap interval and McNemar's p-value (vs_baseline.* columns)")
    p.add_argument("--consistency", action="store_true",
                   help="error consistency (Cohen's kappa, Geirhos et al. 2020) of every pair of models, overall and "
                        "per error category: error_consistency.parquet and a clustered heat map in the report")
    p.add_argument("--classes", action="store_true",
                   help="per class and superclass: images, MLA share with its interval, counts per category "
                        "(classes.parquet, superclasses.parquet) and each model's worst classes (worst_classes.csv)")
    p.add_argument("--worst-k", type=_positive, default=5, help="worst classes kept per model (default 5)")
    p.add_argument("--min-images", type=_positive, default=10,
                   help="images a class needs to be ranked among the worst (default 10)")
    p.add_argument("--factors", metavar="PROVIDER", choices=("imagenet_x",),
                   help="set the errors against a provider's per-image annotations: imagenet_x (ImageNet-X's "
                        "factors of variation; the factors extra): factors.csv and a heat map in the report")
    p.add_argument("--csv", action="store_true", help="also write the large tables (error_consistency, classes) as CSV")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_limit_option(p)
    p.set_defaults(func=cmd_study, extra="study")

    p = sub.add_parser("mcnemar", help="exact McNemar test of two models on the same images")
    p.add_argument("model_a")
    p.add_argument("model_b")
    p.add_argument("--labels", help="label file defining the images (needed for inputs without labels of their own)")
    p.add_argument("--columns", help=COLUMNS_HELP)
    p.add_argument("--taxonomy", help=TAXONOMY_HELP)
    p.add_argument("--top1", action="store_true", help="compare top-1 instead of multi-label correctness")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_limit_option(p)
    p.set_defaults(func=cmd_mcnemar, extra="study")

    p = sub.add_parser("diff", help="confusion matrix of categories between two taxonomies on the same input "
                                    "(also: rules diff A.yaml B.yaml INPUT)")
    add_diff_arguments(p)

    p = sub.add_parser("agreement", help="agreement of a taxonomy with an external categorisation "
                                         "(imagenet-mistakes JSON)")
    p.add_argument("external", nargs="+", help="imagenet-mistakes JSON files: file name -> {\"top_prediction\", "
                                               "\"failure category\", \"failure severity\"}")
    p.add_argument("--labels", required=True, help="label file defining the images (multi-label CSV)")
    p.add_argument("--taxonomy", help=TAXONOMY_HELP)
    p.add_argument("--json", help="also write the result as JSON here")
    add_limit_option(p)
    p.set_defaults(func=cmd_agreement)


def add_source_options(p: argparse.ArgumentParser, provider_what: str = "") -> None:
    """The options of ``study`` that choose its inputs and change its numbers (``explore`` takes them too)."""
    p.add_argument("sources", nargs="+",
                   help="directories of per-model prediction files (any predictions format: .npz, .npy, "
                        ".jsonl, .pt, .csv, .parquet, timm's .json), files, or .txt lists of files")
    p.add_argument("--columns", help=COLUMNS_HELP)
    p.add_argument("--labels", help="the multi-label CSV (or a ReaL json / target list / (image, label) table) "
                                    "defining the images; "
                                    "default: the first JSONL file's own samples")
    p.add_argument("--taxonomy", help=TAXONOMY_HELP)
    p.add_argument("--metadata", help="model metadata CSV (column 'name' = prediction file name without suffix)")
    p.add_argument("--image-list", help="images to report accuracy on apart (e.g. the 68 of ImageNet-M)")
    add_provider_options(p, provider_what)
    p.add_argument("--val-labels", metavar="FILE",
                   help="original labels of the 50,000 validation images (caffe-style 'FILE LABEL' list): adds "
                        "top-1 on all of them (top1_val) for prediction files that cover them")
    p.add_argument("--dataset", default="imagenet", choices=("imagenet", *DATASETS),
                   help="the image set: imagenet (multi-labels from --labels) or a built-in dataset whose labels "
                        "are the target (imagenet-a: WNID/FILE.jpg, 200 classes; imagenet-v2: INDEX/FILE.jpeg); "
                        "for those --labels is a directory of class folders or a list of image names (default: the "
                        "names in the first prediction file)")


@dataclass
class StudyInputs:
    """What ``study`` (and ``explore``) read from the source options: everything that changes the numbers."""

    taxonomy: CompiledTaxonomy
    providers: dict[str, FeatureProvider]
    models: list[Any]  # errortaxa.study.models.ModelFile
    options: ReadOptions
    images: Any  # errortaxa.study.models.ImageSet
    metadata: Any  # pandas.DataFrame | None
    image_list: list[str] | None
    extra: Any  # errortaxa.study.scores.ExtraScores | None


def study_inputs(args: argparse.Namespace, taxonomy: CompiledTaxonomy | None = None) -> StudyInputs:
    """Read the inputs the source options name (UsageError / InvalidInput for bad ones, warnings on stderr)."""
    from errortaxa.study.models import discover_models, read_image_list, read_metadata

    taxonomy = taxonomy or taxonomy_from(args.taxonomy)
    # strictly, as classify: a bad config or missing weights is a one-line error (UsageError)
    providers = providers_from(args, taxonomy)
    models = discover_models(args.sources)
    if not models:
        raise UsageError("no prediction files found")
    options = read_options(taxonomy, args.columns)
    images = study_images(args, models, options)
    metadata = read_metadata(args.metadata) if args.metadata else None
    _check_metadata(args, metadata, models)
    image_list = read_image_list(args.image_list) if args.image_list else None
    if image_list is not None:
        found = sum(1 for name in image_list if name in images.index)
        if not found:
            raise InvalidInput(f"{args.image_list}: none of its {len(image_list)} images is a study image "
                             f"(first: {image_list[0] if image_list else 'none'})")
        if found < len(image_list):
            print(f"errortaxa: warning: {args.image_list}: {len(image_list) - found} of its {len(image_list)} "
                  "images are not study images and are left out", file=sys.stderr)
    return StudyInputs(taxonomy, providers, models, options, images, metadata, image_list, _extra_scores(args))


def _at_least(low: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``low``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    return parse


_positive = _at_least(1)
_non_negative = _at_least(0)


def _labels(path: str | None, options: ReadOptions) -> LabeledImages | None:
    return None if path is None else read_labels(path, label_options(options))


def cmd_study(args: argparse.Namespace) -> int:
    from errortaxa.study.sources import study_sources
    from errortaxa.study.study import run_study

    taxonomy = taxonomy_from(args.taxonomy)
    compare = taxonomy_from(args.compare_taxonomy) if args.compare_taxonomy else None
    if compare is not None and args.compare_axis and args.compare_axis not in compare.axes:
        print(f"errortaxa: error: taxonomy '{compare.name}' has no axis '{args.compare_axis}' "
              f"(axes: {', '.join(compare.axes)})", file=sys.stderr)
        return 2
    # (a compared taxonomy gets the same provider, or one from the same file: run_study)
    inputs = study_inputs(args, taxonomy)
    providers, models, images, extra = inputs.providers, inputs.models, inputs.images, inputs.extra
    if args.baseline is not None:
        names = [m.name for m in models]
        if args.baseline not in names:
            raise InvalidInput(f"--baseline {args.baseline!r}: no such model (models: {', '.join(names[:5])}"
                               + (", ..." if len(names) > 5 else "") + ")")
        if args.resamples < 1:
            raise InvalidInput("--baseline needs bootstrap resamples: --resamples must be at least 1")
    if extra is not None and args.ray:
        print("errortaxa: error: --val-labels and --dataset imagenet-a read scores in this process: "
              "not with --ray", file=sys.stderr)
        return 2
    if args.reference_tables:
        from errortaxa.study.reference import ReferenceTablesError, reference_columns

        try:
            reference_columns(taxonomy)
        except ReferenceTablesError as error:
            print(f"errortaxa: error: --reference-tables: {error}", file=sys.stderr)
            return 2
    # RayNotInstalled and ProviderUnavailable are failed preconditions: exit 2 with one line (cli.errors)
    result = run_study(taxonomy, images, models, metadata=inputs.metadata, image_list=inputs.image_list,
                       progress=False if args.no_progress or args.quiet else None, top_k=args.top_k,
                       ray_address=args.ray,
                       compare=compare, compare_axis=args.compare_axis, providers=providers or None,
                       provider_configs=provider_configs(args), extra=extra, dataset=args.dataset,
                       read_options=inputs.options, resamples=args.resamples, seed=args.seed,
                       baseline=args.baseline, consistency=args.consistency, classes=args.classes,
                       worst_k=args.worst_k, min_images=args.min_images, factors=args.factors)
    result.inputs.update({k: v for k, v in (("labels", args.labels), ("image_list", args.image_list),
                                            ("metadata", args.metadata), ("val_labels", args.val_labels)) if v})
    result.sources = study_sources(models, args.taxonomy, taxonomy, files={
        "labels": args.labels, "image_list": args.image_list, "metadata": args.metadata,
        "val_labels": args.val_labels, **{f"{name}_config": path for name, path in provider_configs(args).items()},
    }, options={"dataset": args.dataset, "columns": args.columns})
    if args.val_labels and ("top1_val" not in result.table or result.table["top1_val"].isna().any()):
        print("errortaxa: warning: --val-labels: top-1 on all validation images is missing for models whose file "
              "does not cover the 50,000 validation images", file=sys.stderr)
    paths = result.write(args.out, csv=args.csv)
    if result.diff is not None:
        from errortaxa.study.diff import format_diff

        print(f"taxonomy comparison, all {len(result.table)} models pooled:")
        print(format_diff(result.diff))
    if args.reference_tables:
        from errortaxa.study.reference import write_reference_tables

        paths.update(write_reference_tables(result, taxonomy, args.out))
    if args.report:
        from errortaxa.study.report import write_report

        paths.update(write_report(result, args.out, color_by=args.color_by))
    if not args.quiet:
        print(f"{len(result.table)} models x {result.images} images in {result.seconds:.1f} s", file=sys.stderr)
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return 0


def _check_metadata(args: argparse.Namespace, metadata: Any, models: list[Any]) -> None:
    """--color-by must name a metadata column; metadata rows of no model are worth a warning."""
    columns = [] if metadata is None else [c for c in metadata.columns if c != "model"]
    color_by = getattr(args, "color_by", None)
    if color_by is not None and color_by not in columns:
        raise InvalidInput(f"--color-by {color_by!r}: not a metadata column"
                         + (f" (columns: {', '.join(columns)})" if columns else " (no --metadata given)"))
    if metadata is not None:
        names = {m.name for m in models}
        unmatched = [str(n) for n in metadata["model"] if n not in names]
        if unmatched:
            print(f"errortaxa: warning: {args.metadata}: {len(unmatched)} row(s) match no prediction file "
                  f"(first: {unmatched[0]!r})", file=sys.stderr)
        missing = sorted(names - set(metadata["model"]))
        if missing:
            print(f"errortaxa: warning: {args.metadata}: no row for {len(missing)} model(s) "
                  f"(first: {missing[0]!r})", file=sys.stderr)


def study_images(args: argparse.Namespace, models: list[Any], options: ReadOptions) -> Any:
    """The study's ImageSet from --labels / --dataset (UsageError when neither names the images)."""
    from errortaxa.engine.inputs import PREDICTIONS, detect, read_predictions
    from errortaxa.study.models import ImageSet

    if args.dataset != "imagenet":
        from errortaxa.engine.knowledge.datasets import dataset, load_dataset_images

        definition = dataset(args.dataset)
        if args.labels:
            return ImageSet.from_labels(load_dataset_images(definition, args.labels))
        names = read_predictions(models[0].path, options).images
        if names is None:
            raise UsageError(f"--dataset {args.dataset} needs --labels or predictions that name their images")
        return ImageSet.from_labels(definition.labeled(list(names), models[0].path))
    labels = _labels(args.labels, options)
    if labels is not None:
        return ImageSet.from_labels(labels)
    first = next((m for m in models if detect(m.path, PREDICTIONS).carries_labels), None)
    if first is None:
        raise UsageError("predictions without labels of their own need --labels")
    return ImageSet(read_predictions(first.path, options).with_labels(None)[0])


def _extra_scores(args: argparse.Namespace) -> Any:
    """What to read from the prediction files besides top-1 (None: nothing)."""
    from errortaxa.study.scores import ExtraScores, validation_targets

    val = validation_targets(read_labels(args.val_labels)) if args.val_labels else None
    subset = None
    if args.dataset == "imagenet-a":
        from errortaxa.engine.knowledge.datasets import imagenet_a_classes

        subset = imagenet_a_classes()
    return None if val is None and subset is None else ExtraScores(val_targets=val, subset=subset)


def _correctness(path: str, taxonomy: CompiledTaxonomy, labels: LabeledImages | None,
                 options: ReadOptions) -> tuple[Any, Any, list[str]]:
    """(multi-label correct, top-1 correct, image names) of one model's predictions."""
    from errortaxa.study.diff import read_samples

    batch = read_samples(path, labels, options)
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
    options = read_options(taxonomy, args.columns)
    labels = _labels(args.labels, options)
    mla_a, top_a, names_a = _correctness(args.model_a, taxonomy, labels, options)
    mla_b, top_b, names_b = _correctness(args.model_b, taxonomy, labels, options)
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
    for option, tax, axis in (("--axis-a", a, args.axis_a), ("--axis-b", b, args.axis_b)):
        if axis is not None and axis not in tax.axes:
            raise InvalidInput(f"{option} {axis!r}: taxonomy '{tax.name}' has no such axis "
                               f"(axes: {', '.join(tax.axes)})")
    options = read_options(a, args.columns)
    batch = read_samples(args.input, _labels(args.labels, options), options)
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
    result = agreement(taxonomy, labels, external, sources=args.external)
    print(format_agreement(result))
    if args.json:
        write_text(args.json, json.dumps(result, indent=1) + "\n")
    return 0


def add_diff_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of ``diff`` (also registered as ``rules diff`` by the main CLI)."""
    p.add_argument("taxonomy_a")
    p.add_argument("taxonomy_b")
    p.add_argument("input", help="JSONL samples, or predictions in any other input format with --labels")
    p.add_argument("--labels", help="the label file of predictions without labels of their own")
    p.add_argument("--columns", help=COLUMNS_HELP)
    p.add_argument("--axis-a", help="axis of taxonomy A (default: its primary axis)")
    p.add_argument("--axis-b", help="axis of taxonomy B (default: its primary axis)")
    p.add_argument("--all", action="store_true", help="include samples both taxonomies call correct")
    p.add_argument("--examples", type=_positive, default=3, help="example errors per cell")
    p.add_argument("--json", help="also write the diff as JSON here")
    add_limit_option(p)
    p.set_defaults(func=cmd_diff)
