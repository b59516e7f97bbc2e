"""Bootstrap intervals of a study's per-class means, and paired comparisons with a baseline model.

Multi-label accuracy and its minor / explainable variants are means over target classes of each
class' share of correct images: not one binomial proportion, so their 95% intervals come from a
seeded percentile bootstrap over images. Each resample draws, within every stratum of images with
the same target and the same membership of the bootstrapped groups (headline, organism, artifact),
as many images as it has, with replacement; every group then keeps its classes and their image
counts, and a model's statistic in a resample is linear in the resample's image weights. All models
share the same resamples (matrix products over all models at once), which also makes the
differences from a baseline model paired.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

RESAMPLES = 1000
BOOTSTRAP_GROUPS = ("all", "organism_by_label", "artifact_by_label")
CLASS_MEANS = ("mla", "mla_minor", "mla_explainable")
HEADLINE = ("top1", "mla_share", *CLASS_MEANS)
_CHUNK = 256  # models per matrix product


@dataclass(frozen=True)
class Bootstrap:
    """Per group and statistic, the 2.5% and 97.5% points of each model's bootstrap distribution
    (NaN for a model without a prediction on some image of the group); with a baseline, per headline
    statistic the percentiles of the paired differences and McNemar's p."""

    intervals: dict[str, tuple[np.ndarray, np.ndarray]]  # "group.stat" -> (lo[M], hi[M])
    baseline: dict[str, np.ndarray]  # "STAT_lo", "STAT_hi", "STAT_p" -> float[M]
    resamples: int
    seconds: float


