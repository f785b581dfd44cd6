"""Learned segments on the control plane: seed the centroids, fold in each round, publish.

Edges send, per closed window, sums over the members of each centroid of the published set
(or, before any set exists, their own seed clusters); :meth:`SegmentBook.ingest` bounds and
stores them once per node, window, set version and centroid. :meth:`SegmentBook.advance`
runs a round when sums have waited ``round_delay_s`` (so that every edge's sums of the same
window go into the same round): the first round seeds ``k`` centroids by weighted k-means
over the seed clusters, later rounds apply one mini-batch k-means step per centroid
(:func:`sentiedge_core.segments.step`) and publish a new version, which every stream sends.

Sums for the version before the current one still count (edges whose window closed as the
set changed); older ones are dropped. A node's sums are bounded like its cohort cells (the
cohort merge's per-node cap, which grows with time), and a quarantined node's are left out.
The state lives in the store, so replicas share it; a round is published with compare-and-set
on the version.

One node, bounded influence (see :mod:`control_plane.influence`; ``share`` is
``CP_MAX_NODE_SHARE``, 0.75):

* Seeding waits for seed clusters from ``seed_min_nodes`` (2) distinct nodes. With ``N`` nodes
  sending seeds, a node may be the only source of at most ⌈k/N⌉ centroids: when k-means gives
  it more clusters made of its seeds alone, its lightest such clusters are dropped and k-means
  runs again. In a centroid seeded from several nodes, each node's seeds count for at most
  ``share`` of its weight (its users, its position and its label's category means). So one
  heartbeat of 16 seed clusters from one node seeds nothing, and one node among N places at
  most ⌈k/N⌉ of the k centroids by itself.
* In each round, where two or more nodes report a centroid, one node's sums count for at most
  ``share`` of that centroid's batch: it moves the batch mean by at most ``share`` × 2 (unit
  vectors) and the centroid by at most that times the step's rate ``n/N``. A centroid only it
  reports moves as far as its per-node cap of users allows.
"""

from __future__ import annotations

import logging
import math
import threading

from control_plane.cohorts import CohortMerge
from control_plane.influence import share_factors
from control_plane.intake import misaligned
from control_plane.store import Store
from sentiedge_core.segments import (
    Segment,
    SegmentSet,
    Summary,
    bounded,
    merged,
    scaled,
    seed_clusters,
    segment_from,
    segment_id,
    step,
)

log = logging.getLogger("control_plane.segments")


