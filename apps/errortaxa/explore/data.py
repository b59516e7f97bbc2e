"""The explorer's data: every model's predictions on one image set (:class:`Corpus`, independent of
the taxonomy) and what one taxonomy decides on them (:class:`View`).

A decision depends only on the image and the predicted class, so the errors of all models are
indexed once as their distinct (image, predicted class) pairs ("pairs", sorted keys ``row * C +
pred``) with the number of models making each. A view classifies every model at once with the
engine's :meth:`~errortaxa.engine.run.imageset.ImageSetClassifier.classify_many` (each distinct
pair decided once) and keeps only the category and rule of each error pair and the per-model
category counts: a few bytes per pair, not the classifier's [images, classes] memo. Galleries,
transitions and filters are numpy over the pairs; no Python loop runs per error.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from errortaxa.engine import CompiledTaxonomy, FeatureProvider, evaluate
from errortaxa.engine.inputs import ReadOptions
from errortaxa.engine.results.accuracy import LABEL_GROUPS, class_sets, group_masks
from errortaxa.engine.run.imageset import ImageSetClassifier
from errortaxa.study.models import ImageSet, ModelFile
from errortaxa.study.scores import ExtraScores
from errortaxa.study.stats import clopper_pearson


@dataclass
class ExploreInputs:
    """What ``errortaxa explore`` serves: the study's inputs, each model's predictions read once."""

    taxonomy: CompiledTaxonomy
    images: ImageSet
    models: list[ModelFile]
    preds: np.ndarray  # int[M, N]: model m's top-1 on study image i, -1 where its file has none
    providers: Mapping[str, FeatureProvider] = field(default_factory=dict)
    metadata: pd.DataFrame | None = None
    image_list: Sequence[str] | None = None
    extra: ExtraScores | None = None
    dataset: str = "imagenet"
    read_options: ReadOptions | None = None
    taxonomy_path: Path | None = None  # the --taxonomy file (the only one /api/save writes)
    command: str = "errortaxa study"  # the study command over the same sources (without --out)


class Corpus:
    """The taxonomy-independent indexes over ``preds`` [models, images]."""

    def __init__(self, inputs: ExploreInputs) -> None:
        self.inputs = inputs
        batch = inputs.images.batch
        self.batch = batch
        self.models = [m.name for m in inputs.models]
        self.model_index = {name: m for m, name in enumerate(self.models)}
        self.image_names: list[str] = list(batch.images or [str(i) for i in range(len(batch))])
        self.image_index = {name: i for i, name in enumerate(self.image_names)}
        self.classes = C = len(inputs.taxonomy.vocabulary)
        dtype = np.int16 if C < 2**15 else np.int32
        preds = np.asarray(inputs.preds)
        if preds.ndim != 2 or preds.shape != (len(self.models), len(batch)):
            raise ValueError(f"preds has shape {preds.shape}; expected [{len(self.models)}, {len(batch)}]")
        self.preds = preds.astype(dtype, copy=False)
        self.target = batch.target.astype(np.int64)
        self.headline = ~batch.problematic  # the study's headline images (non-problematic)
        self.headline_rows = np.flatnonzero(self.headline)
        present = self.preds >= 0
        # classify_many needs a class everywhere: a missing prediction is decided as the target
        # and taken out of the counts again (View); without any, the headline matrix is shared
        head = self.preds if self.headline.all() else self.preds[:, self.headline_rows]
        self.missing = np.nonzero(head < 0)
        self.preds_headline = head if not self.missing[0].size else np.where(
            head >= 0, head, self.target[self.headline_rows][None, :].astype(dtype))
        self.present_headline = present[:, self.headline_rows].sum(axis=1).astype(np.int64)  # the study's n
        hit = (self.preds == self.target[None, :].astype(dtype)) & present
        self.top1_headline = hit[:, self.headline_rows].sum(axis=1).astype(np.int64)
        # the error pairs of all models: distinct keys, how many models make each
        errors = present & ~hit
        model_of, rows = np.nonzero(errors)
        keys = rows.astype(np.int64) * C + self.preds[model_of, rows]
        self.error_total = int(keys.shape[0])
        self.pair_keys, self.pair_count = np.unique(keys, return_counts=True)
        self.pair_row, self.pair_pred = np.divmod(self.pair_keys, C)
        self.pair_target = self.target[self.pair_row]
        # the all-models gallery's orders: most models first (then by image), and by image
        self.order_models = np.lexsort((self.pair_keys, -self.pair_count))
        groups = group_masks(batch, class_sets(inputs.taxonomy.vocabulary))["by_any_label"]
        self.groups = {g: groups[g] for g in LABEL_GROUPS}  # by any correct label (the study's)

    def model_errors(self, m: int) -> tuple[np.ndarray, np.ndarray]:
        """Model m's top-1 errors: (image rows, pair ids)."""
        pred = self.preds[m]
        rows = np.flatnonzero((pred >= 0) & (pred != self.target))
        keys = rows.astype(np.int64) * self.classes + pred[rows]
        return rows, np.searchsorted(self.pair_keys, keys)

    def pairs_of(self, rows: np.ndarray, preds: np.ndarray) -> np.ndarray:
        """Pair ids of (row, pred) errors (-1 where no model makes that error)."""
        keys = rows.astype(np.int64) * self.classes + preds.astype(np.int64)
        at = np.minimum(np.searchsorted(self.pair_keys, keys), max(len(self.pair_keys) - 1, 0))
        found = self.pair_keys[at] == keys if len(self.pair_keys) else np.zeros(keys.shape, bool)
        return np.where(found, at, -1)

    def models_making(self, row: int, pred: int) -> list[str]:
        """The models whose prediction on image ``row`` is ``pred``."""
        return [self.models[m] for m in np.flatnonzero(self.preds[:, row] == pred).tolist()]


