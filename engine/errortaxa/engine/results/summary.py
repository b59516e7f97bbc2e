"""Summary statistics of a batch of decisions, as the reference reports them."""

from __future__ import annotations

from typing import Any

import numpy as np
from errortaxa.engine.compile.compiler import ENGINE_VERSION, CompiledTaxonomy
from errortaxa.engine.knowledge.relations import group_of, shankar_group_of
from errortaxa.engine.knowledge.vocabulary import Vocabulary
from errortaxa.engine.knowledge.wordnet import WordNet
from errortaxa.engine.results.decisions import Decisions


def summarize(taxonomy: CompiledTaxonomy, decisions: Decisions, *, skipped: int = 0) -> dict[str, Any]:
    """Counts and shares per category, top-1 and multi-label accuracy, per group (organism /
    artifact / other and dogs / other animals / objects, by target), for the non-problematic
    samples (the headline) and, apart, for the problematic ones."""
    batch = decisions.batch
    primary = decisions.primary
    axis = taxonomy.axes[primary.axis]
    mla_correct = axis.mla_correct[primary.value]
    top1_correct = batch.pred == batch.target
    groups = class_groups(taxonomy.vocabulary)
    problematic = batch.problematic

    def block(mask: np.ndarray) -> dict[str, Any]:
        n = int(mask.sum())
        counts = primary.counts(mask)
        out: dict[str, Any] = {
            "samples": n,
            "top1_accuracy": _share(int(top1_correct[mask].sum()), n),
            "multi_label_accuracy": _share(int(mla_correct[mask].sum()), n),
            "categories": {k: {"count": v, "share": _share(v, n)} for k, v in counts.items()},
        }
        for name, ax in decisions.axes.items():
            if name != primary.axis:
                out[name] = {k: {"count": v, "share": _share(v, n)} for k, v in ax.counts(mask).items()}
        return out

    def with_groups(mask: np.ndarray) -> dict[str, Any]:
        out = block(mask)
        out["groups"] = {name: block(mask & members[batch.target]) for name, members in groups.items()}
        return out

    skipped_rules: dict[str, int] = {}
    for name, ax in decisions.axes.items():
        for rule, count in zip(ax.rules, ax.not_evaluated_counts().tolist(), strict=True):
            if count:
                skipped_rules[f"{name}.{rule}" if name != primary.axis else rule] = count
    return {
        "taxonomy": {"name": taxonomy.name, "version": taxonomy.version, "content_hash": taxonomy.content_hash},
        "engine_version": ENGINE_VERSION,
        "samples": len(batch),
        "skipped_without_labels": skipped,
        "headline": with_groups(~problematic),
        "problematic": with_groups(problematic),
        "not_evaluated": skipped_rules,
    }


def class_groups(vocab: Vocabulary) -> dict[str, np.ndarray]:
    """Per breakdown group, which classes belong to it (bool[C]): organism / artifact / other
    (the reference's) and dogs / other_animals / objects (Shankar et al.'s)."""
    wordnet = WordNet.load()
    out: dict[str, np.ndarray] = {}
    for labels in (group_of(wordnet, vocab), shankar_group_of(wordnet, vocab)):
        column = np.array(labels)
        for name in dict.fromkeys(labels):
            out[name] = column == name
    return out


def _share(k: int, n: int) -> float | None:
    return round(k / n, 6) if n else None

