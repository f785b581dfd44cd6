"""Federated head adaptation's arithmetic: parameters round-trip into a head, local training
learns, clipping bounds, FedAvg weights, and the privacy accounting matches the Gaussian
mechanism's known numbers."""

import math

import numpy as np
import pytest

from sentiedge_core import adaptation, cascade
from sentiedge_core.bundle import CascadeSpec, RouteSpec
from sentiedge_core.stages import Head

DIM = 8


def spec() -> CascadeSpec:
    route = RouteSpec(temperature=1.0, threshold=0.8, stacker=[0.1, 0.9, 0.0])
    return CascadeSpec(long_text_tokens=126, short=route, long=RouteSpec(temperature=1.0, threshold=0.7,
                                                                        stacker=[0.5, 0.5, 0.1]))


def head(rng) -> Head:
    return Head(weights=rng.normal(size=(2, DIM)).tolist(), bias=[0.2, -0.1])


def domain(rng, n: int, shift: float) -> adaptation.Examples:
    """Two classes along a direction, with the whole domain offset by ``shift`` (what a head
    trained elsewhere gets wrong)."""
    y = rng.integers(0, 2, n).astype(float)
    direction = np.ones(DIM) / math.sqrt(DIM)
    pooled = rng.normal(scale=0.5, size=(n, DIM)) + np.outer(2 * y - 1, direction) + shift * direction
    return adaptation.Examples(pooled=pooled, fast=rng.normal(size=n), tokens=rng.integers(3, 300, n),
                               escalated=np.ones(n, bool), y=y)


def accuracy(theta, data: adaptation.Examples) -> float:
    direction, offset, _, _ = adaptation.split(theta, DIM)
    return float((((data.pooled @ direction + offset) >= 0) == data.y).mean())


def test_parameters_round_trip_into_a_head_that_gives_the_same_margins():
    rng = np.random.default_rng(1)
    h = head(rng)
    theta = adaptation.initial(h, spec())
    assert theta.size == adaptation.size(DIM) == DIM + 7
    same, same_spec = adaptation.apply(h, spec(), theta)
    assert np.allclose(same.weights, h.weights) and np.allclose(same.bias, h.bias)
    assert same_spec == spec()
    moved = theta + rng.normal(size=theta.size)
    new_head, new_spec = adaptation.apply(h, spec(), moved)
    x = rng.normal(size=(5, DIM))
    w = np.asarray(new_head.weights)
    margins = x @ (w[1] - w[0]) + (new_head.bias[1] - new_head.bias[0])
    assert np.allclose(margins, x @ moved[:DIM] + moved[DIM])
    assert new_spec.short.stacker == pytest.approx(moved[DIM + 1:DIM + 4].tolist())
    assert new_spec.long.stacker == pytest.approx(moved[DIM + 4:].tolist())
    assert new_spec.long_text_tokens == 126 and new_spec.short.threshold == 0.8  # routing is untouched
    with pytest.raises(ValueError, match="parameters have"):
        adaptation.split(theta[:-1], DIM)


def test_local_training_fixes_a_shifted_domain_and_stays_put_without_signal():
    rng = np.random.default_rng(2)
    base = np.r_[np.ones(DIM) / math.sqrt(DIM) * 3, 0.0, spec().short.stacker, spec().long.stacker]
    shifted = domain(rng, 400, shift=2.5)
    held_out = domain(rng, 2000, shift=2.5)
    assert accuracy(base, held_out) < 0.7  # the base calls nearly everything positive
    delta = adaptation.local_update(base, shifted, spec(), steps=5, l2=0.03)
    assert accuracy(base + delta, held_out) > 0.9
    # The stackers learned too: escalated texts read the new margin through them.
    assert not np.allclose(delta[DIM + 1:], 0)
    stronger = adaptation.local_update(base, shifted, spec(), steps=5, l2=3.0)
    assert np.linalg.norm(stronger) < np.linalg.norm(delta)  # regularization holds it near the start


def test_clip_bounds_the_update_and_noise_has_the_asked_scale():
    rng = np.random.default_rng(3)
    big = rng.normal(size=100) * 50
    assert np.linalg.norm(adaptation.clip(big, 2.0)) == pytest.approx(2.0)
    small = rng.normal(size=100) * 1e-3
    assert np.array_equal(adaptation.clip(small, 2.0), small)
    assert np.array_equal(adaptation.noised(small, 0.0, 2.0, rng), small)
    noisy = adaptation.noised(np.zeros(200_000), 1.5, 2.0, rng)
    assert np.std(noisy) == pytest.approx(3.0, rel=0.02)


