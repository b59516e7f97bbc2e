"""Classify many models on one image set and tabulate per-model statistics.

All models go through one :class:`~errortaxa.engine.run.imageset.ImageSetClassifier`, so every
(image, predicted class) decision is made once for the whole study. Per model the table holds,
for the headline (non-problematic) images and per group of the target (organism / artifact /
other, dogs / other_animals / objects), the sample count, top-1 and multi-label accuracy with 95%
Clopper-Pearson intervals and the count and share of every category; the problematic images are
reported apart (group ``problematic``); optionally the accuracy on an image list (ImageNet-M).

Feature providers (the ``oov`` provider of the ``fine_grained_oov`` rule) are shared the same way: the
memo asks a provider about each (image, predicted class) pair once, whichever models predict it.
"""

from __future__ import annotations

import csv
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from errortaxa.engine import CompiledTaxonomy, SampleBatch
from errortaxa.engine.errors import FailedPrecondition
from errortaxa.engine.inputs import (
    NUM_VALIDATION_IMAGES,
    PREDICTIONS,
    InputError,
    LabeledImages,
    read_predictions,
    suffixes,
)
from errortaxa.engine.providers import FeatureProvider
from errortaxa.engine.results.accuracy import (
    LABEL_GROUPS,
    TARGET_GROUPS,
    class_mean_accuracy,
    class_sets,
    group_masks,
    pred_in_labels,
    value_masks,
)
from errortaxa.engine.run.imageset import ImageSetClassifier, can_be_unknown
from errortaxa.study.scores import ExtraScores, read_with_scores
from errortaxa.study.stats import clopper_pearson

if TYPE_CHECKING:
    from errortaxa.study.diff import DiffResult

PathLike = str | os.PathLike[str]
GROUPS = (*(f"{g}_by_label" for g in LABEL_GROUPS), *(f"{g}_by_target" for g in TARGET_GROUPS))
"""The breakdown groups: the reference's (an image in every group one of its correct labels is in,
overlapping) and Shankar et al.'s (by the original target, a partition)."""
MLA_STATS = ("mla", "mla_minor", "mla_explainable")
_VAL_NAME = re.compile(r"^ILSVRC2012_val_(\d{8})\.JPEG$")


@dataclass(frozen=True)
class ModelFile:
    """One model's prediction file; ``name`` is the file name without its suffix."""

    name: str
    path: str


def discover_models(sources: Sequence[PathLike]) -> list[ModelFile]:
    """Prediction files from directories (those with the suffix of a predictions format, e.g.
    ``*.npz`` / ``*.npy`` / ``*.jsonl``, sorted by name), plain files, and ``.txt`` lists of paths
    (one a line, relative to the list's folder)."""
    known = suffixes(PREDICTIONS)
    out: list[ModelFile] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.name.lower().endswith(known) and p.is_file())
        elif path.suffix.lower() == ".txt":
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except OSError as error:
                raise InputError(path, f"cannot read: {error.strerror or error}") from None
            files = [(path.parent / line.strip()) for line in lines if line.strip() and not line.startswith("#")]
        elif path.is_file():
            files = [path]
        else:
            raise InputError(path, "no such file or directory")
        out.extend(ModelFile(_model_name(p), str(p)) for p in files)
    names = [m.name for m in out]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise InputError(sources[0] if sources else ".", f"two prediction files for model {dup!r}")
    return out


def _model_name(path: Path) -> str:
    name = path.name
    for suffix in suffixes(PREDICTIONS):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


@dataclass
class ImageSet:
    """The study's images (a batch whose ``pred`` is ignored) and lookups into it."""

    batch: SampleBatch
    val_rows: np.ndarray = field(init=False)  # int64[50000]: study row of validation image i, -1 if none
    index: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        names = self.batch.images or []
        self.index = {name: i for i, name in enumerate(names)}
        self.val_rows = np.full(NUM_VALIDATION_IMAGES, -1, np.int64)
        for i, name in enumerate(names):
            m = _VAL_NAME.match(name)
            if m and 1 <= int(m.group(1)) <= NUM_VALIDATION_IMAGES:
                self.val_rows[int(m.group(1)) - 1] = i

    @classmethod
    def from_labels(cls, labels: LabeledImages) -> ImageSet:
        return cls(labels.to_batch(labels.target))

    def __len__(self) -> int:
        return len(self.batch)

    def rows_of(self, names: Iterable[str]) -> np.ndarray:
        get = self.index.get
        return np.fromiter((get(n, -1) for n in names), dtype=np.int64)


