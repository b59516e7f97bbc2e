"""Statistics of the reference studies: Clopper-Pearson intervals and the exact McNemar test."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats


def clopper_pearson(k: Any, n: Any, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Clopper-Pearson) ``1 - alpha`` interval of a binomial proportion k / n.

    Vectorised over ``k`` and ``n``; where ``n == 0`` both ends are NaN. The lower end is 0 when
    ``k == 0`` and the upper end 1 when ``k == n``.
    """
    k_arr = np.asarray(k, dtype=np.float64)
    n_arr = np.asarray(n, dtype=np.float64)
    if np.any(k_arr < 0) or np.any(k_arr > n_arr):
        raise ValueError("need 0 <= k <= n")
    with np.errstate(invalid="ignore", divide="ignore"):
        lo = np.where(k_arr > 0, stats.beta.ppf(alpha / 2, k_arr, n_arr - k_arr + 1), 0.0)
        hi = np.where(k_arr < n_arr, stats.beta.ppf(1 - alpha / 2, k_arr + 1, n_arr - k_arr), 1.0)
    empty = n_arr <= 0
    lo = np.where(empty, np.nan, lo)
    hi = np.where(empty, np.nan, hi)
    return np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)


@dataclass(frozen=True)
class McNemarResult:
    """Exact McNemar test of two classifiers' paired correctness on the same images."""

    samples: int
    both_correct: int
    only_a: int  # a correct, b wrong
    only_b: int  # b correct, a wrong
    both_wrong: int
    p_value: float
    accuracy_a: float
    accuracy_b: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def mcnemar_exact(correct_a: Any, correct_b: Any) -> McNemarResult:
    """Two-sided exact McNemar test: a binomial test of the discordant pairs against p = 1/2.

    ``correct_a`` / ``correct_b`` are bool arrays over the same images (e.g. multi-label
    correctness). With no discordant pair the p-value is 1.
    """
    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"need two 1-D arrays of the same length, got {a.shape} and {b.shape}")
    only_a = int(np.count_nonzero(a & ~b))
    only_b = int(np.count_nonzero(~a & b))
    discordant = only_a + only_b
    p = 1.0 if discordant == 0 else float(stats.binomtest(only_a, discordant, 0.5).pvalue)
    n = int(a.shape[0])
    return McNemarResult(
        samples=n, both_correct=int(np.count_nonzero(a & b)), only_a=only_a, only_b=only_b,
        both_wrong=int(np.count_nonzero(~a & ~b)), p_value=min(p, 1.0),
        accuracy_a=float(a.mean()) if n else float("nan"), accuracy_b=float(b.mean()) if n else float("nan"),
    )
