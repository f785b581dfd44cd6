"""models.neutral's choice of heads on synthetic features: the pooled output's head first, then
an exit's head where it raises the validation score, never past the customer-text bound."""

import numpy as np

from models.neutral import MAX_CUSTOMER_NEUTRAL, Features, choose, joined


def synthetic(n, rng, exit_share, neutral_share, domain):
    y = rng.choice([0, 1, 2], n, p=[(1 - neutral_share) / 2, neutral_share, (1 - neutral_share) / 2])
    centre = np.array([[-2.0, 0, 0, 0], [0, 2.0, 0, 0], [2.0, 0, 0, 0]])
    pooled = centre[y] + rng.normal(0, 0.7, (n, 4))
    lower = centre[y] * 0.8 + rng.normal(0, 0.7, (n, 4))
    at_exit = rng.random(n) < exit_share
    return Features([f"t{i}" for i in range(n)], pooled, ~at_exit, y, np.array([domain] * n), [lower],
                    np.where(at_exit, 3, 0))


def test_an_exit_head_is_kept_where_it_raises_the_score_and_customers_stay_polar():
    rng = np.random.default_rng(0)
    train = joined(*(synthetic(600, rng, 0.5, 0.35, d) for d in ("tweets", "amazon", "nyt")))
    validation = joined(*(synthetic(300, rng, 0.5, 0.35, d) for d in ("tweets", "amazon", "nyt")))
    customers = synthetic(160, rng, 0.7, 0.0, "customers")
    positive = validation.y == 2
    pooled_only, without = choose(train, validation, positive, customers, [3], exit_heads=False)
    both, chosen = choose(train, validation, positive, customers, [3])
    assert not pooled_only.exits and 3 in both.exits and "3" in chosen["exits"]
    mean = lambda c: np.mean([r["macro_f1"] for r in c["validation_three_way"].values()])  # noqa: E731
    assert mean(chosen) > mean(without) + 0.05
    assert chosen["neutral_reach"] > without["neutral_reach"]
    assert both.neutral(customers, [3]).mean() <= MAX_CUSTOMER_NEUTRAL
