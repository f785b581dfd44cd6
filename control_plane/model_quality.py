"""Is a canary better than what it replaces? Disagreement rates of sampled, labelled
predictions with 95% intervals (Wilson for one rate, Newcombe's hybrid score interval for
the difference) and a two-sided two-proportion z-test; and, when the operator turns it on
(``CP_CANARY_AUTO``), the gate that acts on it: promote a canary that is better at p < 0.05
with at least ``CP_CANARY_MIN_LABELS`` labels on each side, roll back one that is worse."""

from __future__ import annotations

import logging
import math

import msgspec

from control_plane.registry import BUNDLED

log = logging.getLogger("control_plane.model_quality")

Z95 = 1.959963984540054
MIN_LABELS = 30  # per side, before a comparison says anything


class Comparison(msgspec.Struct, kw_only=True):
    name: str
    candidate: str
    baseline: str
    candidate_labelled: int
    candidate_disagreements: int
    baseline_labelled: int
    baseline_disagreements: int
    difference: float
    low: float
    high: float
    p_value: float
    verdict: str  # better, worse, no_difference_yet, too_few_labels

    @property
    def candidate_rate(self) -> float:
        return self.candidate_disagreements / self.candidate_labelled if self.candidate_labelled else 0.0

    @property
    def baseline_rate(self) -> float:
        return self.baseline_disagreements / self.baseline_labelled if self.baseline_labelled else 0.0


MAX_LABELS_PER_NODE = 1_000_000  # labelled samples one node may claim for one model version
QUALITY_SHARE = 0.75  # one node's share of a version's merged labels (as CP_MAX_NODE_SHARE's default)


def bound_quality(rows: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """A node's (model, labelled, disagreements) as stored: counts non-negative and bounded,
    disagreements never above the labels, at most 100 model versions, names of sane length."""
    out = []
    for model, labelled, disagreements in rows[:100]:
        n = max(0, min(int(labelled), MAX_LABELS_PER_NODE))
        out.append((str(model)[:200], n, max(0, min(int(disagreements), n))))
    return out


def merge_quality(rows, share: float = QUALITY_SHARE) -> dict[str, list[int]]:
    """model -> [labelled, disagreements] over every node, each node's weight share-capped
    (control_plane.influence): one node cannot set the fleet's figure the canary gate acts on."""
    from control_plane.influence import share_factors

    parts: dict[str, dict[str, tuple[int, int]]] = {}
    for node, model, labelled, disagreements in rows:
        parts.setdefault(model, {})[node] = (labelled, min(disagreements, labelled))
    merged = {}
    for model, nodes in parts.items():
        factors = share_factors({n: float(c[0]) for n, c in nodes.items()}, share)
        merged[model] = [sum(int(c[0] * factors[n]) for n, c in nodes.items()),
                         sum(int(c[1] * factors[n]) for n, c in nodes.items())]
    return merged


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    if n <= 0:
        return 0.0, 1.0
    p = min(max(k / n, 0.0), 1.0)  # counts from elsewhere: never a rate outside [0, 1]
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float]:
    """95% interval of p1 − p2 (Newcombe 1998, method 10)."""
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson(k1, n1)
    l2, u2 = wilson(k2, n2)
    d = p1 - p2
    return d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


def two_proportion_p(k1: int, n1: int, k2: int, n2: int) -> float:
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    z = abs(k1 / n1 - k2 / n2) / se
    return math.erfc(z / math.sqrt(2))


def compare(name: str, candidate: str, cand: tuple[int, int], baseline: str, base: tuple[int, int],
            min_labels: int = MIN_LABELS) -> Comparison:
    """``cand`` and ``base``: (labelled, disagreements)."""
    (n1, k1), (n2, k2) = cand, base
    if n1 < min_labels or n2 < min_labels:
        return Comparison(name=name, candidate=candidate, baseline=baseline, candidate_labelled=n1,
                          candidate_disagreements=k1, baseline_labelled=n2, baseline_disagreements=k2,
                          difference=(k1 / n1 if n1 else 0) - (k2 / n2 if n2 else 0), low=-1.0, high=1.0,
                          p_value=1.0, verdict="too_few_labels")
    low, high = newcombe(k1, n1, k2, n2)
    p = two_proportion_p(k1, n1, k2, n2)
    difference = k1 / n1 - k2 / n2
    verdict = "no_difference_yet" if p >= 0.05 else ("better" if difference < 0 else "worse")
    return Comparison(name=name, candidate=candidate, baseline=baseline, candidate_labelled=n1,
                      candidate_disagreements=k1, baseline_labelled=n2, baseline_disagreements=k2,
                      difference=difference, low=low, high=high, p_value=p, verdict=verdict)


def _version(store, sha: str) -> str:
    """A rollout's side as a version: a pushed one, or the fleet's one bundled version."""
    if sha == BUNDLED:
        versions = {ref[1] for n in store.nodes() if (ref := store.node_bundled(n.node_id))}
        return versions.pop() if len(versions) == 1 else ""
    row = store.model(sha=sha) if sha else None
    return row.version if row else ""


def canaries(store, name: str = "", min_labels: int = MIN_LABELS) -> list[Comparison]:
    """For each rollout with a previous version: its current version against that one, on every
    edge's labelled samples so far."""
    merged = merge_quality(store.quality())
    out = []
    for rollout in store.rollouts():
        if name and rollout.name != name:
            continue
        candidate, baseline = _version(store, rollout.current_sha), _version(store, rollout.previous_sha)
        if candidate and baseline and candidate != baseline:
            cand = merged.get(f"{rollout.name} {candidate}", (0, 0))
            base = merged.get(f"{rollout.name} {baseline}", (0, 0))
            out.append(compare(rollout.name, candidate, (cand[0], cand[1]), baseline, (base[0], base[1]), min_labels))
    return out


class CanaryGate:
    """Acts on partial rollouts (a percentage or named nodes) once the labels decide."""

    def __init__(self, store, registry, *, min_labels: int, audit) -> None:
        self.store, self.registry, self.min_labels, self.audit = store, registry, min_labels, audit

    def check(self, now: float) -> list[str]:
        partial = {r.name for r in self.store.rollouts() if r.nodes or r.percent < 100}
        actions = []
        for c in canaries(self.store, min_labels=self.min_labels):
            if c.name not in partial or c.verdict not in ("better", "worse"):
                continue
            detail = (f"{c.name} {c.candidate} vs {c.baseline}: disagreement {c.candidate_rate:.1%} vs "
                      f"{c.baseline_rate:.1%} ({c.candidate_labelled}/{c.baseline_labelled} labels), p={c.p_value:.3g}")
            if c.verdict == "better":
                self.registry.rollout(c.name, c.candidate, None, [], now)
                actions.append(f"promoted {detail}")
            else:
                self.registry.rollback(c.name, now)
                actions.append(f"rolled back {detail}")
            self.audit("canary-gate", "Models.AutoPromote" if c.verdict == "better" else "Models.AutoRollback",
                       actions[-1][:300])
            log.warning("canary gate %s", actions[-1])
        return actions
