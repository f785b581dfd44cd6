import numpy as np

from models.calibration import fit_logistic, fit_temperature
from models.metrics import expected_calibration_error, report


def test_report_counts_the_confusion_matrix_and_scores():
    r = report(np.array([0.9, 0.8, 0.2, 0.6]), np.array([1, 1, 0, 0]))
    assert r["confusion"] == {"true_negative": 1, "false_positive": 1, "false_negative": 0, "true_positive": 2}
    assert r["accuracy"] == 0.75
    assert r["balanced_accuracy"] == 0.75


def test_ece_is_small_for_calibrated_and_large_for_overconfident_predictions():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 20000)
    y = (rng.uniform(0, 1, p.size) < p).astype(int)
    assert expected_calibration_error(p, y) < 0.02
    overconfident = np.where(p >= 0.5, 0.999, 0.001)
    assert expected_calibration_error(overconfident, y) > 0.2


def test_temperature_scaling_recovers_a_known_temperature():
    rng = np.random.default_rng(1)
    true_logit = rng.normal(0, 2, 20000)
    y = (rng.uniform(0, 1, true_logit.size) < 1 / (1 + np.exp(-true_logit))).astype(int)
    assert abs(fit_temperature(true_logit * 3.0, y) - 3.0) < 0.2


def test_logistic_fit_recovers_weights():
    rng = np.random.default_rng(2)
    x = rng.normal(0, 1, (20000, 2))
    logit = 1.5 * x[:, 0] - 0.5 * x[:, 1] + 0.3
    y = (rng.uniform(0, 1, len(x)) < 1 / (1 + np.exp(-logit))).astype(int)
    w = fit_logistic(x, y, l2=0.0)
    assert np.allclose(w, [1.5, -0.5, 0.3], atol=0.1)
