"""Learned segments: federated mini-batch k-means over consenting users' profile vectors.

Both services use what is here: the control plane to seed and update the centroids, the
edges to assign users and to cluster a window's members while no centroids exist yet.

* The control plane holds ``k`` centroids (unit profile vectors live on the unit sphere,
  so centroids are means of unit vectors) and streams them as a :class:`SegmentSet`.
* Each edge assigns a consenting user to the nearest centroid and sums, per closed window
  and centroid, the members' vectors and clipped top affinities (:class:`Summary`); only
  sums of at least the minimum size leave the edge.
* The control plane folds each round's sums in with the mini-batch k-means step of
  Sculley (2010): a centroid moves toward its batch mean by ``n / N`` where ``N`` is its
  (decayed) member count, so it settles as evidence accumulates and still follows a
  population that drifts.
* Seeding without per-user data (after k-FED, Dennis et al. 2021): while no set exists, each
  edge runs k-means on its own window's members and sends the clusters' sums; the control
  plane runs weighted k-means++ and Lloyd over those cluster means.

A segment's label comes from its members' mean affinities (the top categories), never from
one user.
"""

from __future__ import annotations

import math
import re

import msgspec
import numpy as np

from protos.sentiedge.v1 import sync_pb2

TOP_CATEGORIES = 8  # per member summary and per segment description
CATEGORY_CLIP = 3.0  # one member moves a category's sum by at most this much
LABEL_CATEGORIES = 3
SEGMENT_ID = re.compile(r"^s([1-9][0-9]?)$")  # s1..s64


def check_target(segment: str) -> str | None:
    """Why ``segment`` cannot be a rule's or an experiment's target, or None when it can."""
    if segment and not SEGMENT_ID.match(segment):
        return f"segment {segment!r} is not a segment id (s1, s2, ...; see `control-plane segments`)"
    return None


class Summary(msgspec.Struct, kw_only=True):
    """Sums over the members of one centroid (or one seed cluster) in one closed window."""

    window_start: int
    version: int
    index: int
    seed: bool = False
    users: int = 0
    vector_sum: list[float] = []
    categories: dict[str, float] = {}


class Segment(msgspec.Struct, kw_only=True):
    id: str
    label: str
    centroid: list[float]
    users: float = 0.0  # decayed count of the members it was learned from
    last_users: int = 0
    categories: dict[str, float] = {}  # mean affinity per member (top categories)


class SegmentSet(msgspec.Struct, kw_only=True):
    version: int = 0
    k: int = 0
    dimension: int = 0
    segments: list[Segment] = []
    updated_at: float = 0.0


def segment_id(index: int) -> str:
    return f"s{index + 1}"


def member_categories(scores: dict[str, float]) -> dict[str, float]:
    """A member's share of a summary's categories: their top affinities, each clipped."""
    top = sorted(scores.items(), key=lambda kv: -abs(kv[1]))[:TOP_CATEGORIES]
    return {c: max(-CATEGORY_CLIP, min(CATEGORY_CLIP, s)) for c, s in top}


def sum_categories(parts) -> dict[str, float]:
    """Per category, the sum over ``parts`` (dicts of category → value)."""
    total: dict[str, float] = {}
    for part in parts:
        for c, v in part.items():
            total[c] = total.get(c, 0.0) + v
    return total


def merged(summaries: list[Summary], *, window_start: int = 0, version: int = 0, index: int = 0) -> Summary:
    """One summary holding the users, vector sums and category sums of ``summaries``."""
    return Summary(window_start=window_start, version=version, index=index, users=sum(s.users for s in summaries),
                   vector_sum=np.sum([s.vector_sum for s in summaries], axis=0).tolist(),
                   categories=sum_categories(s.categories for s in summaries))


