"""Model monitoring on the edge: is the model seeing what it was built for?

The manifest carries a reference distribution — the share of each predicted label and of
each confidence bin on the held-out test splits. The edge counts the same per window (counts
only) and compares with the population stability index (PSI): under 0.1 stable, 0.1-0.2
moderate, over ``EDGE_DRIFT_PSI_THRESHOLD`` (0.2) flagged as drift. Closed windows' counts go
upstream so the control plane can compare per node and over all nodes.
"""

from __future__ import annotations

import bisect
import math

CONFIDENCE_BINS = [0.5, 0.6, 0.7, 0.8, 0.9, 1.0001]  # bin i: [edges[i], edges[i+1])
EPSILON = 1e-4  # a share of zero would make PSI infinite


def reference_of(probabilities, labels: list[str]) -> dict:
    """The reference distribution of predictions with these positive-class probabilities."""
    n = len(probabilities)
    positive = sum(1 for p in probabilities if p >= 0.5)
    bins = [0] * (len(CONFIDENCE_BINS) - 1)
    for p in probabilities:
        bins[confidence_bin(max(p, 1 - p))] += 1
    return {"labels": {labels[0]: round((n - positive) / n, 6), labels[1]: round(positive / n, 6)},
            "confidence_bins": CONFIDENCE_BINS, "confidence": [round(b / n, 6) for b in bins], "n": n}


def confidence_bin(confidence: float) -> int:
    return min(max(bisect.bisect_right(CONFIDENCE_BINS, confidence) - 1, 0), len(CONFIDENCE_BINS) - 2)


def psi(expected: list[float], actual_counts: list[int]) -> float:
    total = sum(actual_counts)
    if total == 0:
        return 0.0
    value = 0.0
    for share, count in zip(expected, actual_counts, strict=False):
        e = max(share, EPSILON)
        a = max(count / total, EPSILON)
        value += (a - e) * math.log(a / e)
    return value


DRIFT_PSI_THRESHOLD = 0.2  # the default of EDGE_DRIFT_PSI_THRESHOLD, and the control plane's report
MIN_PREDICTIONS = 100  # fewer predictions than this never count as drift


def drifted(label_psi: float, confidence_psi: float, predictions: int, *,
            threshold: float = DRIFT_PSI_THRESHOLD, min_predictions: int = MIN_PREDICTIONS) -> bool:
    """The one drift rule both services apply: enough predictions, and either PSI over the threshold."""
    return predictions >= min_predictions and max(label_psi, confidence_psi) > threshold


class DriftMonitor:
    def __init__(self, reference: dict, labels: list[str], *, window_s: float,
                 min_predictions: int = MIN_PREDICTIONS) -> None:
        self.reference = reference
        self.labels = labels
        self.window_s = window_s
        self.min_predictions = min_predictions
        self.windows: dict[int, tuple[list[int], list[int]]] = {}  # window → (label counts, confidence bins)

    @property
    def enabled(self) -> bool:
        return bool(self.reference.get("labels"))

    def observe(self, label: str, confidence: float, now: float) -> None:
        window = int(now // self.window_s * self.window_s)
        if label not in self.labels:
            return  # not a judgement (e.g. a language the model does not judge)
        counts = self.windows.setdefault(window, ([0] * len(self.labels), [0] * (len(CONFIDENCE_BINS) - 1)))
        counts[0][self.labels.index(label)] += 1
        counts[1][confidence_bin(confidence)] += 1
        for old in [w for w in self.windows if w < window - 4 * self.window_s]:
            del self.windows[old]

    def recent(self, now: float) -> tuple[list[int], list[int]]:
        """Counts of the current and the previous window."""
        window = int(now // self.window_s * self.window_s)
        labels = [0] * len(self.labels)
        bins = [0] * (len(CONFIDENCE_BINS) - 1)
        for w in (window, window - int(self.window_s)):
            if w in self.windows:
                labels = [a + b for a, b in zip(labels, self.windows[w][0], strict=False)]
                bins = [a + b for a, b in zip(bins, self.windows[w][1], strict=False)]
        return labels, bins

    def score(self, now: float) -> tuple[float, float, int]:
        """(label PSI, confidence PSI, predictions) over the recent windows."""
        return self.score_counts(*self.recent(now))

    def score_counts(self, labels: list[int], bins: list[int]) -> tuple[float, float, int]:
        """(label PSI, confidence PSI, predictions) of given counts (several workers' summed)."""
        if not self.enabled:
            return 0.0, 0.0, sum(labels)
        expected = [self.reference["labels"].get(name, 0.0) for name in self.labels]
        return psi(expected, labels), psi(self.reference["confidence"], bins), sum(labels)

    def closed(self, after: int, until: int) -> list[tuple[int, list[int], list[int]]]:
        return [(w, c[0], c[1]) for w, c in sorted(self.windows.items()) if after < w <= until]


def drift_report(outputs: list[dict], threshold: float = DRIFT_PSI_THRESHOLD) -> list[dict]:
    """Each node's recent predictions against its model's reference, then all nodes on the same
    model together. ``outputs``: what edges report (scope, model, reference and counts)."""
    rows: list[dict] = []
    merged: dict[str, dict] = {}
    for o in outputs:
        if not o["reference_labels"]:
            continue
        rows.append(_drift_row(o["scope"], o, threshold))
        m = merged.setdefault(o["model"], {**o, "label_counts": [0] * len(o["label_counts"]),
                                           "confidence_counts": [0] * len(o["confidence_counts"])})
        m["label_counts"] = [a + b for a, b in zip(m["label_counts"], o["label_counts"], strict=False)]
        m["confidence_counts"] = [a + b for a, b in zip(m["confidence_counts"], o["confidence_counts"], strict=False)]
    return rows + [_drift_row(f"all {model}", o, threshold) for model, o in sorted(merged.items())]


def _drift_row(scope: str, o: dict, threshold: float) -> dict:
    n = sum(o["label_counts"])
    label_psi = psi(o["reference_labels"], o["label_counts"])
    confidence_psi = psi(o["reference_confidence"], o["confidence_counts"])
    return {"scope": scope, "model": o["model"], "predictions": n, "label_psi": label_psi,
            "confidence_psi": confidence_psi, "drift": drifted(label_psi, confidence_psi, n, threshold=threshold)}
