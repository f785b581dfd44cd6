"""Daily aggregates imported from a history backfill, per tenant, day and cohort (migration 7).
A row is an aggregate with the minimum size applied: nothing in it is per user."""

from __future__ import annotations

from control_plane.store.cohorts import _categories_column, _categories_fields
from control_plane.store.database import Repository
from sentiedge_core.cohorts import Aggregate

HISTORY_COLUMNS = ("tenant, window_start, cohort, users, texts, negative, events, sentiment_sum, categories, source, "
                   "imported_at")


class HistoryStore(Repository):
    def put_history(self, tenant: str, aggregates: list[Aggregate], *, source: str, at: float) -> None:
        """Store one tenant's imported days; a day and cohort imported again is replaced (idempotent)."""
        with self._tx() as db:
            db.executemany(
                f"INSERT INTO imported_daily ({HISTORY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (tenant, window_start, cohort) "
                "DO UPDATE SET users = excluded.users, texts = excluded.texts, negative = excluded.negative, "
                "events = excluded.events, sentiment_sum = excluded.sentiment_sum, categories = excluded.categories, "
                "source = excluded.source, imported_at = excluded.imported_at",
                [(tenant, a.window_start, a.cohort, a.users, a.texts, a.negative, a.events, a.sentiment_sum,
                  _categories_column(a), source, at) for a in aggregates])

    def history(self) -> list[tuple[str, Aggregate]]:
        """Every imported day and cohort, with its tenant."""
        return [(r[0], Aggregate(window_start=r[1], window_seconds=86_400, cohort=r[2], users=r[3], texts=r[4],
                                 negative=r[5], events=r[6], sentiment_sum=r[7], **_categories_fields(r[8])))
                for r in self._rows(f"SELECT {HISTORY_COLUMNS} FROM imported_daily ORDER BY tenant, window_start, "
                                    "cohort")]

    def history_cells(self, tenant: str) -> int:
        return int(self._rows("SELECT COUNT(*) FROM imported_daily WHERE tenant = ?", (tenant,))[0][0])

    def history_version(self) -> tuple[int, float]:
        """Changes whenever any replica imports: (rows, latest import time)."""
        row = self._rows("SELECT COUNT(*), COALESCE(MAX(imported_at), 0) FROM imported_daily")[0]
        return int(row[0]), float(row[1])
