"""Federated head adaptation: what is trained, how an edge trains it, and what it costs in privacy.

The trained parameters ``θ`` are a flat vector: the transformer head's margin direction
``v`` (its dimension, 384 for MiniLM) and offset ``c`` — a two-label margin
``(w₁−w₀)·x + (b₁−b₀)`` depends on nothing else — then each route's stacker
``[w_fast, w_transformer, bias]`` (short, long). The fast stage, the routing and the
thin stacker (bundles 1.4.1+: its own stacker for the shortest texts) stay as they are;
texts that the thin stacker answers train neither route's stacker.

An edge trains ``θ`` on its labelled samples' features (pooled encoder outputs, the fast
stage's margins, each text's route and whether it escalated), all computed and kept on
the edge, and returns only ``Δθ``, clipped to an L2 norm of ``clip``; optionally with
Gaussian noise of standard deviation ``σ·clip`` drawn on the edge. Because any set of
labels gives an update inside the clip ball, replacing *all* of an edge's labels moves
its update by at most ``2·clip``: each noisy round is a Gaussian mechanism of sensitivity
``2·clip``, whose Rényi DP is ``ε(α) = 2α/σ²`` (Mironov 2017). Rounds and jobs compose
by adding these, and the (ε, δ) reported is ``min_α ε(α) + log(1/δ)/(α−1)``. The unit
protected is an edge's whole label set for the model (so every single label too).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import msgspec
import numpy as np

from protos.sentiedge.v1 import common_pb2, sync_pb2
from sentiedge_core.bundle import CascadeSpec
from sentiedge_core.cascade import is_long, sigmoid, thin_stacked
from sentiedge_core.stages import Head

STACKER = 3


class Round(msgspec.Struct, frozen=True, kw_only=True):
    """One adaptation round as the control plane publishes it and an edge works on it."""

    job: str
    round: int  # 0-based
    rounds: int
    name: str
    version: str
    manifest_sha: str
    dimension: int
    theta: list[float]
    steps: int  # local Newton steps
    regularization: float  # L2 pull towards theta
    clip: float  # L2 bound of the update
    noise_multiplier: float  # Gaussian noise std / clip, drawn on the edge; 0: none
    min_labels: int


def round_to_proto(r: Round) -> sync_pb2.AdaptationRound:
    return sync_pb2.AdaptationRound(
        job=r.job, round=r.round, rounds=r.rounds,
        model=common_pb2.ModelRef(name=r.name, version=r.version, manifest_sha256=r.manifest_sha),
        dimension=r.dimension, theta=r.theta, steps=r.steps, regularization=r.regularization, clip=r.clip,
        noise_multiplier=r.noise_multiplier, min_labels=r.min_labels)


def round_from_proto(m: sync_pb2.AdaptationRound) -> Round:
    return Round(job=m.job, round=m.round, rounds=m.rounds, name=m.model.name, version=m.model.version,
                 manifest_sha=m.model.manifest_sha256, dimension=m.dimension, theta=list(m.theta), steps=m.steps,
                 regularization=m.regularization, clip=m.clip, noise_multiplier=m.noise_multiplier,
                 min_labels=m.min_labels)


def size(dimension: int) -> int:
    """Length of θ for a head of this width."""
    return dimension + 1 + 2 * STACKER


def initial(head: Head, spec: CascadeSpec) -> np.ndarray:
    direction, offset = head.margin_parameters()
    return np.concatenate([direction, [offset], spec.short.stacker, spec.long.stacker]).astype(np.float64)


def split(theta: np.ndarray, dimension: int) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    theta = np.asarray(theta, np.float64)
    if theta.shape != (size(dimension),):
        raise ValueError(f"parameters have {theta.size} values, a head of width {dimension} needs {size(dimension)}")
    d = dimension
    return theta[:d], float(theta[d]), theta[d + 1: d + 4], theta[d + 4: d + 7]


def apply(head: Head, spec: CascadeSpec, theta: np.ndarray) -> tuple[Head, CascadeSpec]:
    """The head and cascade that ``θ`` describes, changing ``head`` as little as possible: the
    margin's change is split evenly between the two label rows."""
    direction, offset, short, long = split(theta, head.dimension)
    old_direction, old_offset = head.margin_parameters()
    dv, dc = (direction - old_direction) / 2, (offset - old_offset) / 2
    w = np.asarray(head.weights, np.float64)
    new_head = Head(weights=[(w[0] - dv).tolist(), (w[1] + dv).tolist()],
                    bias=[head.bias[0] - dc, head.bias[1] + dc])

    new_spec = msgspec.structs.replace(
        spec, short=msgspec.structs.replace(spec.short, stacker=[float(x) for x in short]),
        long=msgspec.structs.replace(spec.long, stacker=[float(x) for x in long]))
    return new_head, new_spec


