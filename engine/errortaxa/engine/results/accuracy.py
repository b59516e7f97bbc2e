"""Accuracies as the reference studies define them, vectorised over samples and groups.

* **MLA** (multi-label accuracy, the TFDS ``imagenet2012_multilabel`` instructions and Peychev et
  al. 2023): per target class, the share of its images whose prediction counts as correct; then the
  mean over the target classes present. :func:`class_mean_accuracy`.
* **MLA share**: the plain share of images whose prediction counts as correct (what a Clopper-Pearson
  interval is about).
* Which decisions count as correct comes from value tags of the primary axis: ``mla_correct``
  (MLA); plus ``minor`` (MLA with minor errors as correct); plus ``explainable`` (MLA with
  explainable errors as correct). :func:`value_masks`.
* **Groups by any label** (the reference's organism / artifact / other): an image is in a group
  when *any* of its correct labels is a class of the group, so groups overlap. **Groups by target**
  (Shankar et al.'s dogs / other animals / objects): by the image's original target, a partition.
  :func:`group_masks`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from errortaxa.engine.knowledge.relations import ARTIFACT, DOG, ORGANISM, has_ancestor
from errortaxa.engine.knowledge.vocabulary import Vocabulary
from errortaxa.engine.knowledge.wordnet import WordNet
from errortaxa.engine.samples import SampleBatch

if TYPE_CHECKING:
    from errortaxa.engine.compile.compiler import CompiledAxis

LABEL_GROUPS = ("organism", "artifact", "other")
"""The reference's groups, by any correct label (overlapping)."""
TARGET_GROUPS = ("dogs", "other_animals", "objects")
"""Shankar et al.'s groups, by the original target (a partition)."""
MLA_LEVELS = {"mla": ("mla_correct",), "mla_minor": ("mla_correct", "minor"),
              "mla_explainable": ("mla_correct", "minor", "explainable")}
"""Each MLA variant and the value tags that count as correct in it."""


def value_masks(axis: CompiledAxis) -> dict[str, np.ndarray]:
    """Per MLA variant (:data:`MLA_LEVELS`), bool[len(values) + 1]: the values counted correct
    (indexed by a decision's value; the last entry, -1 = no value, is false)."""
    return {name: np.array([any(t in v.tags for t in tags) for v in axis.values] + [False])
            for name, tags in MLA_LEVELS.items()}


