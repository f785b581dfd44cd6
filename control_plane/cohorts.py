"""Cohort merge: every edge's aggregates per window and cohort, summed; small cohorts hidden.

Edges send each closed window once, but a resend (after a reconnect) replaces that edge's
row rather than adding to it, so nothing is counted twice. Priors for cold start are the
merged cohorts over the horizon; they stream back to every edge.
"""

from __future__ import annotations

from control_plane.store import Aggregate, Store


def _add(into: Aggregate, a: Aggregate) -> None:
    into.users += a.users
    into.texts += a.texts
    into.negative += a.negative
    into.events += a.events
    into.sentiment_sum += a.sentiment_sum
    for c, w in a.categories.items():
        into.categories[c] = into.categories.get(c, 0.0) + w


class CohortMerge:
    def __init__(self, store: Store, *, min_size: int, horizon_s: float) -> None:
        self.store = store
        self.min_size = min_size
        self.horizon_s = horizon_s
        self.version = 0  # bumped when new aggregates arrive

    def ingest(self, node_id: str, aggregates: list[Aggregate]) -> None:
        if aggregates:
            self.store.put_aggregates(node_id, aggregates)
            self.version += 1

    def merged(self, now: float) -> list[Aggregate]:
        """Per window and cohort, summed over edges; cohorts under the minimum size withheld."""
        cells: dict[tuple[int, str], Aggregate] = {}
        for _, a in self.store.aggregates_since(int(now - self.horizon_s)):
            key = (a.window_start, a.cohort)
            if key not in cells:
                cells[key] = Aggregate(window_start=a.window_start, window_seconds=a.window_seconds, cohort=a.cohort,
                                       users=0, texts=0, negative=0, events=0, sentiment_sum=0.0, categories={})
            _add(cells[key], a)
        return sorted((c for c in cells.values() if c.users >= self.min_size),
                      key=lambda c: (c.window_start, c.cohort))

    def priors(self, now: float) -> list[Aggregate]:
        """Per cohort over the horizon, from merged cells that meet the minimum size."""
        out: dict[str, Aggregate] = {}
        for cell in self.merged(now):
            if cell.cohort not in out:
                out[cell.cohort] = Aggregate(window_start=0, window_seconds=int(self.horizon_s), cohort=cell.cohort,
                                             users=0, texts=0, negative=0, events=0, sentiment_sum=0.0, categories={})
            _add(out[cell.cohort], cell)
        return sorted(out.values(), key=lambda c: c.cohort)

    def prune(self, now: float) -> None:
        self.store.prune_aggregates(int(now - self.horizon_s - 3600))
