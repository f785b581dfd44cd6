"""Fitting the cascade's calibration on validation data: temperatures and stackers."""

from __future__ import annotations

import numpy as np


def _nll(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())


def fit_temperature(margins: np.ndarray, y: np.ndarray) -> float:
    """Temperature T minimising the NLL of sigmoid(margin / T) (golden-section on log T)."""
    margins = np.asarray(margins, np.float64)
    y = np.asarray(y, np.float64)
    lo, hi = np.log(0.05), np.log(20.0)
    ratio = (np.sqrt(5) - 1) / 2

    def loss(log_t: float) -> float:
        return _nll(1 / (1 + np.exp(-margins / np.exp(log_t))), y)

    for _ in range(80):
        a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        if loss(a) < loss(b):
            hi = b
        else:
            lo = a
    return float(np.exp((lo + hi) / 2))


def fit_logistic(features: np.ndarray, y: np.ndarray, l2: float = 1e-3, iterations: int = 50,
                 sample_weight: np.ndarray | None = None) -> list[float]:
    """Logistic regression by Newton's method; returns weights followed by the bias.
    ``sample_weight`` (normalised to a mean of 1) weighs each example's loss."""
    x = np.hstack([np.asarray(features, np.float64), np.ones((len(features), 1))])
    y = np.asarray(y, np.float64)
    s = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, np.float64)
    s = s / s.mean()
    w = np.zeros(x.shape[1])
    penalty = np.eye(x.shape[1]) * l2
    penalty[-1, -1] = 0.0
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-np.clip(x @ w, -60, 60)))
        grad = x.T @ (s * (p - y)) / len(y) + penalty @ w
        hessian = (x * (s * p * (1 - p))[:, None]).T @ x / len(y) + penalty
        step = np.linalg.solve(hessian, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return [float(v) for v in w]