def levels_not_evaluated(axis: CompiledAxis, levels: np.ndarray, value: np.ndarray,
                         skipped: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Per MLA variant (``levels``: bool[L, V + 1], :func:`value_masks` stacked), the samples
    (sorted indices) whose count in it a rule not evaluated on them might change: that rule's value is
    counted otherwise than the value they got (``value``: int[N], -1 = none). ``skipped``: per rule
    of ``axis.unknowable``, the samples (sorted indices) it was not evaluated on."""
    parts: list[list[np.ndarray]] = [[] for _ in range(levels.shape[0])]
    for r, rows in zip(axis.unknowable, skipped, strict=True):
        if rows.size:
            got = value[rows]
            for part, level in zip(parts, levels, strict=True):
                differs = level != level[axis.rules[r].value]  # bool[V + 1]: the values counted otherwise
                if differs.any():
                    part.append(rows[differs[got]])
    empty = np.zeros(0, np.intp)
    return [np.unique(np.concatenate(part)) if len(part) > 1 else part[0] if part else empty for part in parts]


def class_sets(vocab: Vocabulary) -> dict[str, np.ndarray]:
    """Per group of both definitions, its classes (bool[C]). organism / artifact: the class has
    ``organism.n.01`` / ``artifact.n.01`` on a hypernym path; other: neither. dogs: ``dog.n.01``;
    other_animals: other organisms; objects: the rest."""
    wordnet = WordNet.load()
    org = np.array(has_ancestor(wordnet, vocab, ORGANISM), bool)
    art = np.array(has_ancestor(wordnet, vocab, ARTIFACT), bool)
    dog = np.array(has_ancestor(wordnet, vocab, DOG), bool)
    return {"organism": org, "artifact": art, "other": ~org & ~art,
            "dogs": dog, "other_animals": org & ~dog, "objects": ~org}


def any_label_in(batch: SampleBatch, classes: np.ndarray) -> np.ndarray:
    """bool[N]: some correct label of the sample is one of ``classes`` (bool[C])."""
    hits = np.bincount(batch.label_rows(), weights=classes[batch.label_values], minlength=len(batch))
    return hits > 0


def pred_in_labels(batch: SampleBatch, pred: np.ndarray | None = None) -> np.ndarray:
    """bool[N]: the prediction (``pred``, default the batch's) is one of the sample's labels."""
    p = batch.pred if pred is None else pred
    rows = batch.label_rows()
    hits = np.bincount(rows, weights=(batch.label_values == p[rows]), minlength=len(batch))
    return hits > 0


def group_masks(batch: SampleBatch, sets: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """``{"by_any_label": {organism, artifact, other}, "by_target": {dogs, other_animals, objects}}``,
    each a bool[N] mask over the batch's samples (see the module doc)."""
    return {"by_any_label": {g: any_label_in(batch, sets[g]) for g in LABEL_GROUPS},
            "by_target": {g: sets[g][batch.target] for g in TARGET_GROUPS}}


class GroupCells:
    """Samples split into cells of equal group membership and target, so that a model's sums per
    group, and per group and target class, are sums over cells: computed once per image set, then
    shared by every model (a study adds one model at a time).

    ``masks``: bool[G, N], the samples of G (possibly overlapping) groups, G at most 40;
    ``target``: int[N].
    """

    def __init__(self, masks: np.ndarray, target: np.ndarray, num_classes: int) -> None:
        m = np.atleast_2d(np.asarray(masks, bool))
        self.groups, self.num_classes = m.shape[0], num_classes
        if self.groups > 40:
            raise ValueError(f"{self.groups} groups: GroupCells takes at most 40")
        # one int64 per sample: its groups as bits, then its target
        pattern = np.left_shift(1, np.arange(self.groups, dtype=np.int64)) @ m.astype(np.int64)
        target = np.asarray(target, np.int64)
        _, first, cell = np.unique(pattern * num_classes + target, return_index=True, return_inverse=True)
        self.cell = cell.reshape(-1).astype(np.int64)  # int64[N]: the sample's cell
        self.size = first.shape[0]
        member = m[:, first]  # bool[G, Q]: the cell's samples are in group g
        self.member = member.astype(np.float64)
        g, q = np.nonzero(member)
        self.member_cell = q  # per (group, cell) membership: the cell, and group * C + class
        self.member_slot = g * num_classes + target[first][q]

    def count(self, cell: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """float[Q]: per cell, the samples of ``cell`` (a subset's cells), or the sum of ``weights``."""
        return np.bincount(cell, weights=weights, minlength=self.size).astype(np.float64, copy=False)

    def per_group(self, per_cell: np.ndarray) -> np.ndarray:
        """float[G, ...]: sums over each group's cells of ``per_cell`` (float[Q, ...])."""
        return self.member @ per_cell

    def class_means(self, hits: np.ndarray, images: np.ndarray) -> np.ndarray:
        """float[K, G]: per row of ``hits`` (float[K, Q], correct samples per cell) and group, the
        mean over the target classes present (``images``: float[Q], samples per cell) of the class'
        share of correct samples; NaN for a group without samples."""
        slots = self.groups * self.num_classes
        shape = (self.groups, self.num_classes)
        total = np.bincount(self.member_slot, weights=images[self.member_cell], minlength=slots).reshape(shape)
        present = total > 0
        classes = present.sum(axis=1)
        divisor = np.where(present, total, 1.0)
        out = np.empty((hits.shape[0], self.groups), np.float64)
        for k, row in enumerate(hits):  # a handful of definitions; each is one bincount
            correct = np.bincount(self.member_slot, weights=row[self.member_cell], minlength=slots).reshape(shape)
            with np.errstate(invalid="ignore"):
                out[k] = (correct / divisor).sum(axis=1) / classes
        out[:, classes == 0] = np.nan
        return out


def class_mean_accuracy(correct: np.ndarray, target: np.ndarray, masks: np.ndarray,
                        num_classes: int) -> np.ndarray:
    """Mean over target classes of the per-class share of correct samples.

    ``correct``: bool[K, N] (K correctness definitions) or bool[N]; ``masks``: bool[G, N] (the
    samples of G groups) or bool[N]. Returns float[K, G] (or the matching lower rank): per
    definition and group, the mean over the target classes that have at least one sample in the
    group of (correct samples of the class / samples of the class); NaN for an empty group. A
    fraction in [0, 1].
    """
    c = np.atleast_2d(np.asarray(correct, bool))
    cells = GroupCells(masks, target, num_classes)
    hits = np.stack([cells.count(cells.cell, row) for row in c])
    out = cells.class_means(hits, cells.count(cells.cell))
    if np.ndim(correct) == 1:
        out = out[0]
        return out if np.ndim(masks) > 1 else out[0]
    return out if np.ndim(masks) > 1 else out[:, 0]
