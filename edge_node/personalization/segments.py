"""Learned segments on the edge: assign users to the control plane's centroids, sum per window.

A user counts in the segments only with both ``personalization`` (the vector is their
profile's) and ``cohort_analytics`` (the sums leave the node). Within a window each such
user is one member: their latest unit profile vector, assigned to the nearest centroid of
the set in force, with their clipped top affinities. Per window and centroid the node keeps
sums; each member's own record lives only while the window is open, so a withdrawal or a
deletion takes them back out, and a new event moves them (old share out, new share in).

Closed windows leave as :class:`~sentiedge_core.segments.Summary` sums, only for centroids
with at least ``min_size`` members. While the control plane has no centroids yet, members
are seed candidates instead: at most ``seed_sample`` of them per window, clustered here
(k-means) when the window closes, and only clusters of at least ``min_size`` members leave.
"""

from __future__ import annotations

import logging

import msgspec
import numpy as np

from edge_node.personalization import profiles
from edge_node.records import Keys, Profile, SegmentCell, SegmentMember
from edge_node.store import EdgeStore
from sentiedge_core.segments import Segment, SegmentSet, Summary, kmeans, member_categories, nearest, sum_categories

log = logging.getLogger("edge_node.segments")
SEED = -1  # a member's index while no segments exist
CELL_CATEGORIES = 64  # strongest categories a cell keeps


class SegmentRef(msgspec.Struct, kw_only=True):
    """The user's learned segment, as the API shows it."""

    id: str
    label: str