class SegmentBook:
    def __init__(self, store: Store, cohorts: CohortMerge, *, k: int, decay: float, round_delay_s: float,
                 min_size: int, seed_min_nodes: int = 2) -> None:
        self.store = store
        self.seed_min_nodes = seed_min_nodes
        self.cohorts = cohorts  # the per-node bound of what one node may report
        self.k = k
        self.decay = decay
        self.round_delay_s = round_delay_s
        self.min_size = min_size
        self._lock = threading.Lock()
        if k and store.segment_set() is None:
            store.put_segment_set(SegmentSet(k=k), -1, [], 0.0)

    def current(self) -> SegmentSet:
        found = self.store.segment_set()
        if found is None or found.k != self.k:  # off, or k changed: the set starts over
            return SegmentSet(k=self.k, version=(found.version + 1) if found else 0)
        return found

    def version(self) -> int:
        return self.store.segments_version()

    def ingest(self, node_id: str, sums: list[Summary], now: float) -> int:
        """Store a node's sums, bounded; returns how many were refused."""
        if not sums or not self.k:
            return 0
        current = self.current()
        cap = self.cohorts.cap(node_id, now)
        kept = []
        for s in sums:
            # Only windows that can have closed within the horizon: a node cannot file sums for
            # made-up windows (in the future, never pruned) to outweigh the others.
            if not now - self.cohorts.horizon_s <= s.window_start <= now \
                    or misaligned(s.window_start, self.cohorts.window_s):  # nor cut the windows finer
                continue
            if current.segments:  # a round's sums: against this set or the one before it, a known centroid
                usable = not s.seed and current.version - 1 <= s.version <= current.version \
                    and s.index < len(current.segments)
                dimension = current.dimension
            else:  # nothing published yet: only seed clusters help (an edge makes at most 2k per window)
                usable, dimension = s.seed and s.index < 2 * self.k, len(s.vector_sum)
            b = bounded(s, cap, dimension) if usable and s.users >= self.min_size else None
            if b is not None:
                kept.append(b)
        if kept:
            self.store.put_segment_sums(node_id, kept, now)
        return len(sums) - len(kept)

    def advance(self, now: float) -> bool:
        """Run a round if sums are due; True when a new set was published."""
        if not self.k:
            return False
        with self._lock:
            current = self.current()
            quarantined = self.store.quarantined()
            pending = [(node, at, s) for node, at, s in self.store.pending_segment_sums() if node not in quarantined]
            if not pending or pending[0][1] > now - self.round_delay_s:
                return False
            due = [(node, s) for node, at, s in pending if at <= now - self.round_delay_s]
            if not current.segments:
                new = self._seed(current, [(node, s) for node, s in due if s.seed], now)
            else:
                new = self._round(current, [(node, s) for node, s in due
                                            if not s.seed and s.version >= current.version - 1], now)
            if new is None:
                return False
            applied = [(node, s.window_start, s.version, s.index, s.seed) for node, s in due]
            expected = self.store.segments_version()
            if not self.store.put_segment_set(new, expected, applied, now):
                return False
        log.info("segments v%d: %s", new.version, ", ".join(f"{g.id} {g.label} ({g.last_users})"
                                                             for g in new.segments))
        return True

    def _seed(self, current: SegmentSet, seeds: list[tuple[str, Summary]], now: float) -> SegmentSet | None:
        if seeds:  # edges configured alike agree on the dimension; the most common one wins
            dimensions = [len(s.vector_sum) for _, s in seeds]
            common = max(set(dimensions), key=dimensions.count)
            seeds = [(node, s) for node, s in seeds if len(s.vector_sum) == common]
        nodes = {node for node, _ in seeds}
        if len(nodes) < self.seed_min_nodes:
            return None  # one node's seeds are one node's opinion: wait for others
        quota = math.ceil(self.k / len(nodes))
        seed = current.version
        while True:
            if len(seeds) < self.k or sum(s.users for _, s in seeds) < self.k * self.min_size:
                return None  # not enough yet: the seeds stay pending and more come with the next windows
            # Each node's seeds weigh at most its share of all seeds' users.
            totals: dict[str, float] = {}
            for node, s in seeds:
                totals[node] = totals.get(node, 0.0) + s.users
            factors = share_factors(totals, self.cohorts.max_node_share, self.min_size)
            labels = seed_clusters([s for _, s in seeds], self.k, seed=seed,
                                   weights=[s.users * factors[node] for node, s in seeds])
            clusters: dict[int, list[tuple[str, Summary]]] = {}
            for (node, s), label in zip(seeds, labels, strict=False):
                clusters.setdefault(int(label), []).append((node, s))
            alone: dict[str, list[int]] = {}  # node -> clusters made of its seeds alone
            for label, members in clusters.items():
                owners = {node for node, _ in members}
                if len(owners) == 1:
                    alone.setdefault(owners.pop(), []).append(label)
            dropped = set()
            for labels_alone in alone.values():
                if len(labels_alone) > quota:  # keep its heaviest quota clusters, drop the rest
                    by_weight = sorted(labels_alone, key=lambda c: -sum(s.users for _, s in clusters[c]))
                    dropped.update(by_weight[quota:])
            if not dropped:
                break
            log.warning("segment seeding: %d cluster(s) of seeds from one node alone over its quota of %d dropped",
                        len(dropped), quota)
            seeds = [m for label, members in clusters.items() if label not in dropped for m in members]
        segments: list[Segment] = []
        for label in sorted(clusters):
            members = clusters[label]
            weights: dict[str, float] = {}
            for node, s in members:
                weights[node] = weights.get(node, 0.0) + s.users
            factors = share_factors(weights, self.cohorts.max_node_share, self.min_size)
            cluster = merged([scaled(s, factors[node]) for node, s in members])
            if cluster.users > 0:
                segments.append(segment_from(segment_id(len(segments)), cluster))
        return SegmentSet(version=current.version + 1, k=self.k, dimension=len(seeds[0][1].vector_sum),
                          segments=segments, updated_at=now)

    def _round(self, current: SegmentSet, sums: list[tuple[str, Summary]], now: float) -> SegmentSet:
        by_index: dict[int, dict[str, list[Summary]]] = {}
        for node, s in sums:
            by_index.setdefault(s.index, {}).setdefault(node, []).append(s)
        batches: dict[int, Summary] = {}
        for i, parts in by_index.items():
            # Each node's sums for this centroid (over its windows) count for at most its share.
            per_node = {node: merged(p, version=current.version, index=i) for node, p in parts.items()}
            factors = share_factors({node: float(s.users) for node, s in per_node.items()},
                                    self.cohorts.max_node_share, self.min_size)
            batches[i] = merged([scaled(s, factors[node]) for node, s in per_node.items()], version=current.version,
                                index=i)
        segments = [step(g, batches.get(i), self.decay) for i, g in enumerate(current.segments)]
        return SegmentSet(version=current.version + 1, k=self.k, dimension=current.dimension, segments=segments,
                          updated_at=now)

    def prune(self, now: float, horizon_s: float) -> None:
        self.store.prune_segment_sums(int(now - horizon_s - 3600))

