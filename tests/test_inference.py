"""The decision's statistics on constructed score vectors: equivalence only when shown, different when
clearly so, underpowered at small n; seeds widen intervals; Holm's correction."""

import numpy as np
import pytest

from harness.core.inference import compare, estimate, holm, seed_spread


def _scores(rows):
    return {"t": np.array(rows, dtype=float)}


def test_equal_scores_on_many_items_are_equivalent():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 2, size=2000).astype(float)
    other = base.copy()
    flip = rng.choice(2000, size=40, replace=False)  # 2% of items differ, in both directions
    other[flip] = 1 - other[flip]
    c = compare("a", _scores([other]), "b", _scores([base]), margin=0.02)
    assert c.verdict == "equivalent" and abs(c.diff) < 0.01


def test_clearly_different_scores_are_different():
    a = np.r_[np.ones(80), np.zeros(20)]
    b = np.r_[np.ones(40), np.zeros(60)]
    c = compare("a", _scores([a]), "b", _scores([b]), margin=0.02)
    assert c.verdict == "different" and c.diff == pytest.approx(0.4) and c.low > 0 and c.p_value < 0.01


def test_noisy_small_samples_are_underpowered_with_the_items_needed():
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 2, size=10).astype(float), rng.integers(0, 2, size=10).astype(float)
    a[:2], b[:2] = 1, 0  # some difference, far from significant at n=10
    c = compare("a", _scores([a]), "b", _scores([b]), margin=0.02)
    assert c.verdict == "underpowered" and c.mde > 0.2
    needed = c.items_to_separate()
    assert needed is not None and needed > 10


def test_identical_scores_are_equivalent_only_on_enough_items():
    few, many = np.r_[np.ones(3), np.zeros(3)], np.r_[np.ones(300), np.zeros(300)]
    assert compare("a", _scores([few]), "b", _scores([few]), margin=0.02).verdict == "underpowered"
    assert compare("a", _scores([many]), "b", _scores([many]), margin=0.02).verdict == "equivalent"


def test_an_all_zero_task_still_has_an_interval():
    e = estimate(_scores([np.zeros(5)]))
    assert e.mean == 0 and e.low == 0 and e.high > 0.5  # 0 of 5 right: the truth could well be above half


def test_seed_variance_widens_the_interval():
    rng = np.random.default_rng(2)
    items = rng.random(200)
    same = _scores([items, items, items])
    noisy = _scores([items, np.clip(items + 0.3, 0, 1), np.clip(items - 0.3, 0, 1)])
    tight, wide = estimate(same), estimate(noisy)
    assert (wide.high - wide.low) > 2 * (tight.high - tight.low)
    assert seed_spread(noisy) > 0.1 and seed_spread(same) == 0.0 and seed_spread(_scores([items])) is None


def test_holm_adjusts_in_order():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5]) == [0.5]


def test_the_p_value_and_the_interval_tell_the_same_story():
    """The p-value comes from the replicates the 95% interval comes from: over many random paired samples the
    interval excludes 0 exactly when p < 0.05 (up to a boundary replicate), and a pair is never called
    significantly different with p >= 0.05 (a centered bootstrap p beside a percentile interval did that)."""
    rng = np.random.default_rng(1)
    agree = 0
    for trial in range(200):
        n = int(rng.integers(20, 120))
        a = (rng.uniform(size=(1, n)) < rng.uniform(0.1, 0.9)).astype(float)
        b = np.where(rng.uniform(size=(1, n)) < rng.uniform(0.05, 0.4), 1 - a, a)
        c = compare("a", _scores(a), "b", _scores(b), margin=0.02, seed=trial)
        excludes = c.low > 0 or c.high < 0
        agree += excludes == (c.p_value < 0.05)
        assert c.verdict != "different" or (c.p_value < 0.05 and excludes)
    assert agree >= 197
