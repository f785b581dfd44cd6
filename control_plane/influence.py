"""One node, bounded influence: the per-node share cap every merge of edges' numbers applies.

Every merge on the control plane sums what several nodes claim (users in a cohort cell,
members of a centroid, exposures of an experiment arm). A credentialed node can still lie
about its numbers, so no merge takes a claim at face value: where two or more nodes report
the same merged output, each node's weight ``w_i`` is scaled down to at most

    ρ · Σ_{j≠i} w_j,   ρ = share / (1 − share)

(every node's cap computed from the others' claims, all at once, so the order of arrival does
not matter). A node scaled down keeps its means (every sum it sent is scaled by the same
factor); it loses weight. With ``share`` ≥ 1/2 this bounds one node's weight in the merged
output by ``share``: if no other node was scaled, ``c_i ≤ ρ·Σ c_j`` gives ``c_i / Σ c ≤ share``;
if another node ``h`` was scaled, ``c_h ≥ ρ·w_i ≥ ρ·c_i`` gives ``c_i / Σ c ≤ 1/(1+ρ) = 1 − share
≤ share``. So one node moves any per-unit mean of the merged output (a cohort's mean sentiment,
a centroid, a conversion rate) by at most ``share`` times that mean's range. (Below 1/2 no
rule can hold with two nodes: one of the two always has at least half.) A node alone in a
merged output is bounded only by what the merge's own per-node limits allow; each merge says
which.

The rule is symmetric (nobody knows which node lies), so it also scales an honest node that
outweighs all the others: at ``share`` 0.75 a node counts at most three times the rest
together. That is the price of the bound, and why the default is not 1/2: at 1/2 two nodes
always count alike, and a small liar would pull a large honest node down to its own size.
The per-node caps that grow with time (cohorts) are what keep a *new* liar small.
"""

from __future__ import annotations

import math

MIN_SHARE = 0.5


def share_factors(weights: dict[str, float], share: float, floor: float = 0.0) -> dict[str, float]:
    """Per node, the factor in [0, 1] its contribution is scaled by so that its weight is at
    most ``share/(1−share)`` times the other nodes' claimed weights (or times ``floor`` when
    they claim less: a node cannot shrink the others below ``floor`` by claiming almost
    nothing); 1.0 for a node alone."""
    if not MIN_SHARE <= share < 1:
        raise ValueError(f"a node share must be in [{MIN_SHARE}, 1), got {share}")
    ratio = share / (1.0 - share)
    clean = {n: (w if math.isfinite(w) and w > 0 else 0.0) for n, w in weights.items()}
    total = sum(clean.values())
    contributing = sum(1 for w in clean.values() if w > 0)
    out = {}
    for node, w in clean.items():
        if w <= 0 or contributing < 2:
            out[node] = 1.0
        else:
            out[node] = min(1.0, ratio * max(total - w, floor) / w)
    return out


def present_share_factors(weights: dict[str, float], share: float, floor: float) -> dict[str, float]:
    """As :func:`share_factors`, but every node in ``weights`` is present, whether it claims
    anything or not: a node is alone only where no other node reports at all. Where others are
    present and claim nothing, a node counts at most ``share/(1−share)`` times ``floor``."""
    if len(weights) < 2:
        return {node: 1.0 for node in weights}
    ratio = share / (1.0 - share)
    clean = {n: (w if math.isfinite(w) and w > 0 else 0.0) for n, w in weights.items()}
    total = sum(clean.values())
    return {node: 1.0 if w <= 0 else min(1.0, ratio * max(total - w, floor) / w) for node, w in clean.items()}
