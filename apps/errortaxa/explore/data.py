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
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from errortaxa.engine import CompiledTaxonomy, FeatureProvider, evaluate
from errortaxa.engine.inputs import ReadOptions
from errortaxa.engine.results.accuracy import LABEL_GROUPS, class_sets, group_masks, levels_not_evaluated
from errortaxa.engine.run.imageset import ImageSetClassifier
from errortaxa.study.models import ImageSet, ModelFile

if TYPE_CHECKING:
    from errortaxa.study.scores import ExtraScores


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
    """The taxonomy-independent indexes over ``preds`` [models, images].

    Every prediction is one of the distinct (image, predicted class) pairs ("pairs": sorted keys
    ``row * C + pred``); ``pair_id`` [models, images] names it (-1: no prediction). ``errors``
    marks the pairs that are top-1 errors, ``pair_count`` how many models make each."""

    def __init__(self, inputs: ExploreInputs) -> None:
        self.inputs = inputs
        batch = inputs.images.batch
        self.batch = batch
        self.models = [m.name for m in inputs.models]
        self.model_index = {name: m for m, name in enumerate(self.models)}
        self.image_names: list[str] = list(batch.images or [str(i) for i in range(len(batch))])
        self.image_index = {name: i for i, name in enumerate(self.image_names)}
        self.classes = C = len(inputs.taxonomy.vocabulary)
        preds = np.asarray(inputs.preds)
        if preds.ndim != 2 or preds.shape != (len(self.models), len(batch)):
            raise ValueError(f"preds has shape {preds.shape}; expected [{len(self.models)}, {len(batch)}]")
        self.preds: np.ndarray = preds.astype(np.int16 if C < 2**15 else np.int32, copy=False)
        self.target = batch.target.astype(np.int64)
        self.headline = ~batch.problematic  # the study's headline images (non-problematic)
        self.headline_rows = np.flatnonzero(self.headline)
        present = self.preds >= 0
        self.present_headline = present[:, self.headline_rows].sum(axis=1).astype(np.int64)  # the study's n
        hit = (self.preds == self.target[None, :]) & present
        self.top1_headline = hit[:, self.headline_rows].sum(axis=1).astype(np.int64)
        self.pair_keys, self.pair_id = _pairs(self.preds, C)
        self.pair_row, self.pair_pred = np.divmod(self.pair_keys, C)
        self.pair_target = self.target[self.pair_row]
        self.pair_count = np.bincount(self.pair_id[present], minlength=len(self.pair_keys)).astype(np.int64)
        self.errors = self.pair_pred != self.pair_target  # the pairs that are top-1 errors
        # for the per-model counts: the headline errors as (model, pair) lists, the hits as a mask and
        # per image the pair of its target
        model_of, rows = np.nonzero(present & ~hit & self.headline[None, :])
        self.error_model = model_of.astype(np.int32)
        self.error_pair = self.pair_id[model_of, rows]
        del model_of, rows
        self.hit = hit
        keys = np.arange(len(batch), dtype=np.int64) * C + self.target
        at = np.minimum(np.searchsorted(self.pair_keys, keys), max(len(self.pair_keys) - 1, 0))
        self.target_pair = np.where(self.pair_keys[at] == keys, at, -1) if len(self.pair_keys) else \
            np.full(len(batch), -1, np.int64)
        self.error_pairs = np.flatnonzero(self.errors)
        self.error_total = int(self.pair_count[self.error_pairs].sum())
        # the all-models gallery in the order most models first (then by image): positions in error_pairs
        self.order_models = np.lexsort((self.pair_keys[self.error_pairs], -self.pair_count[self.error_pairs]))
        groups = group_masks(batch, class_sets(inputs.taxonomy.vocabulary))["by_any_label"]
        self.groups = {g: groups[g] for g in LABEL_GROUPS}  # by any correct label (the study's)

    def model_errors(self, m: int) -> tuple[np.ndarray, np.ndarray]:
        """Model m's top-1 errors: (image rows, pair ids)."""
        ids = self.pair_id[m]
        rows = np.flatnonzero(ids >= 0)
        rows = rows[self.errors[ids[rows]]]
        return rows, ids[rows]

    def models_making(self, row: int, pred: int) -> list[str]:
        """The models whose prediction on image ``row`` is ``pred``."""
        return [self.models[m] for m in np.flatnonzero(self.preds[:, row] == pred).tolist()]