def describe(category_sums: dict[str, float], users: float) -> tuple[str, dict[str, float]]:
    """(label, mean affinities of the top categories) from summed member categories."""
    if users <= 0:
        return "", {}
    means = {c: s / users for c, s in category_sums.items()}
    top = dict(sorted(means.items(), key=lambda kv: -kv[1])[:TOP_CATEGORIES])
    liked = [c for c, m in top.items() if m > 0][:LABEL_CATEGORIES]
    return (" + ".join(liked) if liked else "no clear interest"), {c: round(m, 4) for c, m in top.items()}


def nearest(centroids: np.ndarray, vector: np.ndarray) -> int:
    """Index of the centroid closest (Euclidean) to ``vector``; centroids is (k, dim)."""
    return int(np.argmin(((centroids - vector) ** 2).sum(axis=1)))


def kmeans(points: np.ndarray, weights: np.ndarray, k: int, *, seed: int = 0, restarts: int = 10,
           iterations: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Weighted k-means: the best (least weighted inertia) of ``restarts`` runs of k-means++
    seeding then Lloyd, as scikit-learn's ``n_init``. Returns (centers (k', dim), labels),
    k' = min(k, points)."""
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    w = np.asarray(weights, dtype=np.float64)
    for run in range(restarts):
        centers, labels = _lloyd(points, w, k, seed=seed * 1000 + run, iterations=iterations)
        inertia = float((w * ((points - centers[labels]) ** 2).sum(axis=1)).sum())
        if best is None or inertia < best[0]:
            best = (inertia, centers, labels)
    assert best is not None, "restarts must be at least 1"
    return best[1], best[2]


