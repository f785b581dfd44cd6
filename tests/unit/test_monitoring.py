import pytest

from sentiedge_core.monitoring import DriftMonitor, confidence_bin, psi, reference_of


def test_reference_and_bins():
    ref = reference_of([0.9, 0.1, 0.55, 0.97], ["negative", "positive"])
    assert ref["labels"] == {"negative": 0.25, "positive": 0.75} and ref["n"] == 4
    assert ref["confidence"] == [0.25, 0.0, 0.0, 0.0, 0.75]
    assert confidence_bin(0.5) == 0 and confidence_bin(0.95) == 4 and confidence_bin(1.0) == 4


def test_psi_is_zero_for_the_same_distribution_and_grows_with_a_shift():
    assert psi([0.5, 0.5], [500, 500]) == pytest.approx(0.0)
    assert psi([0.5, 0.5], [550, 450]) < 0.05
    assert psi([0.5, 0.5], [900, 100]) > 0.5


def test_the_monitor_flags_a_shift_in_predictions():
    ref = {"labels": {"negative": 0.5, "positive": 0.5}, "confidence": [0.05, 0.05, 0.1, 0.2, 0.6]}
    monitor = DriftMonitor(ref, ["negative", "positive"], window_s=1800)
    bins = [0.55, 0.65, 0.75, 0.75] + [0.85] * 4 + [0.95] * 12  # the reference's shares, 20 at a time
    for i in range(200):
        monitor.observe("negative" if i % 2 else "positive", bins[i % 20], 1000.0)
    label_psi, confidence_psi, n = monitor.score(1000.0)
    assert n == 200 and label_psi < 0.01 and confidence_psi < 0.01
    for _ in range(400):
        monitor.observe("negative", 0.99, 1001.0)
    label_psi, _, n = monitor.score(1001.0)
    assert n == 600 and label_psi > 0.2