def test_fedavg_weights_by_count():
    a, b = np.ones(3), np.zeros(3)
    assert np.allclose(adaptation.fedavg([(a, 30), (b, 10)]), 0.75)
    with pytest.raises(ValueError):
        adaptation.fedavg([])


def test_privacy_accounting_matches_the_gaussian_mechanism():
    # RDP of the Gaussian mechanism with sensitivity 2·clip and std σ·clip: ε(α) = 2α/σ².
    assert adaptation.rdp_coefficient(5, 2.0) == pytest.approx(2.5)
    assert adaptation.rdp_coefficient(5, 0.0) == math.inf
    assert adaptation.epsilon(math.inf, 1e-5) == math.inf
    c, delta = 0.1, 1e-5
    numeric = min(c * a + math.log(1 / delta) / (a - 1) for a in np.linspace(1.001, 200, 400_000))
    assert adaptation.epsilon(c, delta) == pytest.approx(numeric, rel=1e-4)
    # sigma_for inverts epsilon, and what was spent before counts.
    sigma = adaptation.sigma_for(4.0, rounds=5, delta=delta)
    assert adaptation.epsilon(adaptation.rdp_coefficient(5, sigma), delta) == pytest.approx(4.0)
    spent = adaptation.rdp_coefficient(5, sigma)
    with pytest.raises(ValueError, match="spent"):
        adaptation.sigma_for(4.0, rounds=1, delta=delta, spent=spent)
    more = adaptation.sigma_for(8.0, rounds=5, delta=delta, spent=spent)
    total = spent + adaptation.rdp_coefficient(5, more)
    assert adaptation.epsilon(total, delta) == pytest.approx(8.0)
    with pytest.raises(ValueError, match="without noise"):
        adaptation.sigma_for(8.0, rounds=1, delta=delta, spent=math.inf)  # a noiseless round: no bound left


def test_adapted_margins_feed_the_cascade_like_the_bundle():
    rng = np.random.default_rng(4)
    h = head(rng)
    theta = adaptation.initial(h, spec()) + rng.normal(size=DIM + 7) * 0.1
    new_head, new_spec = adaptation.apply(h, spec(), theta)
    x = rng.normal(size=(6, DIM))
    fast = rng.normal(size=6)
    tokens = np.array([5, 20, 200, 300, 8, 130])
    w = np.asarray(new_head.weights)
    transformer = x @ (w[1] - w[0]) + new_head.bias[1] - new_head.bias[0]
    p = cascade.stacked(fast, transformer, tokens, new_spec)
    direction, offset, short, long = adaptation.split(theta, DIM)
    expected = np.where(tokens > 126, cascade.sigmoid(long[0] * fast + long[1] * (x @ direction + offset) + long[2]),
                        cascade.sigmoid(short[0] * fast + short[1] * (x @ direction + offset) + short[2]))
    assert np.allclose(p, expected)


def test_texts_the_thin_stacker_answers_train_no_route_stacker_and_it_is_kept():
    import msgspec

    rng = np.random.default_rng(5)
    thin_spec = msgspec.structs.replace(spec(), thin_tokens=10, thin_stacker=[0.0, 1.5, 0.3])
    data = domain(rng, 300, shift=2.5)
    data.tokens = rng.integers(1, 11, data.y.size)  # every text is at most thin_tokens long
    base = np.r_[np.ones(DIM) / math.sqrt(DIM) * 3, 0.0, spec().short.stacker, spec().long.stacker]
    delta = adaptation.local_update(base, data, thin_spec, steps=5, l2=0.03)
    assert not np.allclose(delta[:DIM + 1], 0)  # the head learned from them
    assert np.allclose(delta[DIM + 1:], 0)  # neither route's stacker did
    # Without a thin stacker the same texts train the short route's stacker.
    assert not np.allclose(adaptation.local_update(base, data, spec(), steps=5, l2=0.03)[DIM + 1:DIM + 4], 0)
    _, adapted = adaptation.apply(head(rng), thin_spec, base + delta)
    assert adapted.thin_stacker == [0.0, 1.5, 0.3]
