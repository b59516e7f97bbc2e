"""Summary statistics of a batch of decisions, as the reference reports them."""

from __future__ import annotations

from typing import Any

import numpy as np
from errortaxa.engine.compile.compiler import CompiledTaxonomy
from errortaxa.engine.results.accuracy import (
    class_mean_accuracy,
    class_sets,
    group_masks,
    levels_not_evaluated,
    value_masks,
)
from errortaxa.engine.results.decisions import Decisions
from errortaxa.engine.version import ENGINE_VERSION


def summarize(taxonomy: CompiledTaxonomy, decisions: Decisions, *, skipped: int = 0) -> dict[str, Any]:
    """Counts and shares per category, top-1 accuracy, multi-label accuracy (``mla``: the mean over
    target classes of the per-class accuracy, as the reference and TFDS define it; ``mla_share``:
    the plain share of images; ``mla_minor`` / ``mla_explainable``: MLA with the values tagged
    ``minor`` / ``minor`` and ``explainable`` counted correct), all as fractions, with
    ``STAT_not_evaluated`` beside each MLA figure where a rule can be not evaluated (samples it was
    not evaluated on whose count in the figure it might change), per group
    (``groups_by_any_label``: organism / artifact / other, an image in every group one of its labels
    is in, the reference's; ``groups_by_target``: dogs / other_animals / objects, Shankar et al.'s),
    for the non-problematic samples (the headline) and, apart, for the problematic ones; and the
    sample lists the taxonomy used, with their sources."""
    batch = decisions.batch
    primary = decisions.primary
    axis = taxonomy.axes[primary.axis]
    levels = value_masks(axis)
    correct = np.stack([mask[primary.value] for mask in levels.values()])  # [3, N]
    unsure = levels_not_evaluated(axis, np.stack(list(levels.values())), primary.value.astype(np.int64),
                                  [np.flatnonzero(primary.rule_not_evaluated(r)) for r in axis.unknowable])
    top1_correct = batch.pred == batch.target
    groups = group_masks(batch, class_sets(taxonomy.vocabulary))
    classes = len(taxonomy.vocabulary)

    def block(mask: np.ndarray, mla: np.ndarray) -> dict[str, Any]:
        n = int(mask.sum())
        counts = primary.counts(mask)
        out: dict[str, Any] = {
            "samples": n,
            "top1_accuracy": _share(int(top1_correct[mask].sum()), n),
            "mla_share": _share(int(correct[0][mask].sum()), n),
            **{name: None if not n else round(float(value), 6) for name, value in zip(levels, mla, strict=True)},
            **({f"{name}_not_evaluated": int(np.count_nonzero(mask[unsure[j]])) for j, name in enumerate(levels)}
               if axis.unknowable else {}),
            "categories": {k: {"count": v, "share": _share(v, n)} for k, v in counts.items()},
        }
        for name, ax in decisions.axes.items():
            if name != primary.axis:
                out[name] = {k: {"count": v, "share": _share(v, n)} for k, v in ax.counts(mask).items()}
        return out

    def with_groups(mask: np.ndarray) -> dict[str, Any]:
        named = {f"{kind}.{g}": mask & m for kind, members in groups.items() for g, m in members.items()}
        masks = np.stack([mask, *named.values()])
        mla = class_mean_accuracy(correct, batch.target, masks, classes)  # [3, 1 + groups]
        out = block(mask, mla[:, 0])
        for kind, members in groups.items():
            out[f"groups_{kind}"] = {g: block(named[f"{kind}.{g}"], mla[:, 1 + list(named).index(f"{kind}.{g}")])
                                     for g in members}
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
        "sample_lists": taxonomy.sample_list_info(),
        "headline": with_groups(~batch.problematic),
        "problematic": with_groups(batch.problematic),
        "not_evaluated": skipped_rules,
    }


def _share(k: int, n: int) -> float | None:
    return round(k / n, 6) if n else None
