"""Errors set against per-image annotations (ImageNet-X's factors of variation): for each model and
error category, the share of its errors whose image carries each factor, next to that factor's
share among the study's annotated images, and their ratio (ImageNet-X's "error ratio", here split
by error category). The annotations come from a provider's annotation table, found through the
provider registry (:func:`errortaxa.engine.providers.annotations.annotation_table`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from errortaxa.engine.providers.annotations import AnnotationTable
from errortaxa.study.tabulate import StudyDecisions

ALL_ERRORS = "all_errors"
"""The ``category`` of the rows over every error, whatever its category."""


@dataclass(frozen=True)
class FactorShares:
    """``table`` (``factors.csv``), the annotated headline images and where the annotations come from."""

    table: pd.DataFrame
    provider: str
    images: int
    source: str


def factor_shares(decisions: StudyDecisions, annotations: AnnotationTable, images: Sequence[str],
                  models: Sequence[str], categories: Sequence[str]) -> FactorShares:
    """Per model, category (``ALL_ERRORS`` first, then each of ``categories``) and factor: the
    model's errors of the category on annotated headline images (``errors``), those whose image
    carries the factor (``errors_with_factor``), their ``share``, the factor's share among the
    annotated headline images (``base_share``) and ``ratio`` = share / base_share (NaN without
    errors or where no annotated image carries the factor)."""
    rows = annotations.rows_of([str(n).rsplit("/", 1)[-1] for n in images])
    columns = np.flatnonzero((rows >= 0) & decisions.headline)
    flags = annotations.values[rows[columns]].astype(np.float32)  # [A, F]
    base = flags.mean(axis=0) if columns.size else np.full(flags.shape[1], np.nan)
    values = decisions.values[:, columns]
    present = decisions.preds[:, columns] >= 0
    error = present & ~decisions.levels[0][values]
    kinds = [(ALL_ERRORS, error), *((c, error & (values == decisions.value_ids.index(c))) for c in categories)]
    parts = []
    n_models, n_factors = values.shape[0], flags.shape[1]
    for name, indicator in kinds:
        errors = indicator.sum(axis=1).astype(np.int64)  # [M]
        with_factor = np.rint(indicator.astype(np.float32) @ flags).astype(np.int64)  # [M, F]
        with np.errstate(invalid="ignore", divide="ignore"):
            share = with_factor / errors[:, None]
            ratio = np.where(base[None, :] > 0, share / base[None, :], np.nan)
        parts.append(pd.DataFrame({
            "model": np.repeat(np.asarray(models, object), n_factors), "category": name,
            "factor": np.tile(np.asarray(annotations.columns, object), n_models),
            "errors": np.repeat(errors, n_factors), "errors_with_factor": with_factor.ravel(),
            "share": share.ravel(), "base_share": np.tile(base.astype(np.float64), n_models),
            "ratio": ratio.ravel()}))
    return FactorShares(table=pd.concat(parts, ignore_index=True), provider=annotations.provider,
                        images=int(columns.size), source=annotations.source)


def pooled_ratios(table: pd.DataFrame) -> pd.DataFrame:
    """[category, factor] the ratio with every model's errors pooled: the share of all models'
    errors of the category that carry the factor, over the factor's base share."""
    sums = table.groupby(["category", "factor"], sort=False)[["errors", "errors_with_factor"]].sum()
    base = table.groupby(["category", "factor"], sort=False)["base_share"].first()
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = (sums["errors_with_factor"] / sums["errors"] / base).where(base > 0)
    return ratio.unstack("factor")
