"""Exposure you can watch: what the rankings of this edge show, per tenant.

:class:`ExposureBook` counts, over the current and the previous window (``EDGE_EXPOSURE_WINDOW_MINUTES``),
how often each candidate was offered to ``/v1/rank`` and how often it was shown in the returned
top; from that :func:`figures` gives the share of the offered catalogue that was shown at all and
the concentration of what was shown (Gini over the offered items, 0: every item shown alike,
1: one item took every slot). Counts are per worker, in memory; a node of several workers adds
the others' (each shares its counts through the store). Item ids only, never who saw what.

:class:`ExplorationLog` remembers, per user with ``personalization`` consent and for a day,
which items an exploration slot showed them, so that a click on one counts as the exploration's
click-through; it is erased with the user's profile.
"""

from __future__ import annotations

import msgspec
import numpy as np

from edge_node.records import Stored
from edge_node.store import EdgeStore

MAX_ITEMS = 20_000  # items tracked per tenant and window; an item past it is not counted


class Counts(msgspec.Struct, kw_only=True):
    offered: dict[str, int] = {}
    shown: dict[str, int] = {}


class Figures(msgspec.Struct, frozen=True, kw_only=True):
    catalogue: int  # distinct items offered
    exposed: int  # ... of them shown in a top
    share: float  # exposed / catalogue
    gini: float  # concentration of the shown counts over the offered items


class ExposureBook:
    def __init__(self, *, window_s: float, max_items: int = MAX_ITEMS) -> None:
        self.window_s = window_s
        self.max_items = max_items
        self.windows: dict[int, dict[str, Counts]] = {}  # window -> tenant -> counts
        self.changed = False

    def observe(self, tenant: str, offered: list[str], shown: list[str], now: float) -> None:
        window = int(now // self.window_s * self.window_s)
        if window not in self.windows:
            self.windows = {w: c for w, c in self.windows.items() if w >= window - self.window_s}
            self.windows[window] = {}
        counts = self.windows[window].setdefault(tenant, Counts())
        for field, ids in (("offered", offered), ("shown", shown)):
            into = getattr(counts, field)
            for item in ids:
                if item in into or len(into) < self.max_items:
                    into[item] = into.get(item, 0) + 1
        self.changed = True

    def recent(self, now: float) -> dict[int, dict[str, Counts]]:
        """The current and the previous window's counts (what a worker shares with the others)."""
        window = int(now // self.window_s * self.window_s)
        return {w: c for w, c in self.windows.items() if w >= window - self.window_s}


def combined(parts: list[dict[int, dict[str, Counts]]]) -> dict[str, Counts]:
    """Several workers' recent windows added up, per tenant."""
    out: dict[str, Counts] = {}
    for part in parts:
        for tenants in part.values():
            for tenant, counts in tenants.items():
                into = out.setdefault(tenant, Counts())
                for field in ("offered", "shown"):
                    target = getattr(into, field)
                    for item, n in getattr(counts, field).items():
                        target[item] = target.get(item, 0) + n
    return out


def gini(values: list[float]) -> float:
    """Gini coefficient of non-negative values (0 when all are equal or all are zero)."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    n, total = len(x), float(x.sum())
    if n == 0 or total <= 0:
        return 0.0
    return float((2 * np.arange(1, n + 1) - n - 1).dot(x) / (n * total))


def figures(counts: Counts) -> Figures:
    catalogue = set(counts.offered) | set(counts.shown)
    exposed = sum(1 for i in catalogue if counts.shown.get(i, 0) > 0)
    return Figures(catalogue=len(catalogue), exposed=exposed, share=exposed / len(catalogue) if catalogue else 0.0,
                   gini=gini([counts.shown.get(i, 0) for i in catalogue]))


class Explored(Stored, kw_only=True):
    items: dict[str, float] = {}  # item -> when an exploration slot showed it


class ExplorationLog:
    def __init__(self, store: EdgeStore, *, window_s: float = 86400.0, max_items: int = 50) -> None:
        self.store = store
        self.window_s = window_s
        self.max_items = max_items

    def shown(self, subject: str, items: list[str], now: float) -> None:
        """Exploration slots showed ``items`` to the user (written only when something is new)."""
        if not items:
            return
        key = f"explored|{subject}"
        found = self.store.get(key, Explored) or Explored()
        fresh = {i: at for i, at in found.items.items() if now - at <= self.window_s}
        if all(i in fresh for i in items) and len(fresh) == len(found.items):
            return  # the same slots again (they are stable for a user and a day)
        fresh.update({i: now for i in items if i not in fresh})
        found.items = dict(sorted(fresh.items(), key=lambda kv: kv[1])[-self.max_items:])
        self.store.put(key, found, ttl=self.window_s)

    def clicked(self, subject: str, item: str, at: float) -> bool:
        """A click on ``item`` at ``at``: True (once) when an exploration slot showed it to the user
        in the day before (call inside the ingest's transaction)."""
        key = f"explored|{subject}"
        found = self.store.get(key, Explored)
        shown_at = found.items.get(item) if found is not None else None
        if found is None or shown_at is None or not shown_at - 300 <= at <= shown_at + self.window_s:
            return False
        del found.items[item]
        self.store.put(key, found, ttl=self.window_s)
        return True