def read_model(path: PathLike, images: ImageSet, num_classes: int = 1000) -> np.ndarray:
    """A model's top-1 prediction on every study image (int32[N], -1 where the file has none),
    from a file in any predictions format."""
    out = np.full(len(images), -1, np.int32)
    predictions = read_predictions(path, num_classes)
    if predictions.images is None:
        raise InputError(path, f"{predictions.format} predictions need image names to join with the study images")
    rows = images.val_rows if predictions.validation_order else images.rows_of(predictions.images)
    keep = np.flatnonzero(rows >= 0)
    out[rows[keep]] = predictions.top1(num_classes, keep)
    return out


def read_metadata(path: PathLike) -> pd.DataFrame:
    """Model metadata CSV; the model column is ``name`` (or ``model``, else the first column)."""
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError, csv.Error) as error:
        raise InputError(path, f"cannot read as CSV: {error}") from None
    if frame.empty and not len(frame.columns):
        raise InputError(path, "empty CSV")
    key = "name" if "name" in frame.columns else "model" if "model" in frame.columns else frame.columns[0]
    frame = frame.rename(columns={key: "model"})
    frame["model"] = frame["model"].astype(str)
    if frame["model"].duplicated().any():
        dup = frame.loc[frame["model"].duplicated(), "model"].iloc[0]
        raise InputError(path, f"model {dup!r} appears twice", field="name")
    return frame