def _pairs(preds: np.ndarray, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct keys ``row * C + pred`` of ``preds`` [models, images] (sorted) and the pair id of
    every prediction (int32 [models, images], -1 where there is none)."""
    models, n = preds.shape
    base = np.arange(n, dtype=np.int64) * classes
    present = preds >= 0
    size = n * classes
    if size <= 1 << 28:  # a dense slot per (image, class): no sort
        slot = np.zeros(size, np.int32)
        for m in range(models):
            slot[(base + preds[m])[present[m]]] = 1
        keys = np.flatnonzero(slot)
        slot[keys] = np.arange(keys.shape[0], dtype=np.int32)
        ids = np.full(preds.shape, -1, np.int32)
        for m in range(models):
            ids[m, present[m]] = slot[(base + preds[m])[present[m]]]
        return keys, ids
    flat = np.where(present, base[None, :] + preds, -1).ravel()
    keys = np.sort(flat[flat >= 0])
    keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))] if keys.size else keys
    ids = np.where(present.ravel(), np.searchsorted(keys, np.maximum(flat, 0)), -1).astype(np.int32)
    return keys, ids.reshape(preds.shape)


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
        # every distinct (image, class) pair decided once, by the engine's shared per-pair work
        classifier = ImageSetClassifier(taxonomy, corpus.batch, self.providers)
        decided = classifier.classify_many(corpus.pair_pred[None, :], corpus.pair_row)
        codes = decided.codes[taxonomy.primary_axis][0]
        self.pair_rule = codes.astype(np.int16) - 2
        self.pair_value = classifier.value_of_code[taxonomy.primary_axis][codes]
        skipped = classifier.primary(corpus.pair_pred, corpus.pair_row)
        del classifier, decided
        self.timings["classify_many"] = time.perf_counter() - start
        start = time.perf_counter()
        self.counts = self._counts()
        # per rule that can be 'not evaluated': each model's headline samples where it was not (the
        # study's ``not_evaluated.RULE``), and the category it decides
        pair_skipped = [skipped.rule_not_evaluated(r) for r in axis.unknowable]
        self.not_evaluated = {axis.rules[r].id: self._not_evaluated(mask)
                              for r, mask in zip(axis.unknowable, pair_skipped, strict=True)}
        self.rule_category = {rule.id: self.categories[rule.value] for rule in axis.rules}
        # each model's headline samples whose MLA count such a rule might change: its value is counted
        # otherwise than the one the pair got (the study's ``all.mla_not_evaluated``)
        unsure = np.zeros(len(self.pair_value), bool)
        unsure[levels_not_evaluated(axis, axis.mla_correct[None, :], self.pair_value.astype(np.int64),
                                    [np.flatnonzero(mask) for mask in pair_skipped])[0]] = True
        self.mla_not_evaluated = self._not_evaluated(unsure)
        self.timings["counts"] = time.perf_counter() - start
        self._lock = threading.Lock()
        self._study: pd.DataFrame | None = None
        self._cases: list[dict[str, Any]] | None = None

    def _counts(self) -> np.ndarray:
        """int64 [models, categories]: each model's predictions per category on the headline images:
        the errors from their (model, pair) lists, the hits per category of the target's pair."""
        c = self.corpus
        models = len(c.models)
        width = len(self.categories) + 2  # value + 1 (0: no value), and the last: not counted
        # per pair its column; pairs on problematic images the last one
        code = np.where(c.headline[c.pair_row], self.pair_value.astype(np.int64) + 1, width - 1)
        cells = c.error_model.astype(np.int64) * width + code[c.error_pair]
        counts = np.bincount(cells, minlength=models * width).reshape(models, width)
        rows = np.flatnonzero(c.headline & (c.target_pair >= 0))
        hit_code = code[c.target_pair[rows]]
        kinds, sizes = np.unique(hit_code, return_counts=True)
        if kinds.size:
            common = int(kinds[np.argmax(sizes)])
            rest = np.zeros(models, np.int64)
            for kind in kinds.tolist():
                if kind != common:
                    some = c.hit[:, rows[hit_code == kind]].sum(axis=1)
                    counts[:, kind] += some
                    rest += some
            counts[:, common] += c.top1_headline - rest
        return counts[:, 1:-1].astype(np.int64)

    def _not_evaluated(self, pair_skipped: np.ndarray) -> np.ndarray:
        """int64 [models]: each model's headline predictions whose pair is marked in ``pair_skipped``."""
        c = self.corpus
        marked = pair_skipped & c.headline[c.pair_row]
        counts = np.zeros(len(c.models), np.int64)
        if not marked.any():
            return counts
        counts += np.bincount(c.error_model[marked[c.error_pair]], minlength=len(c.models))
        rows = np.flatnonzero(c.headline & (c.target_pair >= 0))
        return counts + c.hit[:, rows[marked[c.target_pair[rows]]]].sum(axis=1)

    # ------------------------------------------------------------------ the model table

    def rows(self) -> list[dict[str, Any]]:
        """The model table from the counts (the numbers of the study's ``all.*`` columns)."""
        from errortaxa.study.stats import clopper_pearson  # scipy: imported when a table is asked

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
            unknown = self.unknown({rule: int(counts[m]) for rule, counts in self.not_evaluated.items()})
            unsure = int(self.mla_not_evaluated[m])
            out.append({
                "model": name, "samples": int(n[m]),
                "top1": _num(top1[m]), "top1_lo": _num(top_lo[m]), "top1_hi": _num(top_hi[m]),
                **mla_figures(unsure, mla=mla[m], mla_lo=mla_lo[m], mla_hi=mla_hi[m]),
                "shares": self.shares({cat: shares[m, j] for j, cat in enumerate(self.categories)}, unknown),
                "counts": {cat: int(self.counts[m, j]) for j, cat in enumerate(self.categories)},
                "not_evaluated": unknown,
            })
        return out

    def unknown(self, not_evaluated: Mapping[str, int]) -> dict[str, dict[str, int]]:
        """Of one model's not-evaluated samples per rule, those above zero, by the category each rule
        decides: those categories have no share (the count is a lower bound)."""
        out: dict[str, dict[str, int]] = {}
        for rule, samples in not_evaluated.items():
            if samples > 0:
                out.setdefault(self.rule_category[rule], {})[rule] = samples
        return out

    def shares(self, shares: Mapping[str, Any], unknown: Mapping[str, Any]) -> dict[str, float | None]:
        """Each category's share, None for the categories in ``unknown``."""
        return {cat: None if cat in unknown else _num(share) for cat, share in shares.items()}

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


def mla_figures(unsure: int, **figures: Any) -> dict[str, Any]:
    """A model's MLA figures as JSON numbers, all None where a rule not evaluated on ``unsure`` of its
    samples might change them; with ``mla_not_evaluated``: ``unsure``."""
    return {**{key: None if unsure else _num(x) for key, x in figures.items()}, "mla_not_evaluated": unsure}
