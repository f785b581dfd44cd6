"""The experiment report's statistics against statsmodels, on simulated data with a known lift."""

import numpy as np
import pytest
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from control_plane.experiments import two_proportions
from edge_node.personalization.experiments import Arm, Experiment, assign


@pytest.mark.parametrize("seed, n, p_h, lift", [(1, 20_000, 0.10, 0.30), (2, 5_000, 0.05, 0.0), (3, 800, 0.2, 0.1)])
def test_difference_interval_and_p_value_match_statsmodels(seed, n, p_h, lift):
    rng = np.random.default_rng(seed)
    x_t, x_h = int(rng.binomial(n, p_h * (1 + lift))), int(rng.binomial(n, p_h))
    diff, low, high, p = two_proportions(x_t, n, x_h, n)
    z, p_ref = proportions_ztest([x_t, x_h], [n, n])
    low_ref, high_ref = confint_proportions_2indep(x_t, n, x_h, n, method="wald", compare="diff")
    assert p == pytest.approx(p_ref, rel=1e-6, abs=1e-12)
    assert (low, high) == pytest.approx((low_ref, high_ref), rel=1e-6)
    assert diff == pytest.approx(x_t / n - x_h / n)


def test_a_planted_lift_is_recovered_and_a_null_one_is_not_found():
    rng = np.random.default_rng(7)
    n = 30_000
    x_h = rng.binomial(n, 0.10)
    x_t = rng.binomial(n, 0.12)
    diff, low, high, p = two_proportions(int(x_t), n, int(x_h), n)
    assert low < 0.02 < high and p < 1e-6
    misses = 0
    for _trial in range(200):  # with no lift, the 95% interval misses 0 about 5% of the time
        a, b = rng.binomial(2_000, 0.1, size=2)
        _, lo, hi, _ = two_proportions(int(a), 2_000, int(b), 2_000)
        misses += not lo <= 0 <= hi
    assert misses < 25


def test_assignment_is_deterministic_and_follows_the_weights():
    e = Experiment(name="exp", salt="s", arms=[Arm(name="a", weight=45), Arm(name="b", weight=45),
                                               Arm(name="h", weight=10, holdout=True)])
    arms = [assign(e, f"user-{i}").name for i in range(20_000)]
    assert arms == [assign(e, f"user-{i}").name for i in range(20_000)]
    share = arms.count("h") / len(arms)
    assert 0.09 < share < 0.11
    reshuffled = Experiment(name="exp", salt="other", arms=e.arms)
    assert sum(assign(reshuffled, f"user-{i}").name != a for i, a in enumerate(arms[:1000])) > 300
