"""Error consistency of every pair of models (Geirhos et al. 2020, "Beyond accuracy: quantifying
trial-by-trial behaviour of CNNs and humans by measuring error consistency").

Two models agree on an image when both are right or both are wrong (whatever their predictions);
``observed`` is the share of the images both predict on which they agree, ``expected`` the share two
independent classifiers with their accuracies on those images would agree on
(``p_a p_b + (1 - p_a)(1 - p_b)``), and ``kappa = (observed - expected) / (1 - expected)`` (Cohen's
kappa). An error is a top-1 error on a headline (non-problematic) image. Per category C the same
kappa is taken over the indicators "this model makes an error of category C on this image".

All pairs come from matrix products over [models, images] indicator matrices: errors x errors
(both wrong) and, when some model lacks predictions, present x present (images both predict) and
errors x present (a model's errors on the images the other predicts).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from errortaxa.study.tabulate import StudyDecisions

_SPARSE = 0.02  # indicator matrices denser than this are multiplied as dense float32 matrices


@dataclass(frozen=True)
class Consistency:
    """Square [M, M] matrices of every pair (the diagonal: a model with itself), per measure."""

    images: np.ndarray  # int64: images both predict
    kappa: np.ndarray
    observed: np.ndarray
    expected: np.ndarray
    per_category: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]  # CAT -> (kappa, observed, expected)
    seconds: float

    def frame(self, models: Sequence[str]) -> pd.DataFrame:
        """One row per unordered pair (a before b in the study's order): ``model_a``, ``model_b``,
        ``images``, ``kappa``, ``observed``, ``expected`` and ``kappa.CAT`` / ``observed.CAT`` /
        ``expected.CAT`` per category."""
        a, b = np.triu_indices(len(models), 1)
        names = pd.Categorical.from_codes(np.arange(len(models)), categories=pd.Index(models))
        cols: dict[str, object] = {"model_a": names[a], "model_b": names[b], "images": self.images[a, b],
                                   "kappa": self.kappa[a, b], "observed": self.observed[a, b],
                                   "expected": self.expected[a, b]}
        for cat, (kappa, observed, expected) in self.per_category.items():
            cols[f"kappa.{cat}"] = kappa[a, b]
            cols[f"observed.{cat}"] = observed[a, b]
            cols[f"expected.{cat}"] = expected[a, b]
        return pd.DataFrame(cols)


def _gram(x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
    """float64 ``x @ y.T`` of bool matrices (counts, exact: float32 sums of 0/1 below 2**24 images
    are exact; sparse products where the indicators are rare)."""
    if x.shape[1] >= 1 << 24:
        raise ValueError("more than 2**24 images")
    other = x if y is None else y
    if x.size and max(x.mean(), other.mean()) < _SPARSE:
        from scipy import sparse

        def csr(a: np.ndarray) -> sparse.csr_matrix:
            rows, cols = np.nonzero(a)
            return sparse.csr_matrix((np.ones(rows.shape[0], np.float32), (rows, cols)), shape=a.shape)

        xs = csr(x)
        ys = xs if y is None else csr(y)
        return np.asarray((xs @ ys.T).toarray(), np.float64)
    xf = x.astype(np.float32)
    yf = xf if y is None else y.astype(np.float32)
    return (xf @ yf.T).astype(np.float64)


def kappa_of(indicator: np.ndarray, present: np.ndarray | None,
             shared: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """(images, kappa, observed, expected), each [M, M], of the indicators ``indicator`` (bool[M, N],
    false where not ``present``) over the images each pair predicts (``present``: bool[M, N], None:
    every model predicts every image; ``shared``: those images' counts, if known)."""
    both = _gram(indicator)  # both have the indicator
    if present is None:
        n = np.full(both.shape, float(indicator.shape[1]))
        own = indicator.sum(axis=1, dtype=np.float64)
        mine = np.broadcast_to(own[:, None], both.shape)  # a's indicators on the images b predicts
    else:
        n = _gram(present) if shared is None else shared.astype(np.float64)
        mine = _gram(indicator, present)
    theirs = mine.T
    with np.errstate(invalid="ignore", divide="ignore"):
        neither = n - mine - theirs + both
        observed = (both + neither) / n
        p_a, p_b = mine / n, theirs / n
        expected = p_a * p_b + (1 - p_a) * (1 - p_b)
        kappa = np.where(expected < 1, (observed - expected) / (1 - expected), np.nan)
    return n.astype(np.int64), kappa, observed, expected


def error_consistency(errors: np.ndarray, present: np.ndarray, values: np.ndarray | None = None,
                      categories: Mapping[str, int] | None = None) -> Consistency:
    """Kappa of every pair of models over their top-1 ``errors`` (bool[M, N]) on the images they
    predict (``present``: bool[M, N], the headline images with a prediction) and, per category of
    ``categories`` (CAT -> its value), over the indicators ``values == value`` (``values``: int[M, N])."""
    start = time.perf_counter()
    columns = np.flatnonzero(present.any(axis=0))  # images some model predicts
    present = present[:, columns]
    mask = None if present.all() else present
    images, kappa, observed, expected = kappa_of(errors[:, columns] & present, mask)
    per_category: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for cat, value in (categories or {}).items():
        assert values is not None
        _, *measures = kappa_of((values[:, columns] == value) & present, mask, images)
        per_category[cat] = (measures[0], measures[1], measures[2])
    return Consistency(images=images, kappa=kappa, observed=observed, expected=expected,
                       per_category=per_category, seconds=time.perf_counter() - start)


def study_consistency(decisions: StudyDecisions, categories: Sequence[str]) -> Consistency:
    """The error consistency of a study's models, overall and per category of ``categories``."""
    return error_consistency(decisions.top1_errors, decisions.present, decisions.values,
                             {cat: decisions.value_ids.index(cat) for cat in categories})


def cluster_order(kappa: np.ndarray) -> np.ndarray:
    """The models in the leaf order of an average-linkage clustering on ``1 - kappa`` (NaN as no
    consistency)."""
    m = kappa.shape[0]
    if m < 3:
        return np.arange(m)
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import squareform

    distance = 1 - np.nan_to_num(kappa, nan=0.0)
    distance = (distance + distance.T) / 2
    np.fill_diagonal(distance, 0.0)
    return np.asarray(leaves_list(linkage(squareform(np.clip(distance, 0, None), checks=False), "average")))
