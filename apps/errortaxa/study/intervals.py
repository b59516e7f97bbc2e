"""Bootstrap intervals of a study's per-class means, and paired comparisons with a baseline model.

Multi-label accuracy and its minor / explainable variants are means over target classes of each
class' share of correct images: not one binomial proportion, so their 95% intervals come from a
seeded percentile bootstrap over images. Each resample draws, within every stratum of images with
the same target and the same membership of the bootstrapped groups (headline, organism, artifact),
as many images as it has, with replacement; every group then keeps its classes and their image
counts, and a model's statistic in a resample is linear in the resample's image weights. All models
share the same resamples (matrix products over chunks of models), which also makes the
differences from a baseline model paired. A study hands the models over in chunks as it decides
them (:class:`Resampling`), so that the products run on another core meanwhile.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from scipy import stats

RESAMPLES = 1000
BOOTSTRAP_GROUPS = ("all", "organism_by_label", "artifact_by_label")
CLASS_MEANS = ("mla", "mla_minor", "mla_explainable")
HEADLINE = ("top1", "mla_share", *CLASS_MEANS)
_CHUNK = 256  # models per matrix product
_FEW_COLUMNS = 0.7  # a level's difference from the one before: a product of its columns below this share
_T = TypeVar("_T")


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
    correctness. ``predicted``: bool[M, N]. All models at once; :class:`Resampling` takes them in
    chunks."""
    with Resampling(levels, target, masks, resamples=resamples, seed=seed, paired=baseline is not None,
                    alpha=alpha) as run:
        run.add(values, predicted, top1)
        return run.result(baseline)


class Resampling:
    """A bootstrap of models that arrive in chunks (:func:`bootstrap` of all of them): the resamples
    are drawn once, and each chunk's products and percentiles run in one background thread while the
    caller decides the next models. ``paired``: keep the headline group's draws for the differences
    from a baseline (``add`` then needs ``top1``). Close it (``with``) to stop the thread."""

    def __init__(self, levels: np.ndarray, target: np.ndarray, masks: Mapping[str, np.ndarray], *,
                 resamples: int = RESAMPLES, seed: int = 0, paired: bool = False, alpha: float = 0.05) -> None:
        self.resamples = resamples
        self.paired = paired
        self.groups = [g for g in BOOTSTRAP_GROUPS if g in masks]
        if paired and self.groups[:1] != ["all"]:
            raise ValueError("a paired bootstrap compares in the headline group: masks need 'all'")
        self._lut = levels.astype(np.float32)
        self._levels = levels
        self._q = [100 * alpha / 2, 100 * (1 - alpha / 2)]
        member = np.stack([masks[g] for g in self.groups])  # [G, N]
        rows = np.flatnonzero(member.any(axis=0))
        pattern = (np.left_shift(1, np.arange(len(self.groups)))[:, None] * member[:, rows]).sum(axis=0)
        num_classes = int(target.max()) + 1 if target.size else 1
        strata = pattern * num_classes + target[rows]
        order = np.argsort(strata, kind="stable")
        self._rows = rows[order]  # the images sorted by stratum: the weights need no reordering
        self._inside = member[:, self._rows]  # [G, n]
        self._plan = _Plan.of(target[self._rows], self._inside)
        self._busy = 0.0  # seconds the background thread has computed
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bootstrap")
        self._weights = self._pool.submit(self._timed, self._weigh, strata[order], resamples, seed)
        self._chunks: list[Future[_Chunk]] = []

    def __enter__(self) -> Resampling:
        return self

    def __exit__(self, *_: object) -> None:
        self._pool.shutdown(cancel_futures=True)

    def add(self, values: np.ndarray, predicted: np.ndarray, top1: np.ndarray | None = None) -> None:
        """Queue a chunk of models (``values``: int[c, N]; ``predicted``, ``top1``: bool[c, N])."""
        if self.paired and top1 is None:
            raise ValueError("a paired bootstrap needs the top-1 correctness (top1)")
        self._chunks.append(self._pool.submit(self._timed, self._chunk, values, predicted, top1))

    @contextmanager
    def sharing_cores(self) -> Iterator[None]:
        """While this thread decides models: BLAS takes one core fewer, the one this thread uses."""
        from threadpoolctl import threadpool_limits

        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        with threadpool_limits(limits=max(1, cores - 1), user_api="blas"):
            yield

    def result(self, baseline: int | None = None) -> Bootstrap:
        """The intervals of every model added (in order); with ``baseline`` (a model's row, on a
        ``paired`` run) the paired differences from it and McNemar's p."""
        chunks = [f.result() for f in self._chunks]
        self._pool.shutdown()
        keys = [f"{g}.{stat}" for g in self.groups for stat in CLASS_MEANS]
        intervals = {key: (np.concatenate([c.lo[key] for c in chunks]) if chunks else np.zeros(0),
                           np.concatenate([c.hi[key] for c in chunks]) if chunks else np.zeros(0))
                     for key in keys}
        diffs: dict[str, np.ndarray] = {}
        if baseline is not None:
            if not self.paired:
                raise ValueError("differences from a baseline need a paired run (paired=True)")
            draws = np.concatenate([c.draws for c in chunks if c.draws is not None], axis=1)
            diffs = _paired(draws, np.concatenate([c.per_image for c in chunks if c.per_image is not None], axis=1),
                            np.concatenate([c.predicted for c in chunks if c.predicted is not None]),
                            baseline, self._q)
        return Bootstrap(intervals=intervals, baseline=diffs, resamples=self.resamples, seconds=self._busy)

    def _timed(self, work: Callable[..., _T], *args: Any) -> _T:
        start = time.perf_counter()
        try:
            return work(*args)
        finally:
            self._busy += time.perf_counter() - start

    def _weigh(self, strata: np.ndarray, resamples: int, seed: int) -> tuple[list[np.ndarray], np.ndarray | None]:
        """The plan's weighed products and, on a paired run, the headline group's image-share weights."""
        weights = np.ascontiguousarray(sorted_weights(strata, resamples, seed).T)  # [n, B]: an image's row
        shares = weights[self._inside[0]] / np.float32(np.count_nonzero(self._inside[0])) if self.paired else None
        return self._plan.weigh(weights), shares

    def _chunk(self, values: np.ndarray, predicted: np.ndarray, top1: np.ndarray | None) -> _Chunk:
        weighed, share_weights = self._weights.result()
        rows, inside = self._rows, self._inside
        out = _Chunk(lo={}, hi={})
        for g, (group, draws) in enumerate(zip(self.groups, self._plan.draws(values[:, rows], self._lut, weighed),
                                               strict=True)):
            cols = rows[inside[g]]
            missing = ~np.asarray(predicted[:, cols].all(axis=1))
            draws[:, missing] = np.nan  # a model without a prediction here
            lo, hi = np.percentile(draws, self._q, axis=2)  # [3, c] each
            for k, stat in enumerate(CLASS_MEANS):
                out.lo[f"{group}.{stat}"], out.hi[f"{group}.{stat}"] = lo[k], hi[k]
            if share_weights is not None and g == 0 and top1 is not None:
                correct = self._levels[:, values[:, cols]]  # [3, c, n]
                plain = np.stack([top1[:, cols], correct[0]]).astype(np.float32)  # top1, mla_share: image shares
                shares = _draws(plain, share_weights)
                shares[:, missing] = np.nan
                out.draws = np.concatenate([shares, draws])  # [5, c, B] in HEADLINE order
                out.per_image = np.stack([top1[:, cols], correct[0], *correct])
                out.predicted = predicted[:, cols]
        return out


