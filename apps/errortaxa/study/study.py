"""Classify many models on one image set and tabulate per-model statistics.

All models go through one :class:`~errortaxa.engine.run.imageset.ImageSetClassifier`, so every
(image, predicted class) decision is made once for the whole study. Per model the table holds,
for the headline (non-problematic) images and per group (organism / artifact / other by any
correct label, dogs / other_animals / objects by target), the sample count, top-1 and multi-label
accuracy (:mod:`errortaxa.study.tabulate`) and the count and share of every category; the problematic images are
reported apart (group ``problematic``); optionally the accuracy on an image list (ImageNet-M).

Feature providers (e.g. ``oov`` of the ``fine_grained_oov`` rule) are shared the same way: the
memo asks a provider about each (image, predicted class) pair once, whichever models predict it.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from errortaxa.engine import CompiledTaxonomy
from errortaxa.engine.features import FeatureProvider
from errortaxa.engine.gcpause import gc_paused
from errortaxa.engine.inputs import LabeledImages, ReadOptions
from errortaxa.engine.outputs import open_binary, write_text
from errortaxa.engine.providers import registry
from errortaxa.study.classes import MIN_IMAGES, WORST_K
from errortaxa.study.distributed import run_on_ray
from errortaxa.study.intervals import HEADLINE, RESAMPLES, Resampling
from errortaxa.study.models import ImageSet, ModelFile, PathLike, read_model
from errortaxa.study.scores import ExtraScores, read_with_scores
from errortaxa.study.shared import SharedErrors, common_errors_frame, count_errors, images_frame
from errortaxa.study.tabulate import Accumulator, StudyDecisions, Tabulator, frame, top_errors

if TYPE_CHECKING:
    from errortaxa.study.classes import ClassBreakdown
    from errortaxa.study.consistency import Consistency
    from errortaxa.study.diff import DiffResult
    from errortaxa.study.factors import FactorShares


_RESAMPLED_CHUNK = 64  # models the bootstrap takes at a time


@dataclass
class StudyResult:
    """A study's per-model table, its most common errors, and what it was run on."""

    table: pd.DataFrame
    top_errors: dict[str, list[dict[str, Any]]]
    categories: list[str]
    error_categories: list[str]
    groups: list[str]
    taxonomy: str
    images: int
    seconds: float
    metadata_columns: list[str] = field(default_factory=list)
    rule_values: dict[str, str] = field(default_factory=dict)  # primary-axis rule id -> its value id
    sample_lists: dict[str, dict[str, Any]] = field(default_factory=dict)  # the taxonomy's, with sources
    inputs: dict[str, str] = field(default_factory=dict)  # what the study read: labels, image list, ...
    dataset: str = "imagenet"  # the image set: imagenet (multi-labels) or a built-in dataset definition
    diff: DiffResult | None = None  # the taxonomy comparison (run_study's ``compare``), all models pooled
    common_errors: pd.DataFrame | None = None  # every distinct (image, prediction) error, most shared first
    image_errors: pd.DataFrame | None = None  # per headline image, the models that get it wrong
    baseline: str | None = None  # the model the ``vs_baseline.*`` columns compare with
    resamples: int = 0  # bootstrap resamples of the per-class means' intervals (0: none)
    seed: int = 0  # the seed of those resamples
    timings: dict[str, float] = field(default_factory=dict)  # seconds of the analyses: bootstrap_s, ...
    taxonomy_names: list[str] = field(default_factory=list)  # the class names of the vocabulary
    decisions: StudyDecisions | None = None  # every model's value and prediction on every image
    consistency: Consistency | None = None  # error consistency of every pair of models (run_study's ``consistency``)
    classes: ClassBreakdown | None = None  # per-class and per-superclass tables (run_study's ``classes``)
    factors: FactorShares | None = None  # errors against annotated factors (run_study's ``factors``)
    sources: dict[str, Any] = field(default_factory=dict)  # to reopen the study: errortaxa.study.sources

    @property
    def all_wrong(self) -> pd.DataFrame:
        """The headline images every model of the study gets wrong (rows of ``image_errors``)."""
        if self.image_errors is None or not len(self.table):
            return pd.DataFrame(columns=["image", "target", "models_wrong", "models_share"])
        frame = self.image_errors
        return frame[frame["models_wrong"] == len(self.table)]

    def write(self, out_dir: PathLike, csv: bool = False) -> dict[str, str]:
        """Write ``models.csv``, ``models.parquet``, ``top_errors.json``, ``study.json`` (the
        taxonomy, the sample lists it used with their sources, the inputs, the analyses' settings, and
        when set the ``sources`` that reopen the study, with their content hashes), with a comparison
        ``taxonomy_diff.json``, the shared errors (``common_errors.csv``, ``images.csv``) and the
        large opt-in tables as Parquet (``error_consistency``, ``classes``, ``superclasses``; also as CSV
        with ``csv``), ``worst_classes.csv``, ``factors.csv`` into ``out_dir``."""
        import json

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"csv": out / "models.csv", "parquet": out / "models.parquet", "top_errors": out / "top_errors.json"}
        tables: list[tuple[pd.DataFrame, Path]] = [(self.table, paths["csv"]), (self.table, paths["parquet"])]
        write_text(paths["top_errors"], json.dumps(self.top_errors, indent=1) + "\n")
        paths["study"] = out / "study.json"
        about = {"taxonomy": self.taxonomy, "models": len(self.table), "images": self.images,
                 "sample_lists": self.sample_lists, "inputs": self.inputs,
                 "analyses": {"resamples": self.resamples, "seed": self.seed, "baseline": self.baseline,
                              "factors": None if self.factors is None else
                              {"provider": self.factors.provider, "images": self.factors.images,
                               "source": self.factors.source}}}
        if self.sources:
            about["sources"] = self.sources
        write_text(paths["study"], json.dumps(about, indent=1) + "\n")
        if self.diff is not None:
            paths["taxonomy_diff"] = out / "taxonomy_diff.json"
            write_text(paths["taxonomy_diff"], json.dumps(self.diff.to_dict(), indent=1) + "\n")
        small = (("common_errors", self.common_errors), ("images", self.image_errors),
                 ("worst_classes", self.classes.worst if self.classes is not None else None),
                 ("factors", self.factors.table if self.factors is not None else None))
        for kind, table in small:
            if table is not None:
                paths[kind] = out / f"{kind}.csv"
                tables.append((table, paths[kind]))
        large = {"error_consistency": self.consistency.frame(list(self.table["model"]))
                 if self.consistency is not None else None,
                 "classes": self.classes.classes if self.classes is not None else None,
                 "superclasses": self.classes.superclasses if self.classes is not None else None}
        for kind, table in large.items():
            if table is None:
                continue
            paths[kind] = out / f"{kind}.parquet"
            tables.append((table, paths[kind]))
            if csv:
                paths[f"{kind}_csv"] = out / f"{kind}.csv"
                tables.append((table, paths[f"{kind}_csv"]))
        _write_tables(tables)
        return {k: str(v) for k, v in paths.items()}


