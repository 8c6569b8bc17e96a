"""Statistics over per-item scores: bootstrap confidence intervals and paired tests.

Everything is seeded: the same scores and seed give the same interval and p-value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float
    n: int


@dataclass(frozen=True)
class PairedTest:
    a: str
    b: str
    diff: float
    """mean(a) - mean(b) over the shared items."""
    p_value: float
    n: int
    method: str

    def verdict(self, alpha: float = 0.05) -> str:
        sig = "significant" if self.p_value < alpha else "not significant"
        pt = f"{100 * self.diff:+.1f} pt"
        return f"{self.a} vs {self.b}: {pt}, {sig}, p={self.p_value:.2g} ({self.method}, n={self.n})"


def resampled_means(x: np.ndarray, rng: np.random.Generator, n_boot: int) -> np.ndarray:
    """Means of `n_boot` resamples (with replacement, same size) of `x`. With few distinct values (0/1
    scores, their differences) they are drawn as multinomial counts over those values: the same
    distribution as resampling items, at n_boot x values instead of n_boot x items."""
    values, counts = np.unique(x, return_counts=True)
    if values.size > 16:
        return np.asarray(x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1), dtype=float)
    draws = rng.multinomial(x.size, counts / x.size, size=n_boot)
    return np.asarray(draws @ values / x.size, dtype=float)


def bootstrap_ci(scores: Sequence[float], seed: int = 0, n_boot: int = 2000, level: float = 0.95) -> Interval:
    """Percentile bootstrap interval of the mean."""
    x = np.asarray(scores, dtype=float)
    if x.size == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    means = resampled_means(x, np.random.default_rng(seed), n_boot)
    tail = (1 - level) / 2
    return Interval(float(x.mean()), float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail)), x.size)


def mcnemar_exact(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided exact McNemar p-value for paired binary scores (a binomial test on discordant pairs)."""
    only_a = sum(1 for x, y in zip(a, b, strict=True) if x > y)
    only_b = sum(1 for x, y in zip(a, b, strict=True) if y > x)
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = min(only_a, only_b)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def paired_bootstrap(a: Sequence[float], b: Sequence[float], seed: int = 0, n_boot: int = 4000) -> float:
    """Two-sided p-value that mean(a - b) is 0, by resampling items (scores need not be binary)."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if d.size == 0 or np.all(d == 0):
        return 1.0
    boots = resampled_means(d, np.random.default_rng(seed), n_boot)
    centered = boots - d.mean()  # the null distribution: same spread, mean 0
    return float(min(1.0, (np.sum(np.abs(centered) >= abs(d.mean())) + 1) / (n_boot + 1)))


def paired_test(name_a: str, a: dict[str, float], name_b: str, b: dict[str, float], seed: int = 0) -> PairedTest:
    """Compare two strategies on the items both scored (by item id): McNemar when every score is 0/1,
    a paired bootstrap otherwise."""
    shared = sorted(set(a) & set(b))
    xa, xb = [a[i] for i in shared], [b[i] for i in shared]
    binary = all(v in (0.0, 1.0) for v in xa + xb)
    p = mcnemar_exact(xa, xb) if binary else paired_bootstrap(xa, xb, seed)
    diff = float(np.mean(xa) - np.mean(xb)) if shared else math.nan
    return PairedTest(name_a, name_b, diff, p, len(shared), "McNemar exact" if binary else "paired bootstrap")


def _grouped_means(groups: Sequence[np.ndarray], rng: np.random.Generator, n_boot: int) -> np.ndarray:
    """Bootstrap replicates of the macro mean: items are resampled within each group (task), and the
    replicate is the mean of the group means, so every task weighs the same whatever its size."""
    per_group = [resampled_means(g, rng, n_boot) for g in groups]
    return np.mean(per_group, axis=0)


def grouped_ci(groups: Sequence[Sequence[float]], seed: int = 0, n_boot: int = 2000, level: float = 0.95) -> Interval:
    """Percentile bootstrap interval of the mean of group means (stratified by group)."""
    arrays = [np.asarray(g, dtype=float) for g in groups if len(g)]
    if not arrays:
        return Interval(math.nan, math.nan, math.nan, 0)
    reps = _grouped_means(arrays, np.random.default_rng(seed), n_boot)
    tail = (1 - level) / 2
    mean = float(np.mean([a.mean() for a in arrays]))
    n = sum(a.size for a in arrays)
    return Interval(mean, float(np.quantile(reps, tail)), float(np.quantile(reps, 1 - tail)), n)


def grouped_paired_test(name_a: str, a: dict[tuple[str, str], float], name_b: str, b: dict[tuple[str, str], float],
                        seed: int = 0, n_boot: int = 4000) -> PairedTest:
    """Paired test of the macro mean over (group, item) keys both scored: per-item differences are
    resampled within each group; a single group of 0/1 scores falls back to exact McNemar."""
    shared = sorted(set(a) & set(b))
    groups = sorted({g for g, _ in shared})
    if len(groups) == 1:
        return paired_test(name_a, {i: a[(g, i)] for g, i in shared}, name_b, {i: b[(g, i)] for g, i in shared}, seed)
    diffs = [np.array([a[k] - b[k] for k in shared if k[0] == g]) for g in groups]
    if not diffs:
        return PairedTest(name_a, name_b, math.nan, 1.0, 0, "paired bootstrap")
    observed = float(np.mean([d.mean() for d in diffs]))
    if all(np.all(d == 0) for d in diffs):
        return PairedTest(name_a, name_b, observed, 1.0, len(shared), "paired bootstrap by task")
    reps = _grouped_means(diffs, np.random.default_rng(seed), n_boot) - observed
    p = float(min(1.0, (np.sum(np.abs(reps) >= abs(observed)) + 1) / (n_boot + 1)))
    return PairedTest(name_a, name_b, observed, p, len(shared), "paired bootstrap by task")