class SegmentBook:
    def __init__(self, store: EdgeStore, tuning: profiles.Tuning, *, dimension: int, window_s: float,
                 min_size: int, seed_sample: int = 512) -> None:
        self.store = store
        self.tuning = tuning
        self.dimension = dimension
        self.window_s = window_s
        self.min_size = min_size
        self.seed_sample = seed_sample
        # A member is placed again at most this often within a window (its latest vector counts;
        # what a user does in the last moments of a window may count in the next one).
        self.refresh_s = min(60.0, window_s / 10)
        self.set = SegmentSet()
        self._centroids: np.ndarray | None = None
        stored = store.value("segments")
        if stored is not None:  # a restarted node assigns before it reconnects
            self._use(msgspec.convert(stored, SegmentSet))

    # --- the set in force ---------------------------------------------------------------------
    @property
    def version(self) -> int:
        return self.set.version

    @property
    def on(self) -> bool:
        return self.set.k > 0

    def apply(self, new: SegmentSet) -> bool:
        """A set from the control plane; False (kept off) when its centroids do not fit this node."""
        if new.segments and (new.dimension != self.dimension
                             or any(len(g.centroid) != self.dimension for g in new.segments)):
            log.error("learned segments v%d have dimension %d but this node's vectors have %d (EDGE_VECTOR_DIM): "
                      "segments stay off here until they agree", new.version, new.dimension, self.dimension)
            new = SegmentSet(version=new.version)
        self.store.set_value("segments", msgspec.to_builtins(new))
        self._use(new)
        return bool(new.k)

    def _use(self, new: SegmentSet) -> None:
        self.set = new
        self._centroids = (np.asarray([g.centroid for g in new.segments], dtype=np.float32)
                           if new.segments else None)

    def vector(self, profile: Profile, now: float) -> tuple[np.ndarray, dict[str, float]]:
        scores = profiles.affinity_scores(profile, now, self.tuning)
        return profiles.vector_of(scores, self.dimension), scores

    def assign(self, vector: np.ndarray) -> Segment | None:
        if self._centroids is None or not np.any(vector):
            return None
        return self.set.segments[nearest(self._centroids, vector)]

    def of(self, vector: np.ndarray) -> SegmentRef | None:
        segment = self.assign(vector)
        return SegmentRef(id=segment.id, label=segment.label) if segment is not None else None

    # --- membership -------------------------------------------------------------------------
    def window_of(self, at: float) -> int:
        return int(at // self.window_s * self.window_s)

    def _open_windows(self, now: float) -> list[int]:
        current = self.window_of(now)
        return [current, current - int(self.window_s)]

    def contribute(self, subject: str, profile: Profile, now: float, *, force: bool = False) -> None:
        """The user's membership in the current window, from their profile now (call inside a
        store transaction, with personalization and cohort_analytics consent checked); ``force``
        places them again even if they were placed moments ago (their profile was merged)."""
        if not self.on:
            return
        window = self.window_of(now)
        old = self.store.get(f"segm|{window}|{subject}", SegmentMember)
        if not force and old is not None and old.version == self.set.version and 0 <= now - old.at < self.refresh_s:
            return  # placed moments ago: a burst of events costs one read, not a placement each
        vector, scores = self.vector(profile, now)
        if not np.any(vector):
            return
        ttl = window + 2 * self.window_s - now
        segment = self.assign(vector)
        new = SegmentMember(version=self.set.version, index=int(segment.id[1:]) - 1 if segment else SEED,
                            vector=vector.tolist(), categories=member_categories(scores), at=now)
        if old is not None:
            self._shift(window, subject, old, -1, ttl)
        self._shift(window, subject, new, +1, ttl)
        self.store.put(f"segm|{window}|{subject}", new, ttl=ttl)

    def _shift(self, window: int, subject: str, member: SegmentMember, sign: int, ttl: float) -> None:
        if member.index == SEED:
            pool = self.store.get(f"segpool|{window}", Keys) or Keys()
            if sign > 0 and subject not in pool.keys and len(pool.keys) < self.seed_sample:
                pool.keys.append(subject)
            elif sign < 0 and subject in pool.keys:
                pool.keys.remove(subject)
            else:
                return
            self.store.put(f"segpool|{window}", pool, ttl=ttl)
            return
        key = f"segc|{window}|{member.version}|{member.index}"
        cell = self.store.get(key, SegmentCell)
        if cell is None:
            if sign < 0:
                return
            cell = SegmentCell(vector_sum=[0.0] * len(member.vector))
            index = self.store.get(f"segcs|{window}", Keys) or Keys()
            index.keys.append(key)
            self.store.put(f"segcs|{window}", index, ttl=ttl)
        cell.users += sign
        cell.vector_sum = (np.asarray(cell.vector_sum) + sign * np.asarray(member.vector)).tolist()
        for c, v in member.categories.items():
            if sign < 0 and c not in cell.categories:
                continue  # capped out of the cell already: nothing of it left to take back
            total = cell.categories.get(c, 0.0) + sign * v
            if sign < 0 and abs(total) < 1e-9:
                cell.categories.pop(c, None)
            else:
                cell.categories[c] = total
        if len(cell.categories) > CELL_CATEGORIES:  # bounded whatever the members send
            cell.categories = dict(sorted(cell.categories.items(), key=lambda kv: -abs(kv[1]))[:CELL_CATEGORIES])
        self.store.put(key, cell, ttl=ttl)

    def withdraw(self, subject: str, now: float) -> int:
        """Take the user out of every open window (call inside a store transaction)."""
        taken = 0
        for window in self._open_windows(now):
            member = self.store.get(f"segm|{window}|{subject}", SegmentMember)
            if member is None:
                continue
            self._shift(window, subject, member, -1, window + 2 * self.window_s - now)
            self.store.delete(f"segm|{window}|{subject}")
            taken += 1
        return taken

    # --- what leaves the node ---------------------------------------------------------------
    def export(self, window: int) -> list[Summary]:
        """A closed window's sums of at least ``min_size`` members: per centroid, or seed clusters."""
        out = []
        index = self.store.get(f"segcs|{window}", Keys)
        for key in index.keys if index else []:
            cell = self.store.get(key, SegmentCell)
            if cell is None or cell.users < self.min_size:
                continue
            _, _, version, i = key.split("|")
            out.append(Summary(window_start=window, version=int(version), index=int(i), users=cell.users,
                               vector_sum=cell.vector_sum, categories=cell.categories))
        if not self.set.segments and self.on:
            out.extend(self._seeds(window))
        return out

    def _seeds(self, window: int) -> list[Summary]:
        pool = self.store.get(f"segpool|{window}", Keys)
        members = [m for m in (self.store.get(f"segm|{window}|{s}", SegmentMember) for s in (pool.keys if pool else []))
                   if m is not None and m.index == SEED and len(m.vector) == self.dimension]
        if len(members) < self.min_size:
            return []
        points = np.asarray([m.vector for m in members], dtype=np.float64)
        # Over-cluster (up to 2k): the control plane groups the pieces, which recovers segments
        # that one edge's own k-means would have merged.
        k = max(1, min(2 * self.set.k, len(members) // self.min_size))
        _, labels = kmeans(points, np.ones(len(points)), k, seed=window)
        out = []
        for j in range(k):
            chosen = [m for m, label in zip(members, labels, strict=False) if label == j]
            if len(chosen) < self.min_size:
                continue  # too few to leave the node
            out.append(Summary(window_start=window, version=self.set.version, index=j, seed=True, users=len(chosen),
                               vector_sum=points[labels == j].sum(axis=0).tolist(),
                               categories=sum_categories(m.categories for m in chosen)))
        return out
