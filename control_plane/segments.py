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
cohort merge's per-node cap), and a quarantined node's are left out. The state lives in the
store, so replicas share it; a round is published with compare-and-set on the version.
"""

from __future__ import annotations

import logging
import threading


from control_plane.cohorts import CohortMerge
from control_plane.store import Store
from sentiedge_core.segments import SegmentSet, Summary, bounded, merged, seeded, step

log = logging.getLogger("control_plane.segments")


class SegmentBook:
    def __init__(self, store: Store, cohorts: CohortMerge, *, k: int, decay: float, round_delay_s: float,
                 min_size: int) -> None:
        self.store = store
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
        cap = self.cohorts.cap(node_id)
        kept = []
        for s in sums:
            # Only windows that can have closed within the horizon: a node cannot file sums for
            # made-up windows (in the future, never pruned) to outweigh the others.
            if not now - self.cohorts.horizon_s <= s.window_start <= now:
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
                new = self._seed(current, [s for _, s in due if s.seed], now)
            else:
                new = self._round(current, [s for _, s in due if not s.seed and s.version >= current.version - 1],
                                  now)
            if new is None:
                return False
            applied = [(node, s.window_start, s.version, s.index, s.seed) for node, s in due]
            expected = self.store.segments_version()
            if not self.store.put_segment_set(new, expected, applied, now):
                return False
        log.info("segments v%d: %s", new.version, ", ".join(f"{g.id} {g.label} ({g.last_users})"
                                                             for g in new.segments))
        return True

    def _seed(self, current: SegmentSet, seeds: list[Summary], now: float) -> SegmentSet | None:
        if seeds:  # edges configured alike agree on the dimension; the most common one wins
            dimensions = [len(s.vector_sum) for s in seeds]
            seeds = [s for s in seeds if len(s.vector_sum) == max(set(dimensions), key=dimensions.count)]
        users = sum(s.users for s in seeds)
        if len(seeds) < self.k or users < self.k * self.min_size:
            return None  # not enough yet: the seeds stay pending and more come with the next windows
        return SegmentSet(version=current.version + 1, k=self.k, dimension=len(seeds[0].vector_sum),
                          segments=seeded(seeds, self.k, seed=current.version), updated_at=now)

    def _round(self, current: SegmentSet, sums: list[Summary], now: float) -> SegmentSet:
        by_index: dict[int, list[Summary]] = {}
        for s in sums:
            by_index.setdefault(s.index, []).append(s)
        segments = [step(g, merged(by_index[i], version=current.version, index=i) if i in by_index else None,
                         self.decay) for i, g in enumerate(current.segments)]
        return SegmentSet(version=current.version + 1, k=self.k, dimension=current.dimension, segments=segments,
                          updated_at=now)

    def prune(self, now: float, horizon_s: float) -> None:
        self.store.prune_segment_sums(int(now - horizon_s - 3600))