def run_study(taxonomy: CompiledTaxonomy, images: ImageSet | LabeledImages, models: Sequence[ModelFile],
              *, metadata: pd.DataFrame | None = None, image_list: Sequence[str] | None = None,
              progress: bool | None = None, top_k: int = 10,
              predictions: Callable[[ModelFile], np.ndarray] | None = None,
              ray_address: str | None = None, chunks: int | None = None,
              compare: CompiledTaxonomy | None = None, compare_axis: str | None = None,
              diff_examples: int = 5, providers: Mapping[str, FeatureProvider] | None = None,
              provider_configs: Mapping[str, PathLike] | None = None,
              compare_providers: Mapping[str, FeatureProvider] | None = None,
              extra: ExtraScores | None = None, dataset: str = "imagenet",
              read_options: ReadOptions | None = None, shared: bool = True, resamples: int = RESAMPLES,
              seed: int = 0, baseline: str | None = None, consistency: bool = False, classes: bool = False,
              worst_k: int = WORST_K, min_images: int = MIN_IMAGES, factors: str | None = None) -> StudyResult:
    """Classify every model's predictions against ``taxonomy`` on ``images``; one row per model.

    ``predictions`` overrides how a model's top-1 array (int[N] over the study rows, -1 = none) is
    obtained (default: read its file). ``ray_address`` distributes the models over a Ray cluster
    (``"local"`` starts a local one); the table is identical to the single-process one.

    Feature providers (e.g. the OOV model of ``fine_grained_oov``): all models share one memo of
    (image, class) decisions, so a provider is asked about each distinct (image, predicted class)
    pair once for the whole study (and the OOV provider computes each image's embedding once, kept
    in its on-disk cache).

    * In-process runs use ``providers`` (e.g. ``{"oov": provider}``, as
      ``errortaxa.engine.providers.registry.build_all(configs, taxonomy)`` builds them); with only
      ``provider_configs`` (``{provider name: config file}``) they are built from those files.
    * Ray runs need ``provider_configs``: config files every worker builds its providers from
      (through the registry; the OOV model's weights, images, index and embedding cache must be
      readable at the same paths on every node). A worker where a provider cannot run fails the
      study (``ProviderUnavailable``) instead of reporting different categories. ``providers`` on
      Ray without a config for each is a ``ValueError``: providers cannot travel to the workers.
      The driver uses ``providers`` (or builds them) only for a taxonomy comparison.

    ``extra``: also read, from each model's .npz, its top-1 on all validation images and/or on a
    class subset (:mod:`errortaxa.study.scores`; columns ``top1_val``, ``top1_subset``); not with
    ``predictions`` or on Ray. ``dataset`` names the image set (``imagenet``, ``imagenet-a``, ...).

    ``read_options``: how prediction files are read (default: the taxonomy's vocabulary, the
    usual column names); on Ray its columns travel, the vocabulary is the taxonomy's.

    Per image (on by default): ``shared`` fills ``common_errors`` and ``image_errors``
    (:mod:`errortaxa.study.shared`); ``resamples`` (0: none) bootstrap resamples, drawn with
    ``seed``, give the per-class means their intervals (:mod:`errortaxa.study.intervals`);
    ``baseline`` (a model's name) adds ``vs_baseline.STAT`` columns: every model's difference from
    it in each headline statistic with a paired bootstrap interval and McNemar's p-value.

    ``consistency``: the error consistency (Cohen's kappa) of every pair of models, overall and per
    error category (:mod:`errortaxa.study.consistency`), in ``consistency``.

    ``classes``: per model and class (and superclass) the images, MLA share with its interval and
    the count of every category, and each model's ``worst_k`` classes among those with at least
    ``min_images`` images (:mod:`errortaxa.study.classes`), in ``classes``.

    ``factors``: the provider whose annotation table (a capability, read through the provider
    registry: ``imagenet_x``) the errors are set against (:mod:`errortaxa.study.factors`), in
    ``factors``; read before any model is classified, so a missing extra fails at once.

    ``compare``: a second taxonomy (same vocabulary); the result's ``diff`` is the confusion matrix of
    the study taxonomy's primary axis (rows) against ``compare_axis`` of it (columns, default its
    primary axis) on the errors of all models pooled: every model's prediction on every headline
    image is one sample (left out when both call it correct), and each cell keeps its
    ``diff_examples`` most common errors with the number of models that made them. The study's own
    decisions (features included) give the rows; ``compare`` is evaluated with ``compare_providers``
    (default: the study's providers, each rebuilt from its config for ``compare`` where its factory's
    ``taxonomy_key`` tells that it depends on what differs, e.g. the OOV provider on the superclasses).
    """
    start = time.perf_counter()
    if extra is not None and (ray_address is not None or predictions is not None):
        raise ValueError("top-1 on all validation images or on a class subset is read from the prediction files, "
                         "in this process: not with a Ray cluster or a predictions function")
    configs = {name: os.path.abspath(path) for name, path in (provider_configs or {}).items()}  # workers: any cwd
    if providers and ray_address is not None:
        missing = sorted(set(providers) - set(configs))
        if missing:
            raise ValueError(f"a study on Ray cannot send feature providers to its workers: pass provider_configs "
                             f"(the config files every worker builds them from) for {', '.join(missing)}")
    if configs and providers is None and (ray_address is None or compare is not None):
        providers = registry.build_all(configs, taxonomy)
    image_set = images if isinstance(images, ImageSet) else ImageSet.from_labels(images)
    annotations = None
    if factors is not None:
        from errortaxa.engine.providers.annotations import annotation_table

        annotations = annotation_table(factors)
    options = read_options or ReadOptions(vocabulary=taxonomy.vocabulary)
    pairs = compare is not None
    if baseline is not None and resamples < 1:
        raise ValueError("a baseline needs bootstrap resamples (resamples >= 1)")
    tab = Tabulator(taxonomy, image_set, image_list, pairs=pairs, providers=providers)
    acc = Accumulator()
    with ExitStack() as stack:
        resampling, resampled = None, 0  # the bootstrap, and how many of the models it has
        if resamples > 0:  # in a background thread, a chunk of models at a time
            resampling = stack.enter_context(Resampling(tab.levels, image_set.batch.target, tab.masks,
                                                        resamples=resamples, seed=seed, paired=baseline is not None))
        if ray_address is not None:
            acc = run_on_ray(taxonomy, image_set, models, image_list, ray_address, chunks=chunks, progress=progress,
                             pairs=pairs, provider_configs=configs, columns=options.columns)
        else:
            from tqdm import tqdm

            read = predictions or (lambda m: read_model(m.path, image_set, options))
            acc.reserve(len(models), len(image_set), tab.pred_dtype)
            # the loop makes arrays, not cycles: the cyclic collector runs once a chunk of models
            with resampling.sharing_cores() if resampling is not None else nullcontext(), gc_paused():
                for i, model in enumerate(tqdm(models, desc="models", unit="model",
                                               disable=(None if progress is None else not progress))):
                    if i % _RESAMPLED_CHUNK == 0:
                        gc.collect(1)
                    if extra is not None:
                        pred, extras = read_with_scores(model.path, image_set.index, image_set.batch.target, extra,
                                                        options)
                        tab.add(acc, model.name, pred, extras)
                    else:
                        tab.add(acc, model.name, read(model))
                    if resampling is not None and len(acc.values) - resampled >= _RESAMPLED_CHUNK:
                        resampled = _resample(resampling, acc, resampled, image_set.batch.target)
        if baseline is not None and baseline not in acc.models:
            raise ValueError(f"baseline {baseline!r} is not a model of the study")
        if resampling is not None:  # the last models' resamples, while the shared errors are counted
            _resample(resampling, acc, resampled, image_set.batch.target)
        decisions = StudyDecisions.of(tab, acc)
        # the shared errors are counted beside the rest (numpy leaves the GIL): the bootstrap's last
        # chunk, the table, a taxonomy comparison
        counting = ThreadPoolExecutor(1, thread_name_prefix="shared-errors")
        counted = counting.submit(count_errors, decisions.values, decisions.preds, tab.levels[0], tab.headline,
                                  tab.classes)
        counting.shutdown(wait=False)  # its one task runs on; the thread ends with it
        boot = None
        timings: dict[str, float] = {}
        if resampling is not None and len(acc.models):
            boot = resampling.result(None if baseline is None else acc.models.index(baseline))
            timings["bootstrap_s"] = boot.seconds
    table = frame(tab, acc, boot.intervals if boot is not None else None)
    if boot is not None and baseline is not None:
        table = _with_baseline(table, acc.models.index(baseline), boot.baseline)
    meta_cols: list[str] = []
    if metadata is not None and len(table):
        meta_cols = [c for c in metadata.columns if c != "model"]
        table = table.merge(metadata, on="model", how="left")
        table = table[["model", *meta_cols, *[c for c in table.columns if c not in meta_cols and c != "model"]]]
    axis = taxonomy.axes[taxonomy.primary_axis]
    errors = [v.id for v in axis.values if "mla_correct" not in v.tags and "problematic_only" not in v.tags]
    pairwise = None
    if consistency and len(acc.models):
        from errortaxa.study.consistency import study_consistency

        pairwise = study_consistency(decisions, errors)
        timings["consistency_s"] = pairwise.seconds
    factor_shares = None
    if annotations is not None and len(acc.models):
        from errortaxa.study.factors import factor_shares as shares_of

        factor_shares = shares_of(decisions, annotations, image_set.batch.images or [], acc.models, errors)
    breakdown = None
    if classes and len(acc.models):
        from errortaxa.study.classes import class_breakdown

        breakdown = class_breakdown(decisions, taxonomy, acc.models, worst_k=worst_k, min_images=min_images)
    diff = None
    if compare is not None:
        from errortaxa.study.diff import diff_taxonomies

        keys, counts = acc.pair_counts()
        rows, preds = np.divmod(keys, tab.classes)
        preds = preds.astype(np.int32)
        if compare_providers is None:
            compare_providers = _compare_providers(taxonomy, compare, providers, configs)
        # the study's decisions from its memo (on Ray, decided here once per distinct pair)
        diff = diff_taxonomies(taxonomy, compare, image_set.batch.take(rows, preds), axis_b=compare_axis,
                               weights=counts, examples=diff_examples, decisions_a=tab.classifier.classify(preds, rows),
                               providers_b=compare_providers)
    errors_of = counted.result()
    top = top_errors(tab, errors_of, top_k)
    return StudyResult(
        table=table, top_errors=top, categories=list(tab.values), error_categories=errors,
        groups=list(tab.group_names), taxonomy=taxonomy.name, images=len(image_set),
        seconds=time.perf_counter() - start, metadata_columns=meta_cols, diff=diff,
        rule_values={r.id: axis.values[r.value].id for r in axis.rules},
        sample_lists=taxonomy.sample_list_info(), dataset=dataset, baseline=baseline,
        resamples=resamples if boot is not None else 0, seed=seed, timings=timings,
        taxonomy_names=list(taxonomy.vocabulary.names), decisions=decisions, consistency=pairwise,
        classes=breakdown, factors=factor_shares,
        **(_shared_tables(errors_of, tab, taxonomy) if shared else {}),
    )