@dataclass
class Examples:
    """One edge's labelled samples, as features (never leaves the edge)."""

    pooled: np.ndarray  # [n, dimension]
    fast: np.ndarray  # [n] fast-stage margins
    tokens: np.ndarray  # [n] fast-tokenizer token counts (the route)
    escalated: np.ndarray  # [n] bool: the transformer and stacker answer these
    y: np.ndarray  # [n] 1 = the bundle's second label ("positive")

    def __len__(self) -> int:
        return int(self.y.size)


def _objective(x: np.ndarray, y: np.ndarray, w: np.ndarray, anchor: np.ndarray, l2: float) -> float:
    z = x @ w
    # mean cross-entropy, computed stably: log(1 + e^z) − y·z
    return float(np.mean(np.logaddexp(0.0, z) - y * z) + 0.5 * l2 * np.sum((w - anchor) ** 2))


def _newton_step(x: np.ndarray, y: np.ndarray, w: np.ndarray, anchor: np.ndarray, l2: float) -> np.ndarray:
    """One damped Newton step on mean cross-entropy plus ``l2/2·|w − anchor|²`` (a pull
    towards the parameters the round started from, so few labels move them little). The
    problem is strictly convex and small (the head's width + 1): backtracking keeps every
    step a descent, and a few steps reach the optimum."""
    p = sigmoid(x @ w)
    n = max(1, y.size)
    grad = x.T @ (p - y) / n + l2 * (w - anchor)
    hessian = (x * (p * (1 - p))[:, None]).T @ x / n + l2 * np.eye(w.size)
    step = np.linalg.solve(hessian, grad)
    before, slope = _objective(x, y, w, anchor, l2), float(grad @ step)
    t = 1.0
    while t > 1e-4 and _objective(x, y, w - t * step, anchor, l2) > before - 0.25 * t * slope:
        t *= 0.5
    return w - t * step if t > 1e-4 else w


def local_update(theta: np.ndarray, data: Examples, spec: CascadeSpec, *, steps: int, l2: float) -> np.ndarray:
    """Δθ after ``steps`` Newton steps on this edge's examples.

    The head learns from every example (the transformer stage on its own); each route's
    stacker from the examples it would answer (escalated on that route), reading the head's
    current margin. Both losses are convex in what they train; ``l2`` is the pull towards θ."""
    dimension = data.pooled.shape[1]
    direction, offset, short, long = split(theta, dimension)
    w_head = np.r_[direction, offset]
    anchor_head = w_head.copy()
    x_head = np.c_[data.pooled.astype(np.float64), np.ones(len(data))]
    long_route = is_long(data.tokens, spec)
    # Escalated texts the thin stacker answers train neither route's stacker (it is kept as shipped).
    own = ~thin_stacked(data.tokens, spec)
    routes = [(short.copy(), short.copy(), data.escalated & ~long_route & own),
              (long.copy(), long.copy(), data.escalated & long_route)]
    y = data.y.astype(np.float64)
    for _ in range(max(0, steps)):
        w_head = _newton_step(x_head, y, w_head, anchor_head, l2)
    margin = x_head @ w_head
    for stacker, anchor, mask in routes:
        if mask.any():
            x = np.c_[data.fast[mask], margin[mask], np.ones(int(mask.sum()))]
            for _ in range(max(0, steps)):
                stacker[:] = _newton_step(x, y[mask], stacker, anchor, l2)
    new = np.concatenate([w_head, routes[0][0], routes[1][0]])
    return new - np.asarray(theta, np.float64)


def clip(delta: np.ndarray, bound: float) -> np.ndarray:
    norm = float(np.linalg.norm(delta))
    return delta * min(1.0, bound / norm) if norm > 0 else delta


def noised(delta: np.ndarray, sigma: float, bound: float, rng: np.random.Generator) -> np.ndarray:
    if sigma <= 0:
        return delta
    return delta + rng.normal(0.0, sigma * bound, size=delta.shape)


