"""A study's per-model tables in the layout of the reference pipeline's published ones.

Peychev et al. 2023 publish ``stats-imagenet/non_problematic_stats_{all,organism,artifact,other}.csv``
(and ``stats-imagenet-a/``) in eth-sri/automated-error-analysis. :func:`reference_tables` builds
the same four tables from a study, so that both load side by side:

* rows: one per model, ``model_dir_id`` the prediction file's name, then the ``--metadata`` columns;
* groups: ``all`` (every non-problematic image), and organism / artifact / other, an image in every
  group one of its correct labels belongs to (they overlap);
* ``num_all_samples`` / ``num_group_samples``: images; ``num_group_correct``: the count of the value
  whose ``reference_column`` is ``num_group_correct`` (prediction = target); ``num_*_top1_errors``:
  prediction != target; the seven category counts from the values' ``reference_column`` keys, so
  that samples = correct + top-1 errors and top-1 errors = the seven counts;
* ``mla_*``: multi-label accuracy as the mean over target classes of the per-class accuracy, in
  percent, with minor (values tagged ``minor``) and explainable (also ``explainable``) errors
  counted correct;
* ``top1_val_acc`` (percent): on ImageNet, top-1 on all 50,000 validation images (with
  ``--val-labels``); on a built-in dataset (ImageNet-A, ImageNetV2), top-1 on its images; and
  ``top1_val_acc_subset_200`` on ImageNet-A (the prediction restricted to its 200 classes, from logits);
* with ``--image-list``: ``num_all_imagenet-m_samples``, ``num_group_imagenet-m_samples``,
  ``num_imagenet-m_errors`` (listed images of the group whose top-1 is not a correct label);
* a count whose rule was not evaluated on some image of the group (``num_OOV_clip`` without an
  OOV provider) is left empty, never 0; so is an ``mla_*`` figure that an unevaluated rule might
  change (``mla_*_minor_error`` and ``mla_*_explainable_error`` without an OOV provider, as its
  errors are minor).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from errortaxa.engine import CompiledTaxonomy
from errortaxa.engine.errors import FailedPrecondition
from errortaxa.engine.outputs import open_text
from errortaxa.study.study import StudyResult

PathLike = str | os.PathLike[str]
GROUPS = {"all": "all", "organism": "organism_by_label", "artifact": "artifact_by_label", "other": "other_by_label"}
"""The reference's table suffix -> the study's group."""
CORRECT_COLUMN = "num_group_correct"
COUNT_COLUMNS = ("num_collapsed_mappings", "num_ambiguous", "num_same_superclass", "num_common_co_occ",
                 "num_non_prototypical", "num_OOV_clip", "num_not_classified")
"""The reference's category counts (of top-1 errors), in its column order."""
MLA_COLUMNS = {"mla": "", "mla_minor": "_minor_error", "mla_explainable": "_explainable_error"}


class ReferenceTablesError(FailedPrecondition):
    """The taxonomy cannot fill the reference's tables (values without ``reference_column``)."""


def reference_columns(taxonomy: CompiledTaxonomy) -> dict[str, list[str]]:
    """Reference column -> the primary-axis value ids it counts. Every value not tagged
    ``problematic_only`` needs a ``reference_column`` of :data:`COUNT_COLUMNS` or ``num_group_correct``."""
    axis = taxonomy.axes[taxonomy.primary_axis]
    allowed = (CORRECT_COLUMN, *COUNT_COLUMNS)
    out: dict[str, list[str]] = {c: [] for c in allowed}
    missing = []
    for value in axis.values:
        column = value.reference_column
        if column is None:
            if "problematic_only" not in value.tags:
                missing.append(value.id)
            continue
        if column not in out:
            raise ReferenceTablesError(f"taxonomy '{taxonomy.name}': value '{value.id}' has reference_column "
                                       f"'{column}', not one of {', '.join(allowed)}")
        out[column].append(value.id)
    if missing:
        raise ReferenceTablesError(f"taxonomy '{taxonomy.name}' cannot fill the reference tables: values "
                                   f"{', '.join(missing)} of axis '{axis.name}' have no reference_column")
    return out


