"""The collaborative signal on the edge, "often chosen with X" (sentiedge_core.cooccurrence).

Counting (:class:`PairBook`): per window (``EDGE_COOCCURRENCE_WINDOW_MINUTES``) each user who
granted ``cohort_analytics`` has a basket of the items they chose (any event but a dislike, a
rating below 3 stars or a negative review), at most ``max_items`` of them (the most recent),
kept on disk only while the window is open (the current and the previous one), so a deletion
or a withdrawal takes the basket out. When a window has closed, its baskets are counted per
tenant: distinct users per item and per pair of items (a user adds at most 1 to a pair), and
only counts of at least ``min_users`` (the cohort minimum) are kept for upstream. A window's
counts are computed once and kept for ``keep_windows`` windows, until the control plane
receipts them; a late change to an open window counts it again.

Using (:class:`Neighbours`, :func:`scores`): the control plane's table per tenant, persisted;
a candidate scores the sum of its similarity to the user's recent items (the profile's, under
``personalization``; the later ones weigh more, :func:`recency_weights`), normalized so the
best candidate is 1, and names the item that contributed most. By default a pair counts when
either item keeps the other among its top neighbours (:func:`both_ways`): a popular recent
item's own list is full of other popular items, while a less chosen candidate often keeps the
popular item in its list.
"""

from __future__ import annotations

from collections import defaultdict

import msgspec

from edge_node.records import Stored
from edge_node.store import EdgeStore
from sentiedge_core.cooccurrence import NeighbourTable, PairWindow

MAX_PAIRS = 20_000  # per tenant and window sent upstream: the pairs of the most users
# A user's recent items weigh by recency: the latest 1, the 10th latest 1/2, the 20th 1/4 (tuned on the
# replay benchmark's validation period: +0.005 NDCG@10 over equal weights).
RECENT_HALF_LIFE = 10


class Basket(Stored, kw_only=True):
    """One user's chosen items in one open window (item → when last chosen)."""

    tenant: str
    items: dict[str, float] = {}


class ClosedPairs(Stored, kw_only=True):
    """A closed window's counts, minimum size applied, per tenant: what goes upstream."""

    windows: list[PairWindow] = []