NOISE_TAIL = 6.0  # t of the norm bound: an honest noisy update is refused with probability ≤ exp(−t²/2) ≈ 1.5e-8
TRIM = 0.2  # the trimmed mean cuts this fraction of the values at each end (Flower's FedTrimmedAvg beta)


def norm_bound(clip: float, sigma: float, size: int, tail: float = NOISE_TAIL) -> float:
    """The largest L2 norm an honest update can plausibly have: ``clip + σ·clip·(√d + t)``.

    An honest edge sends ``Δ + σ·clip·z`` with ``‖Δ‖ ≤ clip`` and ``z`` standard normal in ``d``
    dimensions, so ``‖update‖ ≤ clip + σ·clip·‖z‖``. ``‖z‖`` is 1-Lipschitz in ``z`` with
    ``E‖z‖ ≤ √d``, and the Gaussian concentration inequality gives
    ``P(‖z‖ ≥ √d + t) ≤ exp(−t²/2)``: at ``t = 6`` an honest update is refused with probability
    at most 1.5·10⁻⁸ per round. (The bound this replaces, ``clip + 6σ·clip·√d``, let through
    updates ~6 times larger than any noise: 239 where honest updates are ≤ 53.6 at σ = 1,
    clip 2, d = 391.) Without noise the edge clipped it: ``clip`` (and float rounding)."""
    return clip * (1 + 1e-6) + sigma * clip * (math.sqrt(size) + tail)


def robust_mean(updates: list[np.ndarray], trim: float = TRIM) -> np.ndarray:
    """The round's aggregate, every edge weighted alike (a label count is the edge's word, not
    evidence): the mean of one or two updates; from three, the coordinate-wise trimmed mean
    cutting ``max(1, ⌊trim·n⌋)`` values at each end (three or four updates: the median or the
    mean of the middle two). With at least one value cut at each end, each coordinate of the
    aggregate lies between the smallest and the largest value the *other* edges sent, whatever
    one edge sends (Yin et al. 2018; Flower's FedTrimmedAvg and FedMedian)."""
    if not updates:
        raise ValueError("no update to average")
    stacked = np.stack([np.asarray(u, np.float64) for u in updates])
    n = len(updates)
    if n < 3:
        return stacked.mean(axis=0)
    cut = max(1, int(trim * n))
    return np.sort(stacked, axis=0)[cut:n - cut].mean(axis=0)


def fedavg(updates: list[tuple[np.ndarray, int]]) -> np.ndarray:
    """The mean update, each edge weighted by its label count (the offline bench's arithmetic;
    the control plane uses :func:`robust_mean`, never a claimed count)."""
    total = sum(count for _, count in updates)
    if not updates or total <= 0:
        raise ValueError("no update to average")
    return np.asarray(sum(delta * (count / total) for delta, count in updates))


# -- privacy accounting ------------------------------------------------------------------

def rdp_coefficient(rounds: int, sigma: float) -> float:
    """c in ε(α) = c·α for ``rounds`` noisy rounds at noise multiplier σ (∞ without noise)."""
    if rounds <= 0:
        return 0.0
    return math.inf if sigma <= 0 else 2.0 * rounds / sigma ** 2


def epsilon(coefficient: float, delta: float) -> float:
    """(ε, δ) from Rényi DP ε(α) = c·α: minimised over α > 1 at α = 1 + √(log(1/δ)/c)."""
    if coefficient <= 0:
        return 0.0
    if math.isinf(coefficient):
        return math.inf
    log_term = math.log(1.0 / delta)
    return coefficient + 2.0 * math.sqrt(coefficient * log_term)


def sigma_for(target: float, rounds: int, delta: float, spent: float = 0.0) -> float:
    """The smallest noise multiplier keeping a lineage's total ε at ``target`` after
    ``rounds`` more rounds, given the RDP coefficient ``spent`` already."""
    if math.isinf(spent):
        raise ValueError("a round without noise already ran on this lineage: no (epsilon, delta) bound can be "
                         "promised for its labels any more")
    log_term = math.log(1.0 / delta)
    allowed = (math.sqrt(log_term + target) - math.sqrt(log_term)) ** 2 - spent
    if allowed <= 0:
        raise ValueError(f"the privacy budget ε={target:g} is spent for this lineage "
                         f"(ε so far {epsilon(spent, delta):.3g})")
    return math.sqrt(2.0 * rounds / allowed)
