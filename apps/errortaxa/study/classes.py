"""Per-class and per-superclass breakdowns of a study: for every model and target class (and
superclass of the taxonomy), the headline images, the share counted correct by multi-label accuracy
with its Clopper-Pearson interval, and the count of every category; and each model's worst classes.

With about 19 images per class, one class' share is noisy: the worst-k list keeps classes with at
least ``min_images`` images and ranks them by the upper end of their interval (lowest first), so a
class makes the list only when even its optimistic accuracy is low.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from errortaxa.engine import CompiledTaxonomy
from errortaxa.study.stats import clopper_pearson
from errortaxa.study.tabulate import StudyDecisions

WORST_K = 5
MIN_IMAGES = 10


@dataclass(frozen=True)
class ClassBreakdown:
    """``classes`` (one row per model and class with images), ``worst`` (each model's worst
    classes) and ``superclasses`` (one row per model and superclass with images)."""

    classes: pd.DataFrame
    worst: pd.DataFrame
    superclasses: pd.DataFrame
    worst_k: int
    min_images: int


def class_breakdown(decisions: StudyDecisions, taxonomy: CompiledTaxonomy, models: Sequence[str],
                    worst_k: int = WORST_K, min_images: int = MIN_IMAGES) -> ClassBreakdown:
    """The per-class and per-superclass tables of a study's decisions (headline images with a
    prediction; ``models`` in the decisions' order)."""
    classes = len(taxonomy.vocabulary)
    v1 = len(decisions.value_ids) + 1
    columns = np.flatnonzero(decisions.headline)
    values = decisions.values[:, columns].astype(np.int64)
    present = decisions.preds[:, columns] >= 0
    target = decisions.target[columns].astype(np.int64)
    m_count = values.shape[0]
    key = (np.arange(m_count, dtype=np.int64)[:, None] * classes + target[None, :]) * v1 + values + 1
    counts = np.bincount(key[present], minlength=m_count * classes * v1).reshape(m_count, classes, v1)[:, :, 1:]
    mla_value = decisions.levels[0][:-1]
    images = counts.sum(axis=2)  # [M, C]
    correct = counts[:, :, mla_value].sum(axis=2)
    model_index, class_index = np.nonzero(images)
    n, k = images[model_index, class_index], correct[model_index, class_index]
    lo, hi = clopper_pearson(k, n)
    vocab = taxonomy.vocabulary
    table = pd.DataFrame({
        "model": pd.Categorical.from_codes(model_index, categories=pd.Index(models)),
        "class": class_index, "wnid": np.asarray(vocab.wnids, object)[class_index],
        "name": np.asarray(vocab.names, object)[class_index], "images": n, "mla": k / n, "mla_lo": lo, "mla_hi": hi,
        **{f"n.{v}": counts[model_index, class_index, j] for j, v in enumerate(decisions.value_ids)},
    })
    eligible = table[table["images"] >= min_images].sort_values(["model", "mla_hi", "mla", "class"])
    worst = eligible.groupby("model", observed=True, sort=False).head(worst_k).copy()
    worst.insert(1, "rank", worst.groupby("model", observed=True).cumcount() + 1)
    worst = worst[["model", "rank", "class", "wnid", "name", "images", "mla", "mla_lo", "mla_hi"]]
    return ClassBreakdown(classes=table, worst=worst.reset_index(drop=True),
                          superclasses=_superclasses(counts, images, correct, taxonomy, models, decisions.value_ids),
                          worst_k=worst_k, min_images=min_images)


def _superclasses(counts: np.ndarray, images: np.ndarray, correct: np.ndarray, taxonomy: CompiledTaxonomy,
                  models: Sequence[str], value_ids: Sequence[str]) -> pd.DataFrame:
    """Per model and superclass (a class may be in several): its classes with images, images, the
    mean over those classes of their MLA share (``mla``), the share of its images counted correct
    (``mla_share`` with its interval) and the count of every category."""
    member = taxonomy.membership.astype(np.float64)  # [C, S]
    if not member.shape[1]:
        return pd.DataFrame(columns=["model", "superclass", "classes", "images", "mla", "mla_share",
                                     "mla_share_lo", "mla_share_hi"])
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(images > 0, correct / np.maximum(images, 1), 0.0)
    has = (images > 0).astype(np.float64)
    classes = has @ member  # [M, S]
    mean = (per_class @ member) / np.where(classes > 0, classes, 1)
    n = images.astype(np.float64) @ member
    k = correct.astype(np.float64) @ member
    per_value = np.einsum("mcv,cs->msv", counts.astype(np.float64), member)
    model_index, super_index = np.nonzero(n)
    nn, kk = n[model_index, super_index], k[model_index, super_index]
    lo, hi = clopper_pearson(kk, nn)
    return pd.DataFrame({
        "model": pd.Categorical.from_codes(model_index, categories=pd.Index(models)),
        "superclass": np.asarray(taxonomy.superclass_names, object)[super_index],
        "classes": classes[model_index, super_index].astype(np.int64), "images": nn.astype(np.int64),
        "mla": mean[model_index, super_index], "mla_share": kk / nn, "mla_share_lo": lo, "mla_share_hi": hi,
        **{f"n.{v}": per_value[model_index, super_index, j].astype(np.int64) for j, v in enumerate(value_ids)},
    })
