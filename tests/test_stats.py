import math

import numpy as np
import pytest

from harness.core.stats import bootstrap_ci, mcnemar_exact, paired_bootstrap, paired_test


def test_bootstrap_interval_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(123)
    covered = 0
    trials = 300
    for t in range(trials):
        x = rng.binomial(1, 0.3, size=80)
        ci = bootstrap_ci(x, seed=t, n_boot=1000)
        covered += ci.low <= 0.3 <= ci.high
    assert 0.90 <= covered / trials <= 0.99


def test_bootstrap_is_seeded_and_handles_empty():
    x = [1, 0, 1, 1, 0, 1]
    assert bootstrap_ci(x, seed=5) == bootstrap_ci(x, seed=5)
    assert math.isnan(bootstrap_ci([]).mean)


def test_mcnemar_against_a_hand_computed_case():
    # discordant pairs: a right / b wrong = 1, b right / a wrong = 6; n = 7
    # p = 2 * P(X <= 1 | Bin(7, 0.5)) = 2 * (1 + 7) / 128 = 0.125
    a = [1, 0, 0, 0, 0, 0, 0, 1, 1]
    b = [0, 1, 1, 1, 1, 1, 1, 1, 1]
    assert mcnemar_exact(a, b) == pytest.approx(0.125)
    assert mcnemar_exact([1, 0], [1, 0]) == 1.0


def test_paired_bootstrap_detects_a_clear_difference_and_not_noise():
    rng = np.random.default_rng(0)
    a = rng.uniform(0.5, 1.0, size=60)
    assert paired_bootstrap(a, a - 0.2, seed=1) < 0.01
    assert paired_bootstrap(a, rng.permutation(a), seed=1) > 0.05


def test_paired_test_uses_shared_items_and_says_it_in_words():
    a = {"q1": 1.0, "q2": 1.0, "q3": 0.0, "only-a": 1.0}
    b = {"q1": 0.0, "q2": 1.0, "q3": 0.0, "only-b": 0.0}
    t = paired_test("few-shot", a, "zero-shot", b)
    assert t.n == 3 and t.method == "McNemar exact" and t.diff == pytest.approx(1 / 3)
    assert t.verdict().startswith("few-shot vs zero-shot: +33.3 pt, not significant, p=1")