def resample_weights(strata: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """float32[resamples, N]: how often each of N items is drawn when every stratum (``strata``:
    int[N]) is resampled with replacement to its own size."""
    order = np.argsort(strata, kind="stable")
    return sorted_weights(strata[order], resamples, seed)[:, np.argsort(order)]


def sorted_weights(strata: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """:func:`resample_weights` of items sorted by stratum (``strata`` non-decreasing)."""
    n = strata.shape[0]
    _, start, size = np.unique(strata, return_index=True, return_counts=True)
    first = np.repeat(start, size)  # per position: its stratum's first position and size
    width = np.repeat(size, size).astype(np.float32)
    rng = np.random.default_rng(seed)
    out = np.empty((resamples, n), np.float32)
    step = max(1, (1 << 22) // max(n, 1))
    for b0 in range(0, resamples, step):
        b1 = min(resamples, b0 + step)
        picks = first + (rng.random((b1 - b0, n), dtype=np.float32) * width).astype(np.int64)
        np.minimum(picks, first + np.repeat(size, size) - 1, out=picks)  # float rounding at the top end
        picks += (np.arange(b1 - b0, dtype=np.int64) * n)[:, None]
        out[b0:b1] = np.bincount(picks.ravel(), minlength=(b1 - b0) * n).reshape(b1 - b0, n)
    return out


def bootstrap(values: np.ndarray, levels: np.ndarray, predicted: np.ndarray, target: np.ndarray,
              masks: Mapping[str, np.ndarray], *, top1: np.ndarray | None = None, resamples: int = RESAMPLES,
              seed: int = 0, baseline: int | None = None, alpha: float = 0.05) -> Bootstrap:
    """Percentile intervals of the per-class means of the three correctness levels (MLA, minor,
    explainable: ``levels``, bool[3, V + 1], of each model's values, ``values``: int[M, N], -1 for
    none) in each group of ``masks`` (bool[N]; ``BOOTSTRAP_GROUPS``), and with ``baseline`` (a
    model's row) the paired differences of every model from it in the headline group's statistics
    (``HEADLINE``; ``top1``: bool[M, N], top-1 correct) with McNemar's p-value of the per-image
    correctness. ``predicted``: bool[M, N]."""
    import time

    start = time.perf_counter()
    lut = levels.astype(np.float32)
    groups = [g for g in BOOTSTRAP_GROUPS if g in masks]
    member = np.stack([masks[g] for g in groups])  # [G, N]
    rows = np.flatnonzero(member.any(axis=0))
    pattern = (np.left_shift(1, np.arange(len(groups)))[:, None] * member[:, rows]).sum(axis=0)
    num_classes = int(target.max()) + 1 if target.size else 1
    strata = pattern * num_classes + target[rows]
    order = np.argsort(strata, kind="stable")
    rows = rows[order]  # the images sorted by stratum: the weights need no reordering
    weights = sorted_weights(strata[order], resamples, seed)
    intervals: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    diffs: dict[str, np.ndarray] = {}
    q = [100 * alpha / 2, 100 * (1 - alpha / 2)]
    inside = member[:, rows]
    for g, (group, draws) in enumerate(zip(groups, _group_draws(values, lut, weights, rows, inside, target),
                                           strict=True)):
        cols = rows[inside[g]]
        draws[:, :, ~np.asarray(predicted[:, cols].all(axis=1))] = np.nan  # a model without a prediction here
        lo, hi = np.percentile(draws, q, axis=1)  # [3, M] each
        for k, stat in enumerate(CLASS_MEANS):
            intervals[f"{group}.{stat}"] = (lo[k], hi[k])
        if baseline is not None and group == "all":
            if top1 is None:
                raise ValueError("a baseline needs the top-1 correctness (top1)")
            correct = levels[:, values[:, cols]]  # [3, M, n]
            plain = np.stack([top1[:, cols], correct[0]]).astype(np.float32)  # top1, mla_share: image shares
            shares = _draws(plain, weights[:, inside[g]] / np.float32(cols.shape[0]))
            shares[:, :, ~np.asarray(predicted[:, cols].all(axis=1))] = np.nan
            all_draws = np.concatenate([shares, draws])  # [5, B, M] in HEADLINE order
            per_image = np.stack([top1[:, cols], correct[0], *correct])
            diffs = _paired(all_draws, per_image, predicted[:, cols], baseline, q)
    return Bootstrap(intervals=intervals, baseline=diffs, resamples=resamples,
                     seconds=time.perf_counter() - start)


def _group_draws(values: np.ndarray, lut: np.ndarray, weights: np.ndarray, rows: np.ndarray, inside: np.ndarray,
                 target: np.ndarray) -> list[np.ndarray]:
    """Per group (``inside``: bool[G, n] over ``rows``), float64[K, B, M]: each model's class mean of
    its correctness (``lut[:, values]``) in every resample. A group g within the first one takes an
    image of a class all of whose first-group images are in g (a "pure" class) with the first
    group's weight times C_first / C_g (C: the groups' classes), so the first group's product, taken
    in blocks of such images, also gives g's sum over them; only g's other images need a product of
    their own."""
    tgt = target[rows]
    size = int(target.max()) + 1 if target.size else 1
    counts = np.stack([np.bincount(tgt[member], minlength=size) for member in inside])  # [G, C]
    present = np.count_nonzero(counts, axis=1)
    scale = np.where(inside, 1.0 / (np.maximum(present, 1)[:, None] * np.maximum(counts[:, tgt], 1)), 0.0)
    scale = scale.astype(np.float32)  # the class mean as a weighted sum over images

    def product(sel: np.ndarray, g: int) -> np.ndarray:
        return _draws(values[:, rows[sel]], weights[:, sel] * scale[g, sel], lut)

    within = [bool(np.all(inside[0] | ~member)) for member in inside]
    block = np.zeros(tgt.shape[0], np.int64)  # the group whose pure class an image of the first group has
    for g in range(1, inside.shape[0]):
        if within[g]:
            pure = (counts[g] == counts[0]) & (counts[g] > 0)
            block[(block == 0) & pure[tgt] & inside[0]] = g
    parts = {int(b): product(inside[0] & (block == b), 0) for b in np.unique(block[inside[0]])}
    out = [sum(parts.values()) if parts else product(inside[0], 0)]
    for g in range(1, inside.shape[0]):
        if not within[g] or g not in parts:
            out.append(product(inside[g], g))
            continue
        rest = inside[g] & (block != g)
        out.append(parts[g] * (present[0] / present[g]) + (product(rest, g) if rest.any() else 0.0))
    return [np.asarray(d, np.float64) for d in out]


def _draws(x: np.ndarray, weights: np.ndarray, lut: np.ndarray | None = None) -> np.ndarray:
    """float64[K, B, M]: each model's weighted sum (``weights``: float32[B, n]) per resample of
    ``lut[:, x]`` (``x``: int[M, n] values; ``lut``: float32[K, V + 1]) or, without ``lut``, of
    ``x`` itself (float32[K, M, n])."""
    k = lut.shape[0] if lut is not None else x.shape[0]
    models = x.shape[0] if lut is not None else x.shape[1]
    out = np.empty((k, weights.shape[0], models), np.float64)
    for m0 in range(0, models, _CHUNK):
        m1 = min(models, m0 + _CHUNK)
        block = lut[:, x[m0:m1]] if lut is not None else x[:, m0:m1]  # [K, c, n] float32
        block = block.reshape(k * (m1 - m0), -1)
        out[:, :, m0:m1] = (weights @ block.T).reshape(weights.shape[0], k, m1 - m0).transpose(1, 0, 2)
    return out


def _paired(draws: np.ndarray, per_image: np.ndarray, predicted: np.ndarray, baseline: int,
            q: Sequence[float]) -> dict[str, np.ndarray]:
    """Differences of every model from ``baseline`` per headline statistic: the percentiles of the
    paired resampled differences, and McNemar's exact p of the per-image correctness on the images
    both predict."""
    out: dict[str, np.ndarray] = {}
    both = predicted & predicted[baseline]
    for k, stat in enumerate(HEADLINE):
        diff = draws[k] - draws[k][:, [baseline]]  # [B, M]
        lo, hi = np.percentile(diff, q, axis=0)
        out[f"{stat}_lo"], out[f"{stat}_hi"] = lo, hi
        x = per_image[k]
        only_model = np.count_nonzero(x & ~x[baseline] & both, axis=1)
        only_base = np.count_nonzero(~x & x[baseline] & both, axis=1)
        out[f"{stat}_p"] = mcnemar_p(only_model, only_base)
    return out


def mcnemar_p(only_a: np.ndarray, only_b: np.ndarray) -> np.ndarray:
    """Exact two-sided McNemar p-values (vectorised): a binomial test of the discordant pairs
    against 1/2, 1 without discordant pairs (as :func:`errortaxa.study.stats.mcnemar_exact`)."""
    a = np.asarray(only_a, np.int64)
    n = a + np.asarray(only_b, np.int64)
    p = 2 * stats.binom.cdf(np.minimum(a, n - a), n, 0.5)
    return np.where(n > 0, np.minimum(p, 1.0), 1.0)