def _resample(resampling: Resampling, acc: Accumulator, start: int, target: np.ndarray) -> int:
    """Hand the bootstrap the models decided from ``start`` on; how many models it has now."""
    if start < len(acc.values):
        values, preds = acc.decisions(start)
        resampling.add(values, preds >= 0, preds == target[None, :] if resampling.paired else None)
    return len(acc.values)


def _shared_tables(errors: SharedErrors, tab: Tabulator, taxonomy: CompiledTaxonomy) -> dict[str, pd.DataFrame]:
    batch = tab.images.batch
    images = batch.images or [str(i) for i in range(len(batch))]
    return {"common_errors": common_errors_frame(errors, images, batch.target, list(tab.values)),
            "image_errors": images_frame(errors, images, batch.target)}


def _with_baseline(table: pd.DataFrame, base: int, diffs: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """``vs_baseline.STAT`` (the model's headline STAT minus the baseline's), its paired bootstrap
    interval ``_lo`` / ``_hi`` and McNemar's p ``_p``, after the models' own columns."""
    cols: dict[str, np.ndarray] = {}
    for stat in HEADLINE:
        own = table[f"all.{stat}"].to_numpy(np.float64)
        cols[f"vs_baseline.{stat}"] = own - own[base]
        for end in ("lo", "hi", "p"):
            cols[f"vs_baseline.{stat}_{end}"] = diffs[f"{stat}_{end}"]
    return pd.concat([table, pd.DataFrame(cols, index=table.index)], axis=1)


def _write_tables(tables: Sequence[tuple[pd.DataFrame, Path]]) -> None:
    """Write each table as CSV or Parquet (by its path's suffix), two at a time (pyarrow's writers
    release the GIL), largest first."""
    from concurrent.futures import ThreadPoolExecutor

    def one(table: pd.DataFrame, path: Path) -> None:
        if path.suffix == ".parquet":
            with open_binary(path) as binary:
                table.to_parquet(binary, index=False)
        else:
            write_csv(table, path)

    ordered = sorted(tables, key=lambda item: -item[0].size)
    with ThreadPoolExecutor(max_workers=2) as pool:
        for done in [pool.submit(one, table, path) for table, path in ordered]:
            done.result()


def write_csv(table: pd.DataFrame, path: PathLike) -> None:
    """A table as CSV (through pyarrow's writer: fast on the large per-error tables)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    data = pa.Table.from_pandas(table, preserve_index=False)
    data = data.cast(pa.schema([pa.field(f.name, pa.string()) if pa.types.is_dictionary(f.type) else f
                                for f in data.schema]))
    with open_binary(path) as stream:
        pacsv.write_csv(data, stream)


def _compare_providers(taxonomy: CompiledTaxonomy, compare: CompiledTaxonomy,
                       providers: Mapping[str, FeatureProvider] | None,
                       configs: Mapping[str, str]) -> Mapping[str, FeatureProvider] | None:
    """Providers for the compared taxonomy: none when it asks none of the study's; else the study's,
    each rebuilt for ``compare`` from its config where the taxonomies differ in what it depends on
    (its factory's ``taxonomy_key``)."""
    needed = sorted(compare.providers_needed & set(providers or {}))
    if not providers or not needed:
        return None
    out = dict(providers)
    installed = {f.name: f for f in registry.factories()}
    for name in needed:
        factory = installed.get(name)  # none: a provider given directly, shared only by equal taxonomies
        if (factory.taxonomy_key(compare) == factory.taxonomy_key(taxonomy) if factory is not None
                else compare.content_hash == taxonomy.content_hash):
            continue
        if name not in configs:
            raise ValueError(f"the compared taxonomy differs from the study's in what the '{name}' provider "
                             f"depends on: pass compare_providers (or provider_configs) for it")
        out[name] = registry.build(name, configs[name], compare)
    return out
