"""Cohort merge: every edge's aggregates per window and cohort, summed; small cohorts hidden.

Edges resend a closed window until its heartbeat is receipted; a resend replaces that edge's
row rather than adding to it, so nothing is counted twice. Priors for cold start are the
merged cohorts over the horizon; they stream back to every edge.

One edge cannot poison the fleet. Each aggregate is bounded before it is stored: users at
most ``max_node_users`` and at most ``growth`` times the largest cell that node reported
before (a new node starts at ``new_node_users`` and can double per heartbeat),
every sum clipped to what that many
users can contribute (the edges' own per-user clips). An operator can quarantine a node:
its aggregates are then left out of every merge until released.
"""

from __future__ import annotations

import threading

from control_plane.store import Store
from sentiedge_core.cohorts import Aggregate, add as _add

SENTIMENT_PER_USER = 1.0  # the edges' per-user clips (edge_node.personalization.cohorts)
CATEGORY_PER_USER = 3.0
EVENTS_PER_USER = 1000


class CohortMerge:
    def __init__(self, store: Store, *, min_size: int, horizon_s: float, max_node_users: int = 10_000,
                 growth: float = 2.0, new_node_users: int = 100) -> None:
        self.store = store
        self.min_size = min_size
        self.horizon_s = horizon_s
        self.max_node_users = max_node_users
        self.growth = growth
        self.new_node_users = new_node_users
        self.version = 0  # bumped when new aggregates arrive
        self._largest: dict[str, int] = {}  # node -> largest cell it reported (accepted)
        self._lock = threading.Lock()  # streams and operator calls run in worker threads

    def cap(self, node_id: str) -> int:
        """Most users this node may report per cell now: ``growth`` times its largest cell so far
        (``new_node_users`` for a node with no history), never over ``max_node_users``."""
        largest = self._largest.get(node_id)
        if largest is None:
            largest = self._largest[node_id] = self.store.largest_cell(node_id)
        return min(self.max_node_users, max(self.new_node_users, int(largest * self.growth)))

    def bound(self, a: Aggregate, cap: int) -> tuple[Aggregate, bool]:
        """The aggregate clipped to what ``cap`` users can contribute; True if it was clipped."""
        users = min(a.users, cap)
        events = min(a.events, users * EVENTS_PER_USER)
        texts = min(a.texts, events)
        bounded = Aggregate(
            window_start=a.window_start, window_seconds=a.window_seconds, cohort=a.cohort, users=users,
            events=events, texts=texts, negative=min(a.negative, texts),
            sentiment_sum=max(-min(users, texts) * SENTIMENT_PER_USER, min(min(users, texts) * SENTIMENT_PER_USER,
                                                                              a.sentiment_sum)),
            categories={c: max(-users * CATEGORY_PER_USER, min(users * CATEGORY_PER_USER, w))
                        for c, w in a.categories.items()},
            topic_events={c: min(n, events) for c, n in a.topic_events.items()},
            topic_texts={c: min(n, texts) for c, n in a.topic_texts.items()},
            topic_negative={c: min(n, min(a.topic_texts.get(c, 0), texts)) for c, n in a.topic_negative.items()},
            topic_sentiment={c: max(-min(users, texts) * SENTIMENT_PER_USER,
                                    min(min(users, texts) * SENTIMENT_PER_USER, v))
                             for c, v in a.topic_sentiment.items()})
        return bounded, bounded != a

    def ingest(self, node_id: str, aggregates: list[Aggregate]) -> int:
        """Store a node's closed windows, bounded; returns how many had to be clipped."""
        if not aggregates:
            return 0
        with self._lock:
            cap = self.cap(node_id)  # from before this heartbeat: one batch cannot ramp itself up
            bounded = [self.bound(a, cap) for a in aggregates]
            self._largest[node_id] = max([self._largest[node_id], *(a.users for a, _ in bounded)])
            self.store.put_aggregates(node_id, [a for a, _ in bounded])
            self.version += 1
        return sum(clipped for _, clipped in bounded)

    def changed(self) -> None:
        """Quarantine changed: merges differ from now on."""
        with self._lock:
            self.version += 1

    def merged(self, now: float) -> list[Aggregate]:
        """Per window and cohort, summed over edges; cohorts under the minimum size withheld."""
        cells: dict[tuple[int, str], Aggregate] = {}
        quarantined = self.store.quarantined()
        for node_id, a in self.store.aggregates_since(int(now - self.horizon_s)):
            if node_id in quarantined:
                continue
            key = (a.window_start, a.cohort)
            if key not in cells:
                cells[key] = Aggregate(window_start=a.window_start, window_seconds=a.window_seconds, cohort=a.cohort)
            _add(cells[key], a)
        return sorted((c for c in cells.values() if c.users >= self.min_size),
                      key=lambda c: (c.window_start, c.cohort))

    def priors(self, now: float) -> list[Aggregate]:
        """Per cohort over the horizon, from merged cells that meet the minimum size."""
        out: dict[str, Aggregate] = {}
        for cell in self.merged(now):
            if cell.cohort not in out:
                out[cell.cohort] = Aggregate(window_start=0, window_seconds=int(self.horizon_s), cohort=cell.cohort)
            _add(out[cell.cohort], cell)
        return sorted(out.values(), key=lambda c: c.cohort)

    def prune(self, now: float) -> None:
        self.store.prune_aggregates(int(now - self.horizon_s - 3600))