class View:
    """One taxonomy's decisions on the corpus: category and rule of every error pair, per-model
    category counts on the headline images, the study's table (on demand) and the rules' cases."""

    def __init__(self, corpus: Corpus, taxonomy: CompiledTaxonomy, yaml_text: str,
                 providers: Mapping[str, FeatureProvider] | None = None) -> None:
        self.corpus = corpus
        self.taxonomy = taxonomy
        self.yaml = yaml_text
        self.tx = taxonomy.content_hash
        self.providers = dict(providers or {})
        axis = taxonomy.axes[taxonomy.primary_axis]
        self.categories = axis.value_ids
        self.rules = axis.rule_ids
        self.mla_correct = axis.mla_correct[: len(self.categories)]  # (its last entry: no value)
        self.timings: dict[str, float] = {}
        start = time.perf_counter()
        classifier = ImageSetClassifier(taxonomy, corpus.batch, self.providers)
        decided = classifier.classify_many(corpus.preds_headline, corpus.headline_rows)
        counts = decided.counts[taxonomy.primary_axis].copy()  # int64 [M, V]
        if corpus.missing[0].size:  # the filled-in predictions out of the counts again
            values = decided.values()[corpus.missing]
            keep = values >= 0
            np.subtract.at(counts, (corpus.missing[0][keep], values[keep]), 1)
        self.counts = counts
        self.timings["classify_many"] = time.perf_counter() - start
        start = time.perf_counter()
        primary = taxonomy.primary_axis
        codes = classifier.codes[primary].ravel()[corpus.pair_keys]
        undecided = np.flatnonzero(codes == 0)  # errors on problematic images: not in the headline run
        if undecided.size:
            classifier.classify(corpus.pair_pred[undecided], corpus.pair_row[undecided])
            codes = classifier.codes[primary].ravel()[corpus.pair_keys]
        self.pair_rule = codes.astype(np.int16) - 2
        self.pair_value = classifier.value_of_code[primary][codes]
        self.timings["pairs"] = time.perf_counter() - start
        self._lock = threading.Lock()
        self._study: pd.DataFrame | None = None
        self._cases: list[dict[str, Any]] | None = None

    # ------------------------------------------------------------------ the model table

    def rows(self) -> list[dict[str, Any]]:
        """The model table from the counts (the numbers of the study's ``all.*`` columns)."""
        c = self.corpus
        n = c.present_headline
        correct = self.counts[:, self.mla_correct].sum(axis=1)
        top_lo, top_hi = clopper_pearson(c.top1_headline, n)
        mla_lo, mla_hi = clopper_pearson(correct, n)
        with np.errstate(invalid="ignore", divide="ignore"):
            top1 = np.where(n > 0, c.top1_headline / np.maximum(n, 1), np.nan)
            mla = np.where(n > 0, correct / np.maximum(n, 1), np.nan)
            shares = np.where(n[:, None] > 0, self.counts / np.maximum(n, 1)[:, None], np.nan)
        out = []
        for m, name in enumerate(c.models):
            out.append({
                "model": name, "samples": int(n[m]),
                "top1": _num(top1[m]), "top1_lo": _num(top_lo[m]), "top1_hi": _num(top_hi[m]),
                "mla": _num(mla[m]), "mla_lo": _num(mla_lo[m]), "mla_hi": _num(mla_hi[m]),
                "shares": {cat: _num(shares[m, j]) for j, cat in enumerate(self.categories)},
                "counts": {cat: int(self.counts[m, j]) for j, cat in enumerate(self.categories)},
            })
        return out

    def study_table(self) -> pd.DataFrame:
        """The table ``errortaxa study`` writes (models.csv) for these inputs and this taxonomy,
        computed by the study's own code once (errortaxa.study.study.run_study)."""
        from errortaxa.study.study import run_study

        with self._lock:
            if self._study is None:
                c, inputs = self.corpus, self.corpus.inputs
                read = None if inputs.extra is not None else (lambda model: c.preds[c.model_index[model.name]])
                result = run_study(self.taxonomy, inputs.images, inputs.models, metadata=inputs.metadata,
                                   image_list=inputs.image_list, progress=False, predictions=read,
                                   providers=self.providers or None, extra=inputs.extra, dataset=inputs.dataset,
                                   read_options=inputs.read_options)
                self._study = result.table
            return self._study

    def cases(self) -> list[dict[str, Any]]:
        """The rules' expected cases (``cases:``), run by the engine."""
        from errortaxa.engine import run_cases

        if self._cases is None:
            out = []
            for case in run_cases(self.taxonomy, self.providers):
                status = "passed" if case.passed else "skipped" if case.not_checked else "failed"
                wrong = {k: {"expected": v, "got": case.got.get(k)} for k, v in case.expected.items()
                         if case.got.get(k) != v}
                message = case.not_checked or "; ".join(
                    f"{k}: expected {w['expected']}, got {w['got']}" for k, w in wrong.items())
                out.append({"name": case.name, "status": status, "message": message, "line": case.line})
            self._cases = out
        return self._cases

    # ------------------------------------------------------------------ records

    def records(self, rows: np.ndarray, preds: np.ndarray) -> list[dict[str, Any]]:
        """The output records (category, rule, evidence as ``classify`` writes them) of the errors
        (rows[i], preds[i]): one engine evaluation of just these pairs."""
        if not rows.shape[0]:
            return []
        c = self.corpus
        batch = c.batch.take(rows.astype(np.int64), preds.astype(np.int32))
        decisions = evaluate(self.taxonomy, batch, self.providers, validate=False)
        return [decisions.record(i) for i in range(rows.shape[0])]


def _num(x: Any) -> float | None:
    """A JSON number (None for NaN)."""
    value = float(x)
    return None if value != value else value