@dataclass
class _Chunk:
    """A chunk of models' percentiles ("group.stat" -> [c]) and, on a paired run, the headline
    group's draws with the per-image correctness the McNemar tests count."""

    lo: dict[str, np.ndarray]
    hi: dict[str, np.ndarray]
    draws: np.ndarray | None = None  # float64[5, c, B]
    per_image: np.ndarray | None = None  # bool[5, c, n]
    predicted: np.ndarray | None = None  # bool[c, n]


@dataclass(frozen=True)
class _Plan:
    """How the groups' class means are products of the resample weights (over the images sorted by
    stratum) with the models' correctness: each group's draws are a weighted sum of ``products``
    (images, and the group whose class-mean factors weigh them). A group g within the first one takes
    an image of a class all of whose first-group images are in g (a "pure" class) with the first
    group's weight times C_first / C_g (C: the groups' classes), so the first group's product, taken
    in blocks of such images, also gives g's sum over them; only g's other images need a product of
    their own."""

    products: list[tuple[np.ndarray, int]]  # (positions among the sorted images, group of the factors)
    sums: list[list[tuple[int, float]]]  # per group: (product, multiplier) whose sum are its draws
    scale: np.ndarray  # float32[G, n]: an image's factor in its group's class mean

    @classmethod
    def of(cls, target: np.ndarray, inside: np.ndarray) -> _Plan:
        size = int(target.max()) + 1 if target.size else 1
        counts = np.stack([np.bincount(target[member], minlength=size) for member in inside])  # [G, C]
        present = np.count_nonzero(counts, axis=1)
        scale = np.where(inside, 1.0 / (np.maximum(present, 1)[:, None] * np.maximum(counts[:, target], 1)), 0.0)
        within = [bool(np.all(inside[0] | ~member)) for member in inside]
        block = np.zeros(target.shape[0], np.int64)  # the group whose pure class an image of the first group has
        for g in range(1, inside.shape[0]):
            if within[g]:
                pure = (counts[g] == counts[0]) & (counts[g] > 0)
                block[(block == 0) & pure[target] & inside[0]] = g
        products: list[tuple[np.ndarray, int]] = []

        def product(sel: np.ndarray, g: int) -> int:
            products.append((np.flatnonzero(sel), g))
            return len(products) - 1

        blocks = {int(b): product(inside[0] & (block == b), 0) for b in np.unique(block[inside[0]])}
        sums = [[(j, 1.0) for j in blocks.values()] or [(product(inside[0], 0), 1.0)]]
        for g in range(1, inside.shape[0]):
            if not within[g] or g not in blocks:
                sums.append([(product(inside[g], g), 1.0)])
                continue
            rest = inside[g] & (block != g)
            own = [(product(rest, g), 1.0)] if rest.any() else []
            sums.append([(blocks[g], float(present[0] / present[g])), *own])
        return cls(products=products, sums=sums, scale=scale.astype(np.float32))

    def weigh(self, weights: np.ndarray) -> list[np.ndarray]:
        """Per product, float32[k, B]: the resample weights of its images (``weights``: [n, B]) times
        their factors."""
        return [weights[pos] * self.scale[g, pos][:, None] for pos, g in self.products]

    def draws(self, values: np.ndarray, lut: np.ndarray, weighed: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Per group, float64[K, c, B]: each model's class mean of its correctness (``lut[:, values]``;
        ``values``: int[c, n] over the sorted images) in every resample (``weighed``: :meth:`weigh`)."""
        done = [_draws(values[:, pos], w, lut) for (pos, _), w in zip(self.products, weighed, strict=True)]
        out = []
        for terms in self.sums:
            total = done[terms[0][0]] * terms[0][1] if terms[0][1] != 1.0 else done[terms[0][0]].copy()
            for j, factor in terms[1:]:
                total += done[j] * factor
            out.append(total)
        return out


def _draws(x: np.ndarray, weights: np.ndarray, lut: np.ndarray | None = None) -> np.ndarray:
    """float64[K, M, B]: each model's weighted sum (``weights``: float32[n, B], an image's weight in
    each resample) per resample of ``lut[:, x]`` (``x``: int[M, n] values; ``lut``: float32[K, V + 1])
    or, without ``lut``, of ``x`` itself (float32[K, M, n])."""
    k = lut.shape[0] if lut is not None else x.shape[0]
    models = x.shape[0] if lut is not None else x.shape[1]
    out = np.empty((k, models, weights.shape[1]), np.float64)
    for m0 in range(0, models, _CHUNK):
        m1 = min(models, m0 + _CHUNK)
        if lut is not None:
            sums = _level_sums(x[m0:m1], weights, lut)
        else:
            sums = (x[:, m0:m1].reshape(k * (m1 - m0), -1) @ weights).reshape(k, m1 - m0, -1)
        out[:, m0:m1] = sums
    return out


def _level_sums(x: np.ndarray, weights: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """float64[K, c, B]: :func:`_draws` of the levels ``lut[:, x]``: the first level a dense
    product, each further one the level before plus the product of where the two differ, over only
    the images where some model's levels differ when those are few (as a model's minor and
    explainable levels mostly are: a dense product of the columns beats a sparse one here)."""
    previous = lut[0][x]
    sums = np.empty((lut.shape[0], x.shape[0], weights.shape[1]), np.float64)
    sums[0] = previous @ weights
    for k in range(1, lut.shape[0]):
        level = lut[k][x]
        differ = level - previous
        columns = np.flatnonzero(differ.any(axis=0))
        if columns.shape[0] < _FEW_COLUMNS * differ.shape[1]:
            sums[k] = sums[k - 1] + differ[:, columns] @ weights[columns]
        else:
            sums[k] = sums[k - 1] + differ @ weights
        previous = level
    return sums


def _paired(draws: np.ndarray, per_image: np.ndarray, predicted: np.ndarray, baseline: int,
            q: Sequence[float]) -> dict[str, np.ndarray]:
    """Differences of every model from ``baseline`` per headline statistic: the percentiles of the
    paired resampled differences, and McNemar's exact p of the per-image correctness on the images
    both predict."""
    out: dict[str, np.ndarray] = {}
    both = predicted & predicted[baseline]
    for k, stat in enumerate(HEADLINE):
        diff = draws[k] - draws[k][[baseline]]  # [M, B]
        lo, hi = np.percentile(diff, q, axis=1)
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
