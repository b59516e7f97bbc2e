"""Classify many models on one fixed image set, sharing every per-(image, class) decision.

A decision depends only on the image (target, labels, flags) and the predicted class, so the
predictions of 1000 models on the same 20,000 images need each distinct (image, class) pair
decided once. The memo holds, per axis, an [images, classes] table of rule codes (rule + 2;
0 = not decided yet), witnesses and not-evaluated bit sets; later models only gather from it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from errortaxa.engine.compile.compiler import CompiledTaxonomy
from errortaxa.engine.features import FeatureProvider
from errortaxa.engine.results.decisions import AxisDecisions, Decisions, PrimaryOutcome, bitset_width, reason_remap
from errortaxa.engine.run.evaluate import evaluate
from errortaxa.engine.samples import SampleBatch


class ImageSetClassifier:
    """Decisions for predictions over ``images`` (a batch whose ``pred`` column is ignored)."""

    def __init__(self, taxonomy: CompiledTaxonomy, images: SampleBatch,
                 providers: Mapping[str, FeatureProvider] | None = None) -> None:
        images.validate(len(taxonomy.vocabulary))
        self.taxonomy = taxonomy
        self.images = images
        self.providers = providers or {}
        self.classes = len(taxonomy.vocabulary)
        shape = (len(images), self.classes)
        rules = max(len(ax.rules) for ax in taxonomy.axes.values())
        code_dtype = np.uint8 if rules + 2 <= 255 else np.uint16
        self.codes = {a: np.zeros(shape, code_dtype) for a in taxonomy.axes}  # rule + 2; 0 = not decided
        witness_dtype = np.int16 if self.classes < 2**15 - 1 else np.int32
        self.witnesses = {a: np.zeros(shape, witness_dtype) for a in taxonomy.axes}  # witness class + 1
        # the not-evaluated bit sets of AxisDecisions, one item of ceil(rules / 8) bytes per pair
        self.skipped = {a: np.zeros(shape, np.dtype((np.void, bitset_width(len(ax.rules)))))
                        for a, ax in taxonomy.axes.items()}
        # which class-pair test gave the witness (+ 1), for axes that track it
        self.sources = {a: np.zeros(shape, np.int16) for a, ax in taxonomy.axes.items() if ax.tracks_sources}
        self.reason_codes: dict[tuple[str, int], np.ndarray] = {}  # (axis, rule) -> reason code + 1
        self.evidence: dict[str, dict[int, Any]] = {a: {} for a in taxonomy.axes}
        self.reasons: list[str] = []
        # value index of a rule code (codes 0 and 1: none)
        self.value_of_code = {a: np.array([-1, -1] + [r.value for r in ax.rules], np.int16)
                              for a, ax in taxonomy.axes.items()}
        # rules before the first one that can be 'not evaluated' never leave skipped bits
        self.first_unknowable = {a: ax.unknowable[0] if ax.unknowable else len(ax.rules)
                                 for a, ax in taxonomy.axes.items()}
        self._reasons_lock = threading.Lock()

    def classify(self, pred: np.ndarray, rows: np.ndarray | None = None) -> Decisions:
        """Decisions for one model: ``pred[i]`` is its prediction on image ``rows[i]`` (default: all)."""
        rows, pred, flat = self._decided(pred, rows)
        in_order = rows.shape[0] == len(self.images) and bool((rows == np.arange(rows.shape[0])).all())
        batch = replace(self.images, pred=pred.astype(np.int32, copy=False)) if in_order \
            else self.images.take(rows, pred)
        axes = {}
        for name, ax in self.taxonomy.axes.items():
            rule = self.codes[name].ravel()[flat].astype(np.int16) - 2
            witness = self.witnesses[name].ravel()[flat].astype(np.int32) - 1
            late, skipped = self._skipped(name, flat, rule)
            sources = self.sources.get(name)
            source = sources.ravel()[flat] - 1 if sources is not None else None
            evidence = self.evidence[name]
            codes: dict[int, np.ndarray] = {}
            for (a, r), memo in self.reason_codes.items():
                if a == name:
                    codes[r] = np.full(flat.shape[0], -1, np.int16)
                    codes[r][late] = memo.ravel()[flat[late]] - 1
            axes[name] = AxisDecisions(
                axis=name, values=ax.value_ids, rules=ax.rule_ids, value=self.value_of_code[name][rule + 2],
                rule=rule, witness=witness, source=source, not_evaluated=skipped,
                evidence={i: evidence[k] for i, k in enumerate(flat.tolist()) if k in evidence} if evidence else {},
                reason_codes=codes,
            )
        return Decisions(self.taxonomy, batch, axes, self.reasons)

    def primary(self, pred: np.ndarray, rows: np.ndarray | None = None) -> PrimaryOutcome:
        """What a study counts of one model (arguments as :meth:`classify`): each prediction's
        primary-axis value and the rules not evaluated for it, without the rest of the decisions."""
        _, _, flat = self._decided(pred, rows)
        name = self.taxonomy.primary_axis
        rule = self.codes[name].ravel()[flat].astype(np.int16) - 2
        _, skipped = self._skipped(name, flat, rule)
        return PrimaryOutcome(value=self.value_of_code[name][rule + 2], not_evaluated=skipped)

    def _decided(self, pred: np.ndarray, rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The rows, the predictions and their flat memo indices, every pair decided."""
        rows = self._rows(rows)
        pred = np.asarray(pred)
        if pred.shape != rows.shape:
            raise ValueError(f"pred has {pred.shape[0]} entries for {rows.shape[0]} images")
        self._check_classes(pred, "pred")
        flat = rows * self.classes + pred.astype(np.int64)
        code = self.codes[self.taxonomy.primary_axis].ravel()[flat]
        if not code.all():
            self._fill_missing(flat[code == 0])
        return rows, pred, flat

    def _skipped(self, axis: str, flat: np.ndarray, rule: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The samples whose rule comes after the axis' first rule that can be 'not evaluated' (or
        none held), and every sample's not-evaluated bit set (uint8[n, bytes])."""
        table = self.skipped[axis]
        skipped = np.zeros(flat.shape[0], table.dtype)
        late = np.flatnonzero((rule > self.first_unknowable[axis]) | (rule < 0))
        skipped[late] = table.ravel()[flat[late]]
        return late, skipped.view(np.uint8).reshape(flat.shape[0], table.dtype.itemsize)

    def classify_many(self, preds: np.ndarray, rows: np.ndarray | None = None, *,
                      threads: int | None = None) -> ModelSetDecisions:
        """Category and rule of every prediction of many models: ``preds[m, i]`` is model m's
        prediction on image ``rows[i]`` (default: all images, in order).

        Models are taken in chunks by ``threads`` threads (default: one per core, at most 8): a
        chunk gathers its rule codes from the memo, decides the (image, class) pairs not seen
        before in one batch, and counts its values. Evidence, reasons and not-evaluated rules of a
        model come from :meth:`ModelSetDecisions.model`.
        """
        rows = self._rows(rows)
        preds = np.asarray(preds)
        if preds.ndim != 2 or preds.shape[1] != rows.shape[0]:
            raise ValueError(f"preds has shape {preds.shape}; expected [models, {rows.shape[0]}]")
        if not np.issubdtype(preds.dtype, np.integer):
            raise ValueError(f"preds must hold integer class ids, not {preds.dtype}")
        self._check_classes(preds, "preds")
        models = preds.shape[0]
        index_dtype = np.int32 if len(self.images) * self.classes < 2**31 else np.int64
        base = rows.astype(index_dtype) * self.classes
        primary = self.taxonomy.primary_axis
        code_out = {a: np.empty(preds.shape, t.dtype) for a, t in self.codes.items()}
        code_counts = {a: np.zeros((models, v.shape[0]), np.int64) for a, v in self.value_of_code.items()}

        def work(first: int, stop: int) -> None:
            flat = np.empty((stop - first, rows.shape[0]), index_dtype)
            np.add(base[None, :], preds[first:stop], out=flat, casting="unsafe")
            table = self.codes[primary].ravel()
            got = code_out[primary][first:stop]
            np.take(table, flat, out=got)
            missing = np.flatnonzero(got == 0)
            if missing.size:
                keys = flat.ravel()[missing]
                self._fill_missing(keys)
                got.ravel()[missing] = table[keys]
            for axis, codes in self.codes.items():
                if axis != primary:
                    np.take(codes.ravel(), flat, out=code_out[axis][first:stop])
                for m in range(first, stop):
                    code_counts[axis][m] = np.bincount(code_out[axis][m], minlength=code_counts[axis].shape[1])

        # chunks of 1, 2, 4, ... up to 32 models: the first ones decide most pairs, later ones few
        bounds = [0]
        while bounds[-1] < models:
            bounds.append(min(models, bounds[-1] + min(32, 1 << (len(bounds) - 1))))
        workers = max(1, min(threads or min(os.cpu_count() or 1, 8), len(bounds) - 1))
        with ThreadPoolExecutor(workers) as pool:
            for done in pool.map(work, bounds[:-1], bounds[1:]):
                del done
        counts = {}
        for axis, per_code in code_counts.items():
            by_code = self.value_of_code[axis]
            onehot = np.zeros((per_code.shape[1], len(self.taxonomy.axes[axis].values)), np.int64)
            decided = np.flatnonzero(by_code >= 0)
            onehot[decided, by_code[decided]] = 1
            counts[axis] = per_code @ onehot
        return ModelSetDecisions(self, preds, rows, code_out, counts)

    def _rows(self, rows: np.ndarray | None) -> np.ndarray:
        if rows is None:
            return np.arange(len(self.images), dtype=np.int64)
        rows = np.asarray(rows, np.int64)
        bad = np.flatnonzero((rows < 0) | (rows >= len(self.images)))
        if bad.size:
            raise ValueError(f"rows[{int(bad[0])}]: image row {int(rows[bad[0]])} is outside "
                             f"0..{len(self.images) - 1}")
        return rows

    def _check_classes(self, pred: np.ndarray, name: str) -> None:
        if pred.size and (pred.min() < 0 or pred.max() >= self.classes):
            where = tuple(int(k) for k in np.argwhere((pred < 0) | (pred >= self.classes))[0])
            at = ", ".join(map(str, where))
            raise ValueError(f"{name}[{at}]: class id {int(pred[where])} is outside 0..{self.classes - 1}")

    def _fill_missing(self, flat: np.ndarray) -> None:
        """Decide the (image, class) pairs at flat memo indices ``flat`` that are still undecided.

        Threads may decide the same pair twice (with the same result); a lock guards only the
        shared reason list and the creation of reason tables."""
        keys = np.sort(flat.astype(np.int64))  # sort-based unique: np.unique hashes, 4x slower here
        keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
        keys = keys[self.codes[self.taxonomy.primary_axis].ravel()[keys] == 0]
        if keys.size:
            self._fill(keys)

    def _fill(self, keys: np.ndarray) -> None:
        """Decide the (image, class) pairs ``keys`` and store them; rule codes are written last,
        so a reader that sees a code also sees its witness, skipped bits and reasons."""
        rows, classes = np.divmod(keys, self.classes)
        decided = evaluate(self.taxonomy, self.images.take(rows, classes), self.providers, validate=False)
        with self._reasons_lock:
            remap = reason_remap(self.reasons, decided.reasons)
            for name, ax in decided.axes.items():
                for r in ax.reason_codes:
                    if (name, r) not in self.reason_codes:
                        self.reason_codes[(name, r)] = np.zeros(self.codes[name].shape, np.int16)
        for name, ax in decided.axes.items():
            self.witnesses[name].ravel()[keys] = ax.witness + 1
            table = self.skipped[name]
            table.ravel()[keys] = np.ascontiguousarray(ax.not_evaluated).view(table.dtype).ravel()
            if ax.source is not None:
                self.sources[name].ravel()[keys] = ax.source + 1
            for r, codes in ax.reason_codes.items():
                self.reason_codes[(name, r)].ravel()[keys] = remap[codes] + 1
            for i, ev in ax.evidence.items():
                self.evidence[name][int(keys[i])] = ev
        for name, ax in decided.axes.items():
            self.codes[name].ravel()[keys] = ax.rule + 2


