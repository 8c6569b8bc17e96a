"""Statistical inference for the decision: intervals that count both sources of noise (training seeds
and test items), equivalence tests, the smallest difference a run could detect, and corrections for
testing many pairs at once. Seeded: the same scores and seed give the same numbers.

Scores come as `Scores`: for each task, a (seeds x items) array of per-item scores, the same items
(and, for paired comparisons, the same seeds) in the same order for every strategy.

Intervals are a two-level bootstrap: each replicate draws seeds with replacement and, independently,
items with replacement within each task, and takes the mean over tasks of the mean over the drawn
seeds and items (every task weighs the same). With one seed it is the stratified item bootstrap.
Seeds and items are crossed (every seed answers every item), so both are resampled, not nested.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Scores = dict[str, np.ndarray]
"""task -> (seeds, items) per-item scores."""

Z95, Z80_POWER = 1.959964, 0.841621
"""Two-sided 5% and one-sided 20% normal quantiles (80% power at alpha 0.05)."""
ALPHA = 0.05
"""Two-sided level of "significantly different" (the 95% interval excludes 0)."""


def macro(scores: Scores) -> float:
    """Mean over tasks of the mean over seeds and items."""
    return float(np.mean([a.mean() for a in scores.values()])) if scores else math.nan


def replicates(scores: Scores, seed: int = 0, n_boot: int = 2000) -> np.ndarray:
    """`n_boot` bootstrap replicates of `macro(scores)`: seeds and items drawn with replacement."""
    rng = np.random.default_rng(seed)
    seed_w = _weights(rng, next(iter(scores.values())).shape[0], n_boot)  # (B, S)
    per_task = []
    for task in sorted(scores):
        a = np.asarray(scores[task], dtype=float)
        per_task.append(np.einsum("bs,si,bi->b", seed_w, a, _weights(rng, a.shape[1], n_boot)))
    return np.mean(per_task, axis=0)


@dataclass(frozen=True)
class Estimate:
    """A mean with its 95% interval (two-level bootstrap)."""

    mean: float
    low: float
    high: float
    n_items: int
    n_seeds: int


def none_seen_bound(n: int, level: float = 0.95) -> float:
    """The largest rate at which an event could occur, at `level` one-sided confidence, when it was seen
    in none of `n` trials (the exact binomial bound; about 3/n at 95%, the "rule of three")."""
    return 1.0 - (1.0 - level) ** (1.0 / max(1, n))


def estimate(scores: Scores, seed: int = 0, n_boot: int = 2000) -> Estimate:
    """The macro mean with its 95% interval. A task whose items all scored 0 (or all 1) has a degenerate
    bootstrap (nothing to resample): its share of the interval is widened to what seeing no success (no
    failure) on that many items allows."""
    if not scores:
        return Estimate(math.nan, math.nan, math.nan, 0, 0)
    reps = replicates(scores, seed, n_boot)
    n_items = sum(a.shape[1] for a in scores.values())
    n_seeds = next(iter(scores.values())).shape[0]
    mean, low, high = macro(scores), float(np.quantile(reps, 0.025)), float(np.quantile(reps, 0.975))
    up = sum(none_seen_bound(a.size, 0.975) for a in scores.values() if np.all(a == 0)) / len(scores)
    down = sum(none_seen_bound(a.size, 0.975) for a in scores.values() if np.all(a == 1)) / len(scores)
    return Estimate(mean, min(low, mean - down), max(high, mean + up), n_items, n_seeds)


Verdict = Literal["different", "equivalent", "underpowered"]


@dataclass(frozen=True)
class Comparison:
    """a against b on the same items and seeds: the difference of their scores, its intervals, and what
    can be concluded at the equivalence margin."""

    a: str
    b: str
    diff: float
    """score(a) - score(b)."""
    low: float
    high: float
    """95% interval of the difference: excluding 0 means significantly different."""
    low90: float
    high90: float
    """90% interval: within +-margin means equivalent (two one-sided tests at 5% each, TOST)."""
    p_value: float
    """Two-sided bootstrap p-value of no difference, from the same replicates as the 95% interval (twice the
    smaller share of replicates on either side of 0): below 0.05 about when the interval excludes 0."""
    margin: float
    n_items: int
    n_seeds: int

    @property
    def verdict(self) -> Verdict:
        """different: the 95% interval excludes 0 and p < 0.05 (the two agree but at the boundary, where
        interpolated quantiles and counted replicates can split: then the difference is not called)."""
        if (self.low > 0 or self.high < 0) and self.p_value < ALPHA:
            return "different"
        if -self.margin <= self.low90 and self.high90 <= self.margin:
            return "equivalent"
        return "underpowered"

    @property
    def se(self) -> float:
        """Standard error of the difference, from the width of its 95% interval."""
        return (self.high - self.low) / (2 * Z95)

    @property
    def mde(self) -> float:
        """The smallest true difference this run would detect with 80% power at 5%."""
        return (Z95 + Z80_POWER) * self.se

    def items_to_separate(self) -> int | None:
        """Roughly how many test items (at this seed count) would make the observed difference significant
        with 80% power (the standard error shrinks as 1/sqrt(items)); None when there is no difference."""
        target = abs(self.diff)
        if target <= 0 or self.se <= 0:
            return None
        return math.ceil(self.n_items * (self.mde / target) ** 2)


def _weights(rng: np.random.Generator, n: int, n_boot: int) -> np.ndarray:
    """(n_boot, n) bootstrap weights: multinomial counts over n units, divided by n."""
    return rng.multinomial(n, np.full(n, 1 / n), size=n_boot) / n


def diff_replicates(a: Scores, b: Scores, seed: int = 0, n_boot: int = 4000) -> np.ndarray:
    """Bootstrap replicates of macro(a) - macro(b) on shared items: items are drawn once per replicate
    for both (paired), each strategy's seeds are drawn on their own (seed i of one strategy has nothing
    to do with seed i of another)."""
    rng = np.random.default_rng(seed)
    wa = _weights(rng, next(iter(a.values())).shape[0], n_boot)
    wb = _weights(rng, next(iter(b.values())).shape[0], n_boot)
    per_task = []
    for task in sorted(a):
        xa, xb = np.asarray(a[task], dtype=float), np.asarray(b[task], dtype=float)
        items = _weights(rng, xa.shape[1], n_boot)
        per_task.append(np.einsum("bs,si,bi->b", wa, xa, items) - np.einsum("bs,si,bi->b", wb, xb, items))
    return np.mean(per_task, axis=0)


def percentile_p(reps: np.ndarray) -> float:
    """Two-sided p-value of a zero difference that the percentile interval implies: twice the smaller share
    of replicates at or beyond 0 on either side (+1 for the observed sample: never exactly 0). A centered
    ("basic") bootstrap p beside a percentile interval let a pair read "significantly different (p=0.062)"
    (lora vs dpo in benchmarks/results/preference.md, an interval of [+0.0 pt, +13.9 pt])."""
    n = reps.shape[0]
    tail = min(int(np.sum(reps <= 0)), int(np.sum(reps >= 0)))
    return float(min(1.0, 2 * (tail + 1) / (n + 1)))


def compare(a_name: str, a: Scores, b_name: str, b: Scores, margin: float, seed: int = 0,
            n_boot: int = 4000) -> Comparison:
    """Two strategies on the same tasks and items (in the same order), each with its own seeds."""
    observed = macro(a) - macro(b)
    n_items = sum(x.shape[1] for x in a.values())
    n_seeds = min(next(iter(a.values())).shape[0], next(iter(b.values())).shape[0]) if a else 0
    if not a:
        return Comparison(a_name, b_name, math.nan, 0.0, 0.0, 0.0, 0.0, 1.0, margin, 0, 0)
    if all(np.array_equal(a[t], b[t]) for t in a):  # no item differs: the bootstrap has nothing to draw,
        # but a difference smaller than one item in about n/3 could have gone unseen (scores in [0, 1])
        u95, u975 = none_seen_bound(n_items, 0.95), none_seen_bound(n_items, 0.975)
        return Comparison(a_name, b_name, 0.0, -u975, u975, -u95, u95, 1.0, margin, n_items, n_seeds)
    reps = diff_replicates(a, b, seed, n_boot)
    p = percentile_p(reps)
    q = np.quantile(reps, [0.025, 0.975, 0.05, 0.95])
    return Comparison(a_name, b_name, observed, float(q[0]), float(q[1]), float(q[2]), float(q[3]), p, margin,
                      n_items, n_seeds)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (same order as given): family-wise error at the usual level."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [0.0] * len(p_values)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def seed_spread(scores: Scores) -> float | None:
    """Standard deviation across seeds of each seed's score (None with one seed)."""
    if not scores or next(iter(scores.values())).shape[0] < 2:
        return None
    per_seed = np.mean([a.mean(axis=1) for a in scores.values()], axis=0)
    return float(np.std(per_seed, ddof=1))