def reference_tables(result: StudyResult, taxonomy: CompiledTaxonomy) -> dict[str, pd.DataFrame]:
    """The four tables (``all``, ``organism``, ``artifact``, ``other``) of a study; see the module doc."""
    columns = reference_columns(taxonomy)
    t = result.table
    value_rules: dict[str, list[str]] = {}
    for rule, value in result.rule_values.items():
        value_rules.setdefault(value, []).append(rule)
    out: dict[str, pd.DataFrame] = {}
    for suffix, group in GROUPS.items():
        cols: dict[str, object] = {"model_dir_id": t["model"].astype(str)}
        for m in result.metadata_columns:
            cols[m] = t[m]
        if "top1_val" in t.columns:
            cols["top1_val_acc"] = 100.0 * t["top1_val"]
        elif result.dataset != "imagenet":
            cols["top1_val_acc"] = 100.0 * t["all.top1"]
        if "top1_subset" in t.columns:
            size = {"imagenet-a": 200}.get(result.dataset, 0)
            cols[f"top1_val_acc_subset_{size}" if size else "top1_val_acc_subset"] = 100.0 * t["top1_subset"]
        cols["num_all_samples"] = t["all.samples"]
        cols["num_group_samples"] = t[f"{group}.samples"]
        cols[CORRECT_COLUMN] = _count(t, group, columns[CORRECT_COLUMN], value_rules)
        cols["num_all_top1_errors"] = t["all.top1_errors"]
        cols["num_group_top1_errors"] = t[f"{group}.top1_errors"]
        for where in ("all", "group"):
            source = "all" if where == "all" else group
            for stat, tail in MLA_COLUMNS.items():
                figure = 100.0 * t[f"{source}.{stat}"]
                unsure = f"{source}.{stat}_not_evaluated"
                cols[f"mla_{where}{tail}"] = figure.mask(t[unsure] > 0) if unsure in t.columns else figure
        for column in COUNT_COLUMNS:
            cols[column] = _count(t, group, columns[column], value_rules)
        if "all.listed" in t.columns:
            cols["num_all_imagenet-m_samples"] = t["all.listed"]
            cols["num_group_imagenet-m_samples"] = t[f"{group}.listed"]
            cols["num_imagenet-m_errors"] = t[f"{group}.listed_errors"]
        out[suffix] = pd.DataFrame(cols)
    return out


def _count(t: pd.DataFrame, group: str, values: list[str], value_rules: dict[str, list[str]]) -> pd.Series:
    """The group's count of ``values`` per model, empty (<NA>) where a rule deciding one of them was
    not evaluated on some image of the group."""
    total = sum((t[f"{group}.n.{v}"].to_numpy(np.int64) for v in values), np.zeros(len(t), np.int64))
    unknown = np.zeros(len(t), bool)
    for v in values:
        for rule in value_rules.get(v, []):
            column = f"{group}.not_evaluated.{rule}"
            if column in t.columns:
                unknown |= t[column].to_numpy() > 0
    return pd.Series(pd.array(np.where(unknown, 0, total), dtype="Int64")).mask(unknown)


def write_reference_tables(result: StudyResult, taxonomy: CompiledTaxonomy, out_dir: PathLike) -> dict[str, str]:
    """``out_dir/reference/non_problematic_stats_{all,organism,artifact,other}.csv``; kind -> path."""
    tables = reference_tables(result, taxonomy)
    folder = Path(out_dir) / "reference"
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, str] = {}
    for suffix, frame in tables.items():
        path = folder / f"non_problematic_stats_{suffix}.csv"
        with open_text(path) as stream:
            frame.to_csv(stream, index=False)
        paths[f"reference_{suffix}"] = str(path)
    return paths