class PairBook:
    def __init__(self, store: EdgeStore, *, window_s: float, min_users: int, max_items: int = 50,
                 keep_windows: int = 7, max_pairs: int = MAX_PAIRS) -> None:
        self.store = store
        self.window_s = window_s
        self.min_users = min_users
        self.max_items = max_items
        self.keep_windows = keep_windows
        self.max_pairs = max_pairs

    def window_of(self, at: float) -> int:
        return int(at // self.window_s * self.window_s)

    def _open_windows(self, now: float) -> list[int]:
        current = self.window_of(now)
        return [current, current - int(self.window_s)]

    # --- baskets (call inside a store transaction) ----------------------------------------------
    def add(self, subject: str, item: str, at: float, now: float, *, tenant: str) -> bool:
        """The user chose ``item`` at ``at``; False when its window closed long ago (not counted)."""
        window = self.window_of(at)
        ttl = window + 2 * self.window_s - now
        if ttl <= 0:
            return False
        key = f"cob|{window}|{subject}"
        basket = self.store.get(key, Basket) or Basket(tenant=tenant)
        if basket.items.get(item, -1.0) >= at:
            return True  # chosen again, earlier: nothing changes
        basket.items[item] = at
        if len(basket.items) > self.max_items:  # each user's share of a window is bounded: the latest items
            basket.items = dict(sorted(basket.items.items(), key=lambda kv: kv[1])[-self.max_items:])
        self.store.put(key, basket, ttl=ttl)
        self._changed(window)
        return True

    def withdraw(self, subject: str, now: float) -> int:
        """Take the user's baskets out of the open windows; returns how many there were."""
        taken = 0
        for window in self._open_windows(now):
            if self.store.delete(f"cob|{window}|{subject}"):
                self._changed(window)
                taken += 1
        return taken

    def merge(self, source: str, target: str, now: float) -> int:
        """An anonymous visitor who logged in: their baskets become the user's (one user, one basket)."""
        moved = 0
        for window in self._open_windows(now):
            theirs = self.store.get(f"cob|{window}|{source}", Basket)
            if theirs is None:
                continue
            self.store.delete(f"cob|{window}|{source}")
            for item, at in theirs.items.items():
                self.add(target, item, at, now, tenant=theirs.tenant)
            moved += 1
        return moved

    def _changed(self, window: int) -> None:
        """A basket of a window whose counts were kept already: they are counted again."""
        self.store.delete(f"cox|{window}")

    # --- what leaves the node -------------------------------------------------------------------
    def export(self, window: int) -> list[PairWindow]:
        """A closed window's counts per tenant, minimum size applied (computed once, then kept)."""
        kept = self.store.get(f"cox|{window}", ClosedPairs)
        if kept is not None:
            return kept.windows
        items: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        pairs: dict[str, dict[tuple[str, str], int]] = defaultdict(lambda: defaultdict(int))
        for key in self.store.keys(f"cob|{window}|"):
            basket = self.store.get(key, Basket)
            if basket is None:
                continue
            chosen = sorted(basket.items)
            for x, a in enumerate(chosen):
                items[basket.tenant][a] += 1
                for b in chosen[x + 1:]:
                    pairs[basket.tenant][(a, b)] += 1
        out = []
        for tenant in sorted(items):
            common = sorted(((n, p) for p, n in pairs[tenant].items() if n >= self.min_users),
                            key=lambda t: (-t[0], t[1]))[: self.max_pairs]
            frequent = {i: n for i, n in items[tenant].items() if n >= self.min_users}
            if common or frequent:
                out.append(PairWindow(tenant=tenant, window_start=window, window_seconds=int(self.window_s),
                                      items=frequent, pairs=[(a, b, n) for n, (a, b) in common]))
        self.store.put(f"cox|{window}", ClosedPairs(windows=out), ttl=self.keep_windows * self.window_s)
        return out

    def closed(self, acked_until: int | None, now: float) -> tuple[int, list[PairWindow]]:
        """(the last closed window, the counts of the closed windows after ``acked_until`` that are
        still kept)."""
        window_s = int(self.window_s)
        last_closed = self.window_of(now) - window_s
        first_kept = last_closed - (self.keep_windows - 1) * window_s
        acked = last_closed - window_s if acked_until is None else acked_until
        out: list[PairWindow] = []
        for window in range(max(acked + window_s, first_kept), last_closed + 1, window_s):
            out.extend(self.export(window))
        return last_closed, out


class Neighbours:
    """The control plane's item-neighbour tables, per tenant, kept on disk so a restarted node
    ranks with them before it reconnects. ``both_ways``: rank with :func:`both_ways` of a table
    (built once per table received), else with each item's own list only."""

    def __init__(self, store: EdgeStore, *, both_ways: bool = True) -> None:
        self.store = store
        self.both_ways = both_ways
        self.tables: dict[str, NeighbourTable] = {}
        self._lookups: dict[str, dict[str, list[tuple[str, float]]]] = {}
        for key in store.keys("value|neighbours|"):
            found = store.value(key.removeprefix("value|"))
            if found is not None:
                table = msgspec.convert(found, NeighbourTable)
                self.tables[table.tenant] = table

    def apply(self, table: NeighbourTable) -> None:
        self.store.set_value(f"neighbours|{table.tenant}", msgspec.to_builtins(table))
        self.use(table)

    def use(self, table: NeighbourTable) -> None:
        self.tables[table.tenant] = table
        self._lookups.pop(table.tenant, None)

    def version(self, tenant: str) -> int:
        table = self.tables.get(tenant)
        return table.version if table is not None else 0

    def of(self, tenant: str) -> dict[str, list[tuple[str, float]]]:
        """The tenant's table as the control plane sent it."""
        table = self.tables.get(tenant)
        return table.items if table is not None else {}

    def lookup(self, tenant: str) -> dict[str, list[tuple[str, float]]]:
        """What the tenant's rankings read: the table, both ways unless configured otherwise."""
        if not self.both_ways:
            return self.of(tenant)
        found = self._lookups.get(tenant)
        if found is None:
            found = self._lookups[tenant] = both_ways(self.of(tenant))
        return found


def both_ways(items: dict[str, list[tuple[str, float]]]) -> dict[str, list[tuple[str, float]]]:
    """Item → its neighbours by the table read both ways: its own list, then the items that keep
    it in theirs (the similarity is symmetric; the top-M cut is not). At most twice the table."""
    own = {item: {other for other, _ in ns} for item, ns in items.items()}
    out = {item: list(ns) for item, ns in items.items()}
    for item, ns in items.items():
        for other, sim in ns:
            if item not in own.get(other, ()):
                out.setdefault(other, []).append((item, sim))
    return out


def recency_weights(items: dict[str, float]) -> dict[str, float]:
    """A user's recent items (item → when) → their weight: halved every RECENT_HALF_LIFE items back."""
    latest_first = sorted(items, key=lambda i: (-items[i], i))
    return {item: 0.5 ** (n / RECENT_HALF_LIFE) for n, item in enumerate(latest_first)}


def scores(table: dict[str, list[tuple[str, float]]], recent: dict[str, float],
           candidates: list[str]) -> dict[str, tuple[float, str]]:
    """Candidate → (score in [0, 1], the recent item that contributed most); ``recent`` maps the
    user's recent items to a weight. A candidate the user chose recently gets nothing from it."""
    wanted = set(candidates)
    total: dict[str, float] = defaultdict(float)
    best: dict[str, tuple[float, str]] = {}
    for item, weight in recent.items():
        for other, sim in table.get(item, ()):
            if other not in wanted:
                continue
            part = weight * sim
            total[other] += part
            if other not in best or part > best[other][0]:
                best[other] = (part, item)
    top = max(total.values(), default=0.0)
    if top <= 0:
        return {}
    return {c: (total[c] / top, best[c][1]) for c in total}