def _lloyd(points: np.ndarray, w: np.ndarray, k: int, *, seed: int, iterations: int) -> tuple[np.ndarray, np.ndarray]:
    n = len(points)
    k = min(k, n)
    rng = np.random.default_rng(seed)
    chosen = [int(rng.choice(n, p=w / w.sum()))]
    d2 = ((points - points[chosen[0]]) ** 2).sum(axis=1)
    for _ in range(1, k):
        p = w * d2
        if p.sum() <= 0:  # every point sits on a chosen one
            break
        chosen.append(int(rng.choice(n, p=p / p.sum())))
        d2 = np.minimum(d2, ((points - points[chosen[-1]]) ** 2).sum(axis=1))
    centers = points[chosen].astype(np.float64)
    labels = np.zeros(n, dtype=np.int64)
    for iteration in range(iterations):
        dist = ((points[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2)
        new = dist.argmin(axis=1)
        for j in range(len(centers)):
            mask = new == j
            if mask.any():
                centers[j] = (points[mask] * w[mask, None]).sum(axis=0) / w[mask].sum()
        if iteration > 0 and (new == labels).all():
            break
        labels = new
    return centers, labels


def step(segment: Segment, batch: Summary | None, decay: float) -> Segment:
    """One mini-batch k-means update of a segment with the summed batch of its members."""
    users = segment.users * decay
    if batch is None or batch.users <= 0:
        return msgspec.structs.replace(segment, users=users, last_users=0)
    users += batch.users
    rate = batch.users / users
    old = np.asarray(segment.centroid)
    centroid = old + rate * (np.asarray(batch.vector_sum) / batch.users - old)
    # Category means follow the same running mean: the decayed history's sums plus the batch's.
    history = {c: m * segment.users * decay for c, m in segment.categories.items()}
    label, categories = describe(sum_categories([history, batch.categories]), users)
    return Segment(id=segment.id, label=label, centroid=centroid.tolist(), users=users, last_users=batch.users,
                   categories=categories)


def seed_clusters(summaries: list[Summary], k: int, *, seed: int = 0,
                  weights: list[float] | None = None) -> np.ndarray:
    """Which of k centroids each seed cluster falls in: weighted k-means over the clusters' means
    (``weights``: their users unless given)."""
    points = np.asarray([np.asarray(s.vector_sum) / s.users for s in summaries])
    w = np.asarray([s.users for s in summaries] if weights is None else weights, dtype=np.float64)
    return kmeans(points, w, k, seed=seed)[1]


def seeded(summaries: list[Summary], k: int, *, seed: int = 0) -> list[Segment]:
    """The first centroids: weighted k-means over the edges' seed clusters (their means)."""
    labels = seed_clusters(summaries, k, seed=seed)
    clusters = [[s for s, label in zip(summaries, labels, strict=False) if label == j]
                for j in range(int(labels.max()) + 1)]
    return [segment_from(segment_id(j), merged(c)) for j, c in enumerate(c for c in clusters if c)]


def segment_from(segment: str, cluster: Summary) -> Segment:
    """A seeded segment from the merged seed clusters it was learned from."""
    label, categories = describe(cluster.categories, cluster.users)
    centroid = np.asarray(cluster.vector_sum) / max(cluster.users, 1)
    return Segment(id=segment, label=label, centroid=centroid.tolist(), users=float(cluster.users),
                   last_users=cluster.users, categories=categories)


def scaled(s: Summary, factor: float) -> Summary:
    """``s`` with its users (rounded down) and sums scaled by ``factor`` ≤ 1: the same means, less weight."""
    if factor >= 1.0:
        return s
    return msgspec.structs.replace(s, users=int(math.floor(s.users * factor)),
                                   vector_sum=(np.asarray(s.vector_sum) * factor).tolist(),
                                   categories={c: v * factor for c, v in s.categories.items()})


def bounded(s: Summary, cap: int, dimension: int) -> Summary | None:
    """A summary clipped to what ``cap`` users with unit vectors and clipped affinities can sum
    to; None when it cannot be used at all (wrong dimension, no users, not finite)."""
    if s.users <= 0 or len(s.vector_sum) != dimension or not all(map(math.isfinite, s.vector_sum)):
        return None
    users = min(s.users, cap)
    vector = np.asarray(s.vector_sum, dtype=np.float64)
    norm = float(np.linalg.norm(vector))
    if norm > users:
        vector *= users / norm
    categories = dict(sorted(((c, max(-users * CATEGORY_CLIP, min(users * CATEGORY_CLIP, v)))
                              for c, v in s.categories.items() if math.isfinite(v)),
                             key=lambda kv: -abs(kv[1]))[:4 * TOP_CATEGORIES])
    return Summary(window_start=s.window_start, version=s.version, index=s.index, seed=s.seed, users=users,
                   vector_sum=vector.tolist(), categories=categories)


# --- the wire ------------------------------------------------------------------------------
def summary_to_proto(s: Summary) -> sync_pb2.SegmentAggregate:
    return sync_pb2.SegmentAggregate(window_start=s.window_start, version=s.version, index=s.index, seed=s.seed,
                                     users=s.users, vector_sum=s.vector_sum, categories=s.categories)


def summary_from_proto(m: sync_pb2.SegmentAggregate) -> Summary:
    return Summary(window_start=m.window_start, version=m.version, index=m.index, seed=m.seed, users=m.users,
                   vector_sum=list(m.vector_sum), categories=dict(m.categories))


def set_to_proto(s: SegmentSet) -> sync_pb2.SegmentSet:
    return sync_pb2.SegmentSet(version=s.version, k=s.k, dimension=s.dimension, updated_at=s.updated_at, segments=[
        sync_pb2.Segment(id=g.id, label=g.label, centroid=g.centroid, users=g.users, last_users=g.last_users,
                         categories=g.categories) for g in s.segments])


def set_from_proto(m: sync_pb2.SegmentSet) -> SegmentSet:
    return SegmentSet(version=m.version, k=m.k, dimension=m.dimension, updated_at=m.updated_at, segments=[
        Segment(id=g.id, label=g.label, centroid=list(g.centroid), users=g.users, last_users=g.last_users,
                categories=dict(g.categories)) for g in m.segments])
