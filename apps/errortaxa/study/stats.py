"""Statistics of the reference studies: Clopper-Pearson intervals and the exact McNemar test."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats


def clopper_pearson(k: Any, n: Any, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Clopper-Pearson) ``1 - alpha`` interval of a binomial proportion k / n.

    Vectorised over ``k`` and ``n`` (each distinct (k, n) pair is computed once); where ``n == 0``
    both ends are NaN. The lower end is 0 when ``k == 0`` and the upper end 1 when ``k == n``.
    """
    k_arr, n_arr = np.broadcast_arrays(np.asarray(k, dtype=np.float64), np.asarray(n, dtype=np.float64))
    if np.any(k_arr < 0) or np.any(k_arr > n_arr):
        raise ValueError("need 0 <= k <= n")
    kf, nf = k_arr.ravel(), n_arr.ravel()
    whole = kf.size and np.all(np.mod(nf, 1) == 0) and np.all(np.mod(kf, 1) == 0) and nf.max() < 2**31
    if whole:  # counts: one int64 key per pair is quicker to sort than pairs of floats
        key, inverse = np.unique(nf.astype(np.int64) << 32 | kf.astype(np.int64), return_inverse=True)
        ku, nu = (key & 0xFFFFFFFF).astype(np.float64), (key >> 32).astype(np.float64)
    else:
        pairs, inverse = np.unique(np.stack([kf, nf]), axis=1, return_inverse=True)
        ku, nu = pairs
    with np.errstate(invalid="ignore", divide="ignore"):
        lo = np.where(ku > 0, stats.beta.ppf(alpha / 2, ku, nu - ku + 1), 0.0)
        hi = np.where(ku < nu, stats.beta.ppf(1 - alpha / 2, ku + 1, nu - ku), 1.0)
    empty = nu <= 0
    lo = np.where(empty, np.nan, lo)[inverse.ravel()].reshape(k_arr.shape)
    hi = np.where(empty, np.nan, hi)[inverse.ravel()].reshape(k_arr.shape)
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


TREND_AT = (0.80, 0.90, 0.95, 0.98)
"""The accuracies at which a trend's predicted share is reported."""


def linear_trend(x: Any, y: Any, at: Any = TREND_AT, alpha: float = 0.05) -> dict[str, float]:
    """Least-squares line ``y = intercept + slope * x`` over the finite points, with the ``1 - alpha``
    t-interval of its slope and, at each accuracy of ``at``, the predicted value and the t-interval
    of the line's mean there: ``models``, ``slope``, ``slope_lo``, ``slope_hi``, ``intercept``,
    ``at_X``, ``at_X_lo``, ``at_X_hi`` (X as ``0.80``). NaN where fewer than 3 points or no spread."""
    xa, ya = np.asarray(x, np.float64), np.asarray(y, np.float64)
    ok = np.isfinite(xa) & np.isfinite(ya)
    xa, ya = xa[ok], ya[ok]
    n = int(xa.shape[0])
    out: dict[str, float] = {"models": float(n)}
    points = np.asarray(at, np.float64)
    if n < 3 or np.ptp(xa) == 0:
        out.update({k: np.nan for k in ("slope", "slope_lo", "slope_hi", "intercept")})
        for a in points:
            out.update({f"at_{a:.2f}": np.nan, f"at_{a:.2f}_lo": np.nan, f"at_{a:.2f}_hi": np.nan})
        return out
    mean_x = xa.mean()
    sxx = float(((xa - mean_x) ** 2).sum())
    slope = float(((xa - mean_x) * (ya - ya.mean())).sum() / sxx)
    intercept = float(ya.mean() - slope * mean_x)
    residual = ya - (intercept + slope * xa)
    s2 = float((residual**2).sum() / (n - 2))
    t = float(stats.t.ppf(1 - alpha / 2, n - 2))
    se = np.sqrt(s2 / sxx)
    out.update({"slope": slope, "slope_lo": slope - t * se, "slope_hi": slope + t * se, "intercept": intercept})
    for a in points:
        fit = intercept + slope * a
        half = t * np.sqrt(s2 * (1 / n + (a - mean_x) ** 2 / sxx))
        out.update({f"at_{a:.2f}": fit, f"at_{a:.2f}_lo": fit - half, f"at_{a:.2f}_hi": fit + half})
    return out
