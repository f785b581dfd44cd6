"""History: daily aggregates a backfill (``edge-node batch``) learned, imported per tenant
(``control-plane cohorts import FILE --tenant T``) and folded into the priors edges get.

Imported rows are aggregates with the minimum size applied (``sentiedge_core.daily`` checks each
one again here, against this control plane's ``CP_COHORT_MIN_SIZE``); each is stored with its
tenant, one row per tenant, day and cohort, so importing a day again replaces it. A cohort's
history prior is the sum of its imported days. Live priors win: :func:`with_history` adds a
history prior only where the live merge has none for that tenant and cohort — the cold start of
a cohort no edge has reported on yet, or one whose live cells are under the minimum size. A
history prior names its tenant, so only that tenant's users ever get it (as live priors).
"""

from __future__ import annotations

import threading

import msgspec

from control_plane.errors import InvalidArgument
from sentiedge_core.cohorts import Aggregate, add
from sentiedge_core.daily import DailyRow, check, to_aggregates

MAX_ROWS_PER_CALL = 25_000  # daily rows in one import call (the CLI sends a file in calls of whole days)
MAX_CELLS_PER_TENANT = 200_000  # stored (day, cohort) aggregates per tenant: ~ a year of 550 cohorts


def _tenant_problem(tenant: str) -> str | None:
    if not tenant or len(tenant) > 64 or not tenant.isprintable():
        return "tenant must be 1-64 printable characters"
    return None


class History:
    def __init__(self, store, *, min_size: int) -> None:
        self.store = store
        self.min_size = min_size
        self._cache: tuple[object, list[Aggregate]] | None = None  # (the store's history version, priors)
        self._lock = threading.Lock()

    def version(self) -> object:
        """Moves when any replica imports (one cheap query): the streamed priors' version includes it."""
        return self.store.history_version()

    def import_rows(self, tenant: str, rows: list[DailyRow], *, source: str, at: float) -> dict:
        """Check and store one call's rows (whole days); returns what was stored."""
        problem = _tenant_problem(tenant)
        if problem:
            raise InvalidArgument(problem)
        if len(rows) > MAX_ROWS_PER_CALL:
            raise InvalidArgument(f"{len(rows)} rows in one call, over {MAX_ROWS_PER_CALL}")
        for i, row in enumerate(rows):
            problem = check(row, self.min_size)
            if problem:
                raise InvalidArgument(f"row {i} ({row.day} {row.cohort} {row.category}): {problem}")
        aggregates = to_aggregates(rows)
        if self.store.history_cells(tenant) + len(aggregates) > MAX_CELLS_PER_TENANT:
            raise InvalidArgument(f"tenant {tenant} would hold more than {MAX_CELLS_PER_TENANT} imported day "
                                  "and cohort aggregates")
        self.store.put_history(tenant, aggregates, source=source[:200], at=at)
        return {"rows": len(rows), "days": len({a.window_start for a in aggregates}),
                "cohorts": len({a.cohort for a in aggregates}), "aggregates": len(aggregates)}

    def priors(self) -> list[Aggregate]:
        """One prior per tenant and cohort: the sum of its imported days (never across tenants)."""
        version = self.version()
        with self._lock:
            if self._cache is not None and self._cache[0] == version:
                return self._cache[1]
        summed: dict[tuple[str, str], Aggregate] = {}
        first: dict[tuple[str, str], int] = {}
        last: dict[tuple[str, str], int] = {}
        for tenant, a in self.store.history():
            key = (tenant, a.cohort)
            if key not in summed:
                summed[key] = Aggregate(tenant=tenant, window_start=0, window_seconds=0, cohort=a.cohort)
                first[key] = a.window_start
            add(summed[key], a)
            last[key] = a.window_start + a.window_seconds
        out = [msgspec.structs.replace(p, window_seconds=last[k] - first[k]) for k, p in sorted(summed.items())]
        with self._lock:
            self._cache = (version, out)
        return out


def with_history(live: list[Aggregate], history: list[Aggregate]) -> list[Aggregate]:
    """The live priors, plus each history prior whose tenant and cohort the live ones lack."""
    have = {(a.tenant, a.cohort) for a in live}
    return [*live, *(h for h in history if (h.tenant, h.cohort) not in have)]