@dataclass
class ModelSetDecisions:
    """Per-axis results of :meth:`ImageSetClassifier.classify_many` for ``preds`` [models, n]."""

    classifier: ImageSetClassifier
    preds: np.ndarray
    rows: np.ndarray
    codes: dict[str, np.ndarray]  # axis -> rule + 2 per prediction [models, n]
    counts: dict[str, np.ndarray]  # axis -> int64 predictions per value [models, values]

    def values(self, axis: str | None = None) -> np.ndarray:
        """int16 [models, n] value index of each prediction (-1: no rule held)."""
        axis = axis or self.classifier.taxonomy.primary_axis
        return self.classifier.value_of_code[axis][self.codes[axis]]

    def rule(self, axis: str | None = None) -> np.ndarray:
        """int16 [models, n] index of the rule that decided each prediction (-1: none)."""
        return self.codes[axis or self.classifier.taxonomy.primary_axis].astype(np.int16) - 2

    def value_names(self, axis: str | None = None) -> np.ndarray:
        """The value id of every prediction as an object array [models, n] (None: no rule held)."""
        axis = axis or self.classifier.taxonomy.primary_axis
        names = np.array([*self.classifier.taxonomy.axes[axis].value_ids, None], dtype=object)
        return names[self.values(axis)]

    def model(self, m: int) -> Decisions:
        """Model m's full decisions (evidence, reasons, rules not evaluated), from the memo."""
        return self.classifier.classify(self.preds[m], self.rows)

