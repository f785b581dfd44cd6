"""Cohort aggregates per tenant, window, cohort and node (per-category counts in one JSON column).
Rows from before tenants (migration 6) have tenant ''."""

from __future__ import annotations

import json

from control_plane.store.database import Repository
from sentiedge_core.cohorts import Aggregate

COHORTS_COLUMNS = ("window_start, cohort, node_id, window_seconds, users, texts, negative, events, sentiment_sum, "
                   "categories, tenant")
SELECT_COHORTS = f"SELECT {COHORTS_COLUMNS} FROM cohorts"


class CohortStore(Repository):
    # --- cohorts ----------------------------------------------------------------------------
    def put_aggregates(self, node_id: str, aggregates: list[Aggregate]) -> None:
        with self._tx() as db:
            db.executemany(
                f"INSERT INTO cohorts ({COHORTS_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (tenant, window_start, cohort, node_id) "
                "DO UPDATE SET users = excluded.users, texts = excluded.texts, negative = excluded.negative, "
                "events = excluded.events, sentiment_sum = excluded.sentiment_sum, categories = excluded.categories",
                [(a.window_start, a.cohort, node_id, a.window_seconds, a.users, a.texts, a.negative, a.events,
                  a.sentiment_sum, _categories_column(a), a.tenant) for a in aggregates])

    def aggregates_since(self, window_start: int) -> list[tuple[str, Aggregate]]:
        return [(r[2], Aggregate(window_start=r[0], cohort=r[1], window_seconds=r[3], users=r[4], texts=r[5],
                                 negative=r[6], events=r[7], sentiment_sum=r[8], **_categories_fields(r[9]),
                                 tenant=r[10]))
                for r in self._rows(f"{SELECT_COHORTS} WHERE window_start >= ?", (window_start,))]

    def largest_cell(self, node_id: str) -> int:
        """The most users this node ever reported for one cohort and window (0: none kept)."""
        return int(self._rows("SELECT COALESCE(MAX(users), 0) FROM cohorts WHERE node_id = ?", (node_id,))[0][0])

    def cohort_keys(self, node_id: str, tenant: str, window_start: int) -> set[str]:
        """The cohort keys a node holds cells of in one tenant's window."""
        return {r[0] for r in self._rows("SELECT cohort FROM cohorts WHERE node_id = ? AND tenant = ? AND "
                                         "window_start = ?", (node_id, tenant, window_start))}

    def prune_aggregates(self, before: int) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM cohorts WHERE window_start < ?", (before,))


PER_CATEGORY = ("categories", "topic_texts", "topic_negative", "topic_events", "topic_sentiment",
                "aspect_texts", "aspect_negative", "aspect_sentiment")  # per topic (aspects), in the same column


def _categories_column(a: Aggregate) -> str:
    """The per-category fields, as one JSON object in the ``categories`` column."""
    return json.dumps({name: getattr(a, name) for name in PER_CATEGORY})


def _categories_fields(column: str) -> dict:
    """Read the column back; rows written before per-category counts hold only the weights."""
    value = json.loads(column)
    if isinstance(value.get("categories"), dict):
        return {name: value.get(name, {}) for name in PER_CATEGORY}
    return {"categories": value}
