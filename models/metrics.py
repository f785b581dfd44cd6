"""Classification and calibration metrics (numpy only, so evaluation needs no training stack)."""

from __future__ import annotations

import numpy as np

ECE_BINS = 15
MAX_ECE = 0.05  # the bound on calibration error every release keeps (models.release's gate)


def expected_calibration_error(p_positive: np.ndarray, y: np.ndarray, bins: int = ECE_BINS) -> float:
    """Mean |accuracy − confidence| over equal-width confidence bins, weighted by bin size."""
    p = np.asarray(p_positive, dtype=np.float64)
    y = np.asarray(y)
    confidence = np.maximum(p, 1 - p)
    correct = ((p >= 0.5).astype(int) == y).astype(np.float64)
    edges = np.linspace(0.5, 1.0, bins + 1)
    index = np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        members = index == b
        if members.any():
            ece += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(ece)


def report(p_positive: np.ndarray, y: np.ndarray) -> dict:
    p = np.asarray(p_positive, dtype=np.float64)
    y = np.asarray(y).astype(int)
    pred = (p >= 0.5).astype(int)
    confusion = np.zeros((2, 2), dtype=int)
    np.add.at(confusion, (y, pred), 1)
    recalls, f1s = [], []
    for c in (0, 1):
        tp = confusion[c, c]
        support = confusion[c].sum()
        predicted = confusion[:, c].sum()
        recall = tp / support if support else 0.0
        precision = tp / predicted if predicted else 0.0
        recalls.append(recall)
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return {
        "n": int(y.size),
        "accuracy": round(float((pred == y).mean()), 4) if y.size else 0.0,
        "balanced_accuracy": round(float(np.mean(recalls)), 4),
        "macro_f1": round(float(np.mean(f1s)), 4),
        "ece": round(expected_calibration_error(p, y), 4),
        "confusion": {"true_negative": int(confusion[0, 0]), "false_positive": int(confusion[0, 1]),
                      "false_negative": int(confusion[1, 0]), "true_positive": int(confusion[1, 1])},
    }


def format_report(title: str, r: dict) -> str:
    c = r["confusion"]
    return "\n".join([
        f"{title}  (n={r['n']})",
        f"  accuracy           {r['accuracy']:.4f}",
        f"  balanced accuracy  {r['balanced_accuracy']:.4f}",
        f"  macro-F1           {r['macro_f1']:.4f}",
        f"  calibration (ECE)  {r['ece']:.4f}",
        "  confusion matrix   predicted neg  predicted pos",
        f"    actual neg       {c['true_negative']:>13}  {c['false_positive']:>13}",
        f"    actual pos       {c['false_negative']:>13}  {c['true_positive']:>13}",
    ])
