"""Calibration under shift (models.shift_calibration): weighted stackers, the thin stacker, the
cross-fitted choice of the customer texts' weight, and the ECE a calibrated model would show."""

from __future__ import annotations

import numpy as np

from models import shift_calibration as sc
from models.calibration import fit_logistic
from models.cascade_fit import Margins, cascade_probability
from sentiedge_core import cascade
from sentiedge_core.bundle import CascadeSpec, RouteSpec

SPEC = CascadeSpec(long_text_tokens=126, short=RouteSpec(temperature=1.0, threshold=0.99, stacker=[0, 1, 0]),
                   long=RouteSpec(temperature=1.0, threshold=0.7, stacker=[1, 0, 0]), thin_tokens=10)


def texts(rng, n: int, tokens: tuple[int, int], transformer_scale: float, source: str) -> Margins:
    """Unsure fast margins; the transformer's margin is ``transformer_scale`` times too small
    for its real accuracy (a stacker must scale it up to be calibrated)."""
    y = rng.integers(0, 2, n)
    true_logit = (2 * y - 1) * 3.0 + rng.normal(0, 1.5, n)
    return Margins(rng.normal(0, 0.3, n), rng.integers(*tokens, n), true_logit * transformer_scale, y,
                   np.array([source] * n), np.zeros(n, bool))


def test_a_weight_of_two_is_the_same_as_the_example_twice():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(200, 2)), rng.integers(0, 2, 200)
    weights = np.where(np.arange(200) < 50, 2.0, 1.0)
    doubled = fit_logistic(np.vstack([x, x[:50]]), np.r_[y, y[:50]])
    assert np.allclose(fit_logistic(x, y, sample_weight=weights), doubled, atol=1e-6)


def test_short_customer_texts_get_their_own_stacker_and_the_fit_is_chosen_on_held_out_folds():
    rng = np.random.default_rng(1)
    movie = texts(rng, 1500, (11, 120), 1.0, "movies")  # longer than thin_tokens: the short route's stacker
    customers = texts(rng, 200, (2, 11), 0.3, "customers")  # short, with a margin that reads too timid
    fitted = sc.fit_stackers(SPEC, movie, customers, 0.5)
    # The customers' margins read a third as large for the same evidence: their stacker scales them up.
    movie_only = fit_logistic(np.column_stack([movie.fast, movie.transformer]), movie.y)
    assert len(fitted.thin_stacker) == 3 and fitted.thin_stacker[1] > 2 * fitted.short.stacker[1]
    assert abs(fitted.short.stacker[1] - movie_only[1]) < 0.3  # the movie texts' stacker is not dragged along
    assert cascade.thin_stacked(customers.tokens, fitted).all() and not cascade.thin_stacked(movie.tokens, fitted).any()
    assert sc.confidence_gap(cascade_probability(customers, fitted)[0], customers.y) > -0.05  # calibrated
    old = sc.previous(SPEC, movie, customers)
    assert old.thin_stacker == [] and sc.confidence_gap(cascade_probability(customers, old)[0], customers.y) < -0.05

    chosen, info = sc.choose(SPEC, movie, customers)
    assert info["trials"][0]["fit"].startswith("previous") and info["trials"][0]["allowed"]
    assert [t["customer_weight"] for t in info["trials"][1:]] == list(sc.CUSTOMER_WEIGHTS)
    allowed = [t for t in info["trials"] if t["allowed"]]
    picked = [t for t in info["trials"] if t["fit"] == info["chosen"]][0]
    assert picked["allowed"] and picked["customer_crossfitted_log_loss"] == min(
        t["customer_crossfitted_log_loss"] for t in allowed)
    assert picked["customer_crossfitted_log_loss"] < info["trials"][0]["customer_crossfitted_log_loss"]
    assert chosen.thin_stacker  # here a thin stacker does better on held-out customer texts
    # Cross-fitted probabilities come from stackers that never saw the text: not the in-sample ones.
    in_sample = cascade_probability(customers, chosen)[0]
    assert info["crossfitted_p"].shape == in_sample.shape and not np.allclose(info["crossfitted_p"], in_sample)


def test_a_fit_that_harms_a_movie_source_is_not_allowed():
    rng = np.random.default_rng(2)
    movie = texts(rng, 600, (11, 120), 1.0, "movies")
    customers = texts(rng, 150, (11, 120), 0.3, "customers")  # same lengths: one stacker must serve both
    _, info = sc.choose(SPEC, movie, customers)
    previous_ece = info["trials"][0]["movie_validation_ece"]["movies"]
    for t in info["trials"]:
        assert t["allowed"] == (t["movie_validation_ece"]["movies"] <= previous_ece + 1e-4)
    # Weighing the timid customer texts up drags the shared stacker off the movie texts' calibration.
    assert not [t for t in info["trials"] if t["customer_weight"] == 2.0][0]["allowed"]
    assert [t for t in info["trials"] if t["fit"] == info["chosen"]][0]["allowed"]


def test_the_ece_noise_floor_shrinks_with_more_texts():
    rng = np.random.default_rng(3)
    few, many = sc.ece_noise_floor(rng.uniform(0, 1, 44)), sc.ece_noise_floor(rng.uniform(0, 1, 4000))
    assert many["mean"] < few["mean"] / 4 and few["mean"] <= few["p90"]