def read_image_list(path: PathLike) -> list[str]:
    """An image list (e.g. ImageNet-M): one file name a line, or a CSV/JSON whose first field is one;
    bare 8-digit numbers or ``ILSVRC2012_val_00000001`` without a suffix are accepted."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as error:
        raise InputError(path, f"cannot read: {error.strerror or error}") from None
    out: list[str] = []
    if text.lstrip().startswith("[") or text.lstrip().startswith("{"):
        import json

        data = json.loads(text)
        items = list(data) if isinstance(data, dict | list) else []
        lines = [str(x) for x in items]
    else:
        lines = [line.split(",")[0].strip().strip('"') for line in text.splitlines()]
    for token in lines:
        if not token or token.startswith("#") or token.lower() in {"file", "image", "id", "name"}:
            continue
        token = Path(token).name
        if token.isdigit():
            token = f"ILSVRC2012_val_{int(token):08d}.JPEG"
        elif token.startswith("ILSVRC2012_val_") and not token.endswith(".JPEG"):
            token += ".JPEG"
        out.append(token)
    return out


# ------------------------------------------------------------------------------------------------
# per-model statistics


@dataclass
class _Accumulator:
    """Per-model counts of one study (or one chunk of it), and the error keys for the top errors."""

    models: list[str] = field(default_factory=list)
    samples: list[np.ndarray] = field(default_factory=list)  # int64[G]
    top1: list[np.ndarray] = field(default_factory=list)  # int64[G]
    mla: list[np.ndarray] = field(default_factory=list)  # int64[G]: images counted correct (the share)
    levels: list[np.ndarray] = field(default_factory=list)  # float[3, G]: per-class MLA, minor, explainable
    listed: list[np.ndarray] = field(default_factory=list)  # int64[G, 2]: listed images, their errors
    extras: list[dict[str, float]] = field(default_factory=list)  # e.g. top-1 on all validation images
    counts: list[np.ndarray] = field(default_factory=list)  # int64[G, V]
    error_keys: list[np.ndarray] = field(default_factory=list)  # flat (row * C + pred) of headline errors
    error_values: list[np.ndarray] = field(default_factory=list)  # their primary-axis values (int16)
    not_evaluated: list[np.ndarray] = field(default_factory=list)  # int64[G, R]: samples per group and rule
    # with a taxonomy comparison: distinct headline predictions (row * C + pred) and how many models
    # made each: a dense counter over every (row, class) while it is small enough, else (keys, counts)
    # parts merged now and then
    pairs: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    _dense: np.ndarray | None = None
    _pending: int = 0

    def extend(self, other: _Accumulator) -> None:
        self.models += other.models
        self.samples += other.samples
        self.top1 += other.top1
        self.mla += other.mla
        self.levels += other.levels
        self.listed += other.listed
        self.extras += other.extras
        self.counts += other.counts
        self.error_keys += other.error_keys
        self.error_values += other.error_values
        self.not_evaluated += other.not_evaluated
        if other.pairs or other._dense is not None:
            self.add_pairs(*other.pair_counts())

    def add_pairs(self, keys: np.ndarray, counts: np.ndarray | None = None, size: int | None = None) -> None:
        """Count ``keys`` (with ``counts``, else once each: one model's distinct predictions, keys
        below ``size``)."""
        if counts is None and size is not None and size <= _DENSE_PAIRS:
            if self._dense is None:
                self._dense = np.zeros(size, np.uint32)
            self._dense[keys] += 1  # distinct keys: one prediction per image
            return
        self.pairs.append((keys, np.ones(keys.shape[0], np.int64) if counts is None else counts))
        self._pending += keys.shape[0]
        if self._pending > 1 << 22:
            self.pair_counts()

    def pair_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """The distinct keys (sorted) and their counts over everything added so far."""
        if self._dense is not None:
            nonzero = np.flatnonzero(self._dense)
            self.pairs.append((nonzero, self._dense[nonzero].astype(np.int64)))
            self._dense = None
        if len(self.pairs) != 1:
            keys = np.concatenate([k for k, _ in self.pairs]) if self.pairs else np.zeros(0, np.int64)
            counts = np.concatenate([c for _, c in self.pairs]) if self.pairs else np.zeros(0, np.int64)
            uniq, inverse = np.unique(keys, return_inverse=True)
            self.pairs = [(uniq, np.bincount(inverse, weights=counts, minlength=uniq.shape[0]).astype(np.int64))]
        self._pending = 0
        return self.pairs[0]


_DENSE_PAIRS = 1 << 26  # (image, class) pairs counted in a dense uint32 array up to this many (256 MB)


class _Tabulator:
    """Decides and counts one model at a time against a shared ImageSetClassifier (with ``providers``,
    e.g. ``{"oov": provider}``, asked once per (image, class) pair for all models)."""

    def __init__(self, taxonomy: CompiledTaxonomy, images: ImageSet,
                 image_list: Sequence[str] | None = None, pairs: bool = False,
                 providers: Mapping[str, FeatureProvider] | None = None) -> None:
        self.taxonomy = taxonomy
        self.pairs = pairs
        self.images = images
        self.classifier = ImageSetClassifier(taxonomy, images.batch, providers)
        axis = taxonomy.axes[taxonomy.primary_axis]
        self.values = axis.value_ids
        self.mla_value = axis.mla_correct
        # rules that can be 'not evaluated' (a provider or a sample list): counted per model
        self.unknowable = [(r, rule.id) for r, rule in enumerate(axis.rules) if can_be_unknown(rule.node)]
        batch = images.batch
        self.levels = np.stack(list(value_masks(axis).values()))  # bool[3, V + 1]
        groups = group_masks(batch, class_sets(taxonomy.vocabulary))
        problematic = batch.problematic
        masks = {"all": ~problematic}
        masks.update({f"{g}_by_label": ~problematic & m for g, m in groups["by_any_label"].items()})
        masks.update({f"{g}_by_target": ~problematic & m for g, m in groups["by_target"].items()})
        masks["problematic"] = problematic.copy()
        self.listed: np.ndarray | None = None
        if image_list is not None:
            rows = images.rows_of(image_list)
            self.listed = np.zeros(len(batch), bool)
            self.listed[rows[rows >= 0]] = True
            masks["image_list"] = self.listed & ~problematic
        self.group_names = list(masks)
        self.masks = np.stack([masks[g] for g in self.group_names])  # bool[G, N]
        self.classes = len(taxonomy.vocabulary)

    def add(self, acc: _Accumulator, name: str, pred: np.ndarray, extras: Mapping[str, float] | None = None) -> None:
        """Decide and count one model's predictions (``pred``: int[N], -1 = none); ``extras``: its
        figures that do not come from the decisions (e.g. top-1 on all validation images)."""
        present = pred >= 0
        rows = np.flatnonzero(present)
        full = rows.shape[0] == pred.shape[0]
        decisions = self.classifier.classify(pred if full else pred[rows], None if full else rows)
        value = np.full(pred.shape[0], -1, np.int64)
        value[rows] = decisions.primary.value
        correct = self.levels[:, value]  # [3, N]; -1 (no prediction) is never correct
        mla = correct[0]
        batch = self.images.batch
        top1 = present & (pred == batch.target)
        masks = self.masks & present[None, :]
        v = len(self.values)
        codes = np.where(masks, value[None, :] + 1, -1) + (np.arange(masks.shape[0]) * (v + 1))[:, None]
        counts = np.bincount(codes[masks], minlength=masks.shape[0] * (v + 1)).reshape(masks.shape[0], v + 1)
        acc.models.append(name)
        acc.samples.append(masks.sum(axis=1))
        acc.top1.append((masks & top1[None, :]).sum(axis=1))
        acc.mla.append((masks & mla[None, :]).sum(axis=1))
        acc.levels.append(class_mean_accuracy(correct, batch.target, masks, self.classes))
        if self.listed is not None:
            # the reference's count on an image list: an error whenever top-1 is not a correct label
            listed = masks & self.listed[None, :]
            wrong = ~pred_in_labels(batch, np.where(present, pred, -1))
            acc.listed.append(np.stack([listed.sum(axis=1), (listed & wrong[None, :]).sum(axis=1)], axis=1))
        acc.extras.append(dict(extras or {}))
        acc.counts.append(counts[:, 1:])
        errors = np.flatnonzero(masks[0] & ~mla)
        acc.error_keys.append(errors.astype(np.int64) * self.classes + pred[errors])
        acc.error_values.append(value[errors].astype(np.int16))
        skipped = np.zeros(pred.shape[0], np.uint64)
        skipped[rows] = decisions.primary.not_evaluated
        bits = np.stack([(skipped >> np.uint64(r)) & np.uint64(1) for r, _ in self.unknowable]).astype(bool) \
            if self.unknowable else np.zeros((0, pred.shape[0]), bool)
        acc.not_evaluated.append((masks[:, None, :] & bits[None, :, :]).sum(axis=2).astype(np.int64))
        if self.pairs:
            headline = np.flatnonzero(masks[0])
            acc.add_pairs(headline.astype(np.int64) * self.classes + pred[headline], size=len(pred) * self.classes)


def _frame(tab: _Tabulator, acc: _Accumulator) -> pd.DataFrame:
    """The per-model statistics table of an accumulator.

    Per group: ``samples``; ``top1`` and ``mla_share`` (plain shares of images, with 95%
    Clopper-Pearson intervals ``_lo`` / ``_hi``); ``mla``, ``mla_minor``, ``mla_explainable``
    (per-class means, see :mod:`errortaxa.engine.results.accuracy`); ``top1_errors``; ``n.VALUE``
    and ``share.VALUE`` per value; ``not_evaluated.RULE`` (samples whose rule could not be
    evaluated). On an image list: ``samples``, ``errors`` (top-1 not a correct label, the
    reference's count) and ``accuracy``; per group also ``listed`` / ``listed_errors``. All
    accuracies are fractions in [0, 1].
    """
    cols: dict[str, Any] = {"model": acc.models}
    if not acc.models:
        return pd.DataFrame(cols)
    samples = np.stack(acc.samples)
    top1 = np.stack(acc.top1)
    mla = np.stack(acc.mla)
    levels = np.stack(acc.levels)  # [M, 3, G]
    counts = np.stack(acc.counts)  # [M, G, V]
    not_evaluated = np.stack(acc.not_evaluated)  # [M, G, R]
    listed = np.stack(acc.listed) if acc.listed else None  # [M, G, 2]
    extras = sorted({k for e in acc.extras for k in e})
    for key in extras:
        cols[key] = np.array([e.get(key, np.nan) for e in acc.extras], np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        for g, group in enumerate(tab.group_names):
            n = samples[:, g]
            cols[f"{group}.samples"] = n
            if group == "image_list" and listed is not None:
                wrong = listed[:, g, 1]
                cols[f"{group}.errors"] = wrong
                lo, hi = clopper_pearson(n - wrong, n)
                cols[f"{group}.accuracy"] = np.where(n > 0, (n - wrong) / np.maximum(n, 1), np.nan)
                cols[f"{group}.accuracy_lo"], cols[f"{group}.accuracy_hi"] = lo, hi
                continue
            for stat, k in (("top1", top1[:, g]), ("mla_share", mla[:, g])):
                lo, hi = clopper_pearson(k, n)
                cols[f"{group}.{stat}"] = np.where(n > 0, k / np.maximum(n, 1), np.nan)
                cols[f"{group}.{stat}_lo"] = lo
                cols[f"{group}.{stat}_hi"] = hi
            for j, stat in enumerate(MLA_STATS):
                cols[f"{group}.{stat}"] = levels[:, j, g]
            cols[f"{group}.top1_errors"] = n - top1[:, g]
            for j, cat in enumerate(tab.values):
                cols[f"{group}.n.{cat}"] = counts[:, g, j]
            for j, cat in enumerate(tab.values):
                cols[f"{group}.share.{cat}"] = np.where(n > 0, counts[:, g, j] / np.maximum(n, 1), np.nan)
            for column, (_, rule_id) in enumerate(tab.unknowable):
                cols[f"{group}.not_evaluated.{rule_id}"] = not_evaluated[:, g, column]
            if listed is not None:
                cols[f"{group}.listed"] = listed[:, g, 0]
                cols[f"{group}.listed_errors"] = listed[:, g, 1]
        errors = samples[:, 0] - mla[:, 0]
        for j, cat in enumerate(tab.values):
            if not tab.mla_value[j]:
                cols[f"error_share.{cat}"] = np.where(errors > 0, counts[:, 0, j] / np.maximum(errors, 1), np.nan)
    return pd.DataFrame(cols)


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

    def write(self, out_dir: PathLike) -> dict[str, str]:
        """Write ``models.csv``, ``models.parquet``, ``top_errors.json``, ``study.json`` (the
        taxonomy, the sample lists it used with their sources, the inputs) and, with a comparison,
        ``taxonomy_diff.json`` into ``out_dir``."""
        import json

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"csv": out / "models.csv", "parquet": out / "models.parquet", "top_errors": out / "top_errors.json"}
        self.table.to_csv(paths["csv"], index=False)
        self.table.to_parquet(paths["parquet"], index=False)
        paths["top_errors"].write_text(json.dumps(self.top_errors, indent=1) + "\n", encoding="utf-8")
        paths["study"] = out / "study.json"
        about = {"taxonomy": self.taxonomy, "models": len(self.table), "images": self.images,
                 "sample_lists": self.sample_lists, "inputs": self.inputs}
        paths["study"].write_text(json.dumps(about, indent=1) + "\n", encoding="utf-8")
        if self.diff is not None:
            paths["taxonomy_diff"] = out / "taxonomy_diff.json"
            paths["taxonomy_diff"].write_text(json.dumps(self.diff.to_dict(), indent=1) + "\n", encoding="utf-8")
        return {k: str(v) for k, v in paths.items()}


def run_study(taxonomy: CompiledTaxonomy, images: ImageSet | LabeledImages, models: Sequence[ModelFile],
              *, metadata: pd.DataFrame | None = None, image_list: Sequence[str] | None = None,
              progress: bool | None = None, top_k: int = 10,
              predictions: Callable[[ModelFile], np.ndarray] | None = None,
              ray_address: str | None = None, chunks: int | None = None,
              compare: CompiledTaxonomy | None = None, compare_axis: str | None = None,
              diff_examples: int = 5, providers: Mapping[str, FeatureProvider] | None = None,
              oov_config: PathLike | None = None,
              compare_providers: Mapping[str, FeatureProvider] | None = None,
              extra: ExtraScores | None = None, dataset: str = "imagenet") -> StudyResult:
    """Classify every model's predictions against ``taxonomy`` on ``images``; one row per model.

    ``predictions`` overrides how a model's top-1 array (int[N] over the study rows, -1 = none) is
    obtained (default: read its file). ``ray_address`` distributes the models over a Ray cluster
    (``"local"`` starts a local one); the table is identical to the single-process one.

    Feature providers (the OOV model of ``fine_grained_oov``): all models share one memo of
    (image, class) decisions, so a provider is asked about each distinct (image, predicted class)
    pair once for the whole study, and the OOV provider computes each image's embedding once (and
    keeps it in its on-disk cache).

    * In-process runs use ``providers`` (e.g. ``{"oov": provider}``, as
      ``errortaxa.cli.commands.oov_providers(path, taxonomy)`` builds them); with only ``oov_config``
      the OOV provider is built from that file.
    * Ray runs need ``oov_config``: a path to the OOV config (docs/OOV.md) that every worker loads;
      each worker builds its provider with ``errortaxa.providers.oov.config.provider_from_config(path,
      taxonomy)``, and all share the on-disk embedding cache named in it (weights, images, index and
      cache must be readable at the same paths on every node). A worker where the model cannot run
      (no weights, no ``oov`` extra) fails the study (:class:`OOVUnavailable`) instead of reporting
      different categories. ``providers`` with ``ray_address`` but without ``oov_config`` is a
      ``ValueError``: providers cannot travel to the workers. The driver uses ``providers`` (or
      builds them from ``oov_config``) only for a taxonomy comparison.

    ``extra``: also read, from each model's .npz, its top-1 on all validation images and/or on a
    class subset (:mod:`errortaxa.study.scores`; columns ``top1_val``, ``top1_subset``); not with
    ``predictions`` or on Ray. ``dataset`` names the image set (``imagenet``, ``imagenet-a``, ...).

    ``compare``: a second taxonomy (same vocabulary); the result's ``diff`` is the confusion matrix of
    the study taxonomy's primary axis (rows) against ``compare_axis`` of it (columns, default its
    primary axis) on the errors of all models pooled: every model's prediction on every headline
    image is one sample (left out when both call it correct), and each cell keeps its
    ``diff_examples`` most common errors with the number of models that made them. The study's own
    decisions (features included) give the rows; ``compare`` is evaluated with ``compare_providers``
    (default: when it uses the ``oov`` provider, the study's providers if both taxonomies have the
    same superclasses, else one built from ``oov_config``).
    """
    start = time.perf_counter()
    if extra is not None and (ray_address is not None or predictions is not None):
        raise ValueError("top-1 on all validation images or on a class subset is read from the prediction files, "
                         "in this process: not with a Ray cluster or a predictions function")
    if providers and ray_address is not None:
        if oov_config is None:
            raise ValueError("a study on Ray cannot send feature providers to its workers: pass oov_config "
                             "(the OOV config file every worker builds its provider from) instead")
        other = sorted(set(providers) - {"oov"})
        if other:
            raise ValueError(f"a study on Ray rebuilds only the 'oov' provider (from oov_config) in its workers; "
                             f"other providers cannot be used there: {', '.join(other)}")
    if oov_config is not None:
        oov_config = os.path.abspath(oov_config)  # workers may run elsewhere (another cwd)
        if providers is None and (ray_address is None or compare is not None):
            providers = load_oov_providers(oov_config, taxonomy)
    image_set = images if isinstance(images, ImageSet) else ImageSet.from_labels(images)
    pairs = compare is not None
    tab = _Tabulator(taxonomy, image_set, image_list, pairs=pairs, providers=providers)
    acc = _Accumulator()
    if ray_address is not None:
        from errortaxa.study.distributed import run_on_ray

        acc = run_on_ray(taxonomy, image_set, models, image_list, ray_address, chunks=chunks, progress=progress,
                         pairs=pairs, oov_config=None if oov_config is None else str(oov_config))
    else:
        from tqdm import tqdm

        classes = len(taxonomy.vocabulary)
        read = predictions or (lambda m: read_model(m.path, image_set, classes))
        for model in tqdm(models, desc="models", unit="model", disable=(None if progress is None else not progress)):
            if extra is not None:
                pred, extras = read_with_scores(model.path, image_set.index, image_set.batch.target, extra, classes)
                tab.add(acc, model.name, pred, extras)
            else:
                tab.add(acc, model.name, read(model))
    table = _frame(tab, acc)
    meta_cols: list[str] = []
    if metadata is not None and len(table):
        meta_cols = [c for c in metadata.columns if c != "model"]
        table = table.merge(metadata, on="model", how="left")
        table = table[["model", *meta_cols, *[c for c in table.columns if c not in meta_cols and c != "model"]]]
    axis = taxonomy.axes[taxonomy.primary_axis]
    errors = [v.id for v in axis.values if "mla_correct" not in v.tags and "problematic_only" not in v.tags]
    top = top_errors(tab, acc, top_k)
    diff = None
    if compare is not None:
        from errortaxa.study.diff import diff_taxonomies

        keys, counts = acc.pair_counts()
        rows, preds = np.divmod(keys, tab.classes)
        preds = preds.astype(np.int32)
        if compare_providers is None:
            compare_providers = _compare_providers(taxonomy, compare, providers, oov_config)
        # the study's decisions from its memo (on Ray, decided here once per distinct pair)
        diff = diff_taxonomies(taxonomy, compare, image_set.batch.take(rows, preds), axis_b=compare_axis,
                               weights=counts, examples=diff_examples, decisions_a=tab.classifier.classify(preds, rows),
                               providers_b=compare_providers)
    return StudyResult(
        table=table, top_errors=top, categories=list(tab.values), error_categories=errors,
        groups=list(tab.group_names), taxonomy=taxonomy.name, images=len(image_set),
        seconds=time.perf_counter() - start, metadata_columns=meta_cols, diff=diff,
        rule_values={r.id: axis.values[r.value].id for r in axis.rules},
        sample_lists=taxonomy.sample_list_info(), dataset=dataset,
    )


class OOVUnavailable(FailedPrecondition):
    """The OOV provider of a study cannot run (no ``oov`` extra, no weights, no GPU where required)."""


def load_oov_providers(config: PathLike, taxonomy: CompiledTaxonomy) -> dict[str, FeatureProvider]:
    """``{"oov": provider}`` built from an OOV config file with
    :func:`errortaxa.providers.oov.config.provider_from_config`; :class:`OOVUnavailable` (with the reason) where
    the model cannot run here, since a study must not quietly leave the rule unevaluated. A malformed
    config raises ``ValueError`` (``OOVConfigError``); a missing config file ``FileNotFoundError``."""
    from errortaxa.providers.oov._unavailable import UnavailableProvider
    from errortaxa.providers.oov.config import provider_from_config

    provider = provider_from_config(os.fspath(config), taxonomy)
    if isinstance(provider, UnavailableProvider):
        raise OOVUnavailable(f"the OOV provider cannot run here: {provider.reason}")
    return {provider.name: provider}


def _compare_providers(taxonomy: CompiledTaxonomy, compare: CompiledTaxonomy,
                       providers: Mapping[str, FeatureProvider] | None,
                       oov_config: PathLike | None) -> Mapping[str, FeatureProvider] | None:
    """Providers for the compared taxonomy: none when it needs no ``oov`` provider; the study's when
    the two taxonomies have the same superclasses (the OOV gate and proposals depend on them);
    else one built from ``oov_config``."""
    if "oov" not in compare.providers_needed or not providers:
        return None
    if np.array_equal(compare.same_superclass, taxonomy.same_superclass):
        return providers
    if oov_config is None:
        raise ValueError("the compared taxonomy has other superclasses than the study's: pass compare_providers "
                         "(or oov_config) for its 'oov' provider")
    return {**providers, **load_oov_providers(oov_config, compare)}


def top_errors(tab: _Tabulator, acc: _Accumulator, k: int = 10) -> dict[str, list[dict[str, Any]]]:
    """Per error category, the ``k`` most common (target, prediction) pairs over all models."""
    if not acc.error_keys:
        return {}
    # each error's value as its model's chunk decided it (on Ray the driver holds no decisions)
    keys, first, counts = np.unique(np.concatenate(acc.error_keys), return_index=True, return_counts=True)
    rows, preds = np.divmod(keys, tab.classes)
    value = np.concatenate(acc.error_values)[first].astype(np.int64)
    target = tab.images.batch.target[rows].astype(np.int64)
    names = tab.taxonomy.vocabulary.names
    images = tab.images.batch.images or [str(i) for i in range(len(tab.images))]
    out: dict[str, list[dict[str, Any]]] = {}
    for j, cat in enumerate(tab.values):
        sel = np.flatnonzero(value == j)
        if not sel.size:
            continue
        pair = target[sel] * tab.classes + preds[sel]
        uniq, inverse = np.unique(pair, return_inverse=True)
        totals = np.bincount(inverse, weights=counts[sel]).astype(np.int64)
        order = np.argsort(-totals, kind="stable")[:k]
        entries = []
        for u in order.tolist():
            t, p = divmod(int(uniq[u]), tab.classes)
            members = sel[inverse == u]
            example = members[np.argsort(-counts[members], kind="stable")[:3]]
            entries.append({
                "target": t, "target_name": names[t], "pred": p, "pred_name": names[p],
                "errors": int(totals[u]), "images": [images[int(rows[e])] for e in example],
            })
        out[cat] = entries
    return out
