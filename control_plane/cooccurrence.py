"""The collaborative signal on the control plane: the edges' item co-occurrence, merged per tenant
into a versioned item-neighbour table that every stream sends (sentiedge_core.cooccurrence).

Edges send, per tenant and closed window, distinct users per item and per pair of items (only
counts of at least the cohort minimum). :meth:`NeighbourBook.ingest` bounds each window and
stores it once per node (a resent window replaces the node's row); :meth:`NeighbourBook.rebuild`
merges every node's windows over the horizon (``CP_COOCCURRENCE_HORIZON_DAYS``) per tenant and
keeps, per item, its ``CP_NEIGHBOURS_TOP_M`` neighbours by shrunk cosine similarity, for the
``CP_NEIGHBOURS_MAX_ITEMS`` items chosen by the most users. A table whose content changed is
published with the next version (compare-and-set, so replicas agree) and streamed to every edge.
Tenants never meet: each tenant's table is built from its own rows only.

One node, bounded influence (:mod:`control_plane.influence`; ``share`` is ``CP_MAX_NODE_SHARE``):

* Per node and window, before it is stored: an item's users at most the node's cohort cap (which
  grows with time, control_plane.cohorts), a pair's users at most those of either of its items in
  the same window, at most ``max_pairs`` (MAX_PAIRS) pairs and ``MAX_ITEMS`` items; counts under the minimum
  size, unknown tenants, windows outside the horizon or in the future are dropped.
* A pair fewer than ``CP_COOCCURRENCE_MIN_NODES`` (2) nodes report (a *lone* pair) is weighed
  against the other nodes' volume of its items (:func:`contested`): it is left out where the nodes
  that do not report it carry at least ``(1−share)/share`` (⅓) as many users of one of its items
  as its reporters do (they see the item well enough and do not see the pair), and kept where
  they carry less, or nothing (a one-edge deployment; an edge alone with its own items). So one
  node can neither pair an item with another the others see well (**one node cannot make two
  items neighbours** that another node sees: it would need more than ``share/(1−share)`` (3×) their
  users of the item), nor empty an honest edge's pairs by merely reporting (it would need a third
  of that edge's users of one of each pair's items, bounded by its cap, which grows with time).
  Where several nodes report an item or a pair, each node's count is scaled to at most ``share``
  of the merged count (its users at most ``share/(1−share)`` times the others'), so one node
  moves a similarity by a bounded amount and cannot dilute an item's neighbours away.
* Which items a table keeps (``CP_NEIGHBOURS_MAX_ITEMS``): items several nodes report first (by
  users), then each node's own items in turn (each node's by users), so items one node alone
  reports cannot crowd out what others see, nor another node's own items.
* What a heartbeat may add is checked first (:meth:`NeighbourBook.problem`): a known tenant, a
  window of the control plane's length (``CP_COOCCURRENCE_WINDOW_MINUTES``, which the edges'
  ``EDGE_COOCCURRENCE_WINDOW_MINUTES`` must equal) that starts where such a window starts, inside
  the horizon: one node holds at most horizon/window windows per tenant (30 at the defaults),
  so its volume over the horizon is at most its cap times that, and so are the rows it costs.
* A quarantined node's windows are left out of every table.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
from collections import defaultdict
from collections.abc import Callable
from itertools import zip_longest

import msgspec

from control_plane.cohorts import CohortMerge
from control_plane.influence import share_factors
from control_plane.intake import misaligned, screen
from control_plane.store import Store
from sentiedge_core.cooccurrence import (
    MAX_ITEM_CHARS,
    NeighbourTable,
    PairWindow,
    Similarity,
    pair,
    similarity,
    top_neighbours,
)

log = logging.getLogger("control_plane.cooccurrence")
MAX_WINDOWS_PER_BEAT = 200  # co-occurrence windows one heartbeat may carry
MAX_PAIRS = 20_000  # per node, tenant and window (an edge sends at most that many)
MAX_ITEMS = 50_000


class NeighbourBook:
    def __init__(self, store: Store, cohorts: CohortMerge, *, min_size: int, horizon_s: float, top_m: int,
                 max_items: int, shrink: float, min_nodes: int, max_node_share: float,
                 max_pairs: int = MAX_PAIRS, window_s: float = 86400.0, rebuild_min_s: float = 0.0,
                 measure: Similarity = similarity) -> None:
        self.store = store
        self.measure = measure  # of a pair's merged counts (shrunk cosine; the benchmark compares others)
        self.window_s = window_s  # the edges' co-occurrence window (CP_COOCCURRENCE_WINDOW_MINUTES)
        self.cohorts = cohorts  # the per-node cap (grows with time), the known tenants, quarantine
        self.min_size = min_size
        self.horizon_s = horizon_s
        self.top_m = top_m
        self.max_items = max_items
        self.shrink = shrink
        self.min_nodes = min_nodes
        self.max_node_share = max_node_share
        self.max_pairs = max_pairs  # per node, tenant and window
        self._lock = threading.Lock()  # one rebuild at a time on this replica
        self.rebuild_min_s = rebuild_min_s  # between rebuilds of one tenant's table from heartbeats
        self._built: dict[str, float] = {}  # tenant -> when a heartbeat last rebuilt its table
        self._waiting: set[str] = set()  # tenants with windows that arrived inside that interval
        # (node, reason, how many) for every refused window; set by the wiring (a metric)
        self.on_refused: Callable[[str, str, int], None] = lambda node, reason, n: None

    # --- in -------------------------------------------------------------------------------------
    def bound(self, w: PairWindow, cap: int) -> PairWindow:
        """The window as one node may plausibly report it."""
        items = {i: min(n, cap) for i, n in w.items.items()
                 if n >= self.min_size and 0 < len(i) <= MAX_ITEM_CHARS}
        if len(items) > MAX_ITEMS:
            items = dict(sorted(items.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_ITEMS])
        pairs: dict[tuple[str, str], int] = {}
        for a, b, n in w.pairs:
            if a == b or a not in items or b not in items or n < self.min_size:
                continue
            key = pair(a, b)
            pairs[key] = max(pairs.get(key, 0), min(n, items[a], items[b]))
        kept = sorted(((n, p) for p, n in pairs.items()), key=lambda t: (-t[0], t[1]))[:self.max_pairs]
        return PairWindow(tenant=w.tenant, window_start=w.window_start, window_seconds=w.window_seconds,
                          items=items, pairs=[(a, b, n) for n, (a, b) in kept])

    def problem(self, w: PairWindow, now: float, known: set[str] | None) -> str | None:
        """Why a heartbeat may not add ``w`` (a reason of the refusal metric), or None. Windows of
        the control plane's length, aligned, inside the horizon: one node holds at most the
        horizon's number of windows per tenant (a resend replaces), whatever it sends."""
        if not w.tenant or (known is not None and w.tenant not in known):
            return "tenant"
        if w.window_seconds != int(self.window_s):
            return "window_length"
        if misaligned(w.window_start, self.window_s):
            return "window_start"
        if not now - self.horizon_s <= w.window_start <= now:
            return "window_time"
        return None

    def ingest(self, node_id: str, windows: list[PairWindow], now: float) -> tuple[list[str], int]:
        """Store a node's windows, bounded; returns (the tenants whose counts changed, how many
        windows were dropped or clipped). Refusals are counted per reason."""
        known = self.cohorts.known_tenants()
        plausible, refused = screen(windows, lambda w: self.problem(w, now, known), MAX_WINDOWS_PER_BEAT)
        for why, n in refused.items():
            self.on_refused(node_id, why, n)
        cap = self.cohorts.cap(node_id, now)
        bounded = [self.bound(w, cap) for w in plausible]
        kept = [b for b in bounded if b.items]
        if kept:
            self.store.put_pair_windows(node_id, kept, now)
        clipped = sum(b != w for b, w in zip(bounded, plausible, strict=True))
        return sorted({w.tenant for w in kept}), len(windows) - len(kept) + clipped

    # --- the tables -----------------------------------------------------------------------------
    def merged(self, tenant: str, now: float) -> tuple[dict[tuple[str, str], float], dict[str, float]]:
        """(pair → users, item → users) of one tenant over the horizon, each node's share bounded."""
        return self._merge(*self._parts(tenant, now))

    def _merge(self, node_pairs: dict[tuple[str, str], dict[str, int]], node_items: dict[str, dict[str, int]]
               ) -> tuple[dict[tuple[str, str], float], dict[str, float]]:
        ratio = self.max_node_share / (1.0 - self.max_node_share)
        return ({p: self._capped(parts) for p, parts in node_pairs.items()
                 if len(parts) >= self.min_nodes or not contested(set(parts), p, node_items, ratio)},
                {i: self._capped(parts) for i, parts in node_items.items()})

    def _parts(self, tenant: str, now: float) -> tuple[dict[tuple[str, str], dict[str, int]],
                                                      dict[str, dict[str, int]]]:
        """(pair → node → users, item → node → users) of one tenant over the horizon, quarantined
        nodes left out."""
        quarantined = self.store.quarantined()
        node_items: dict[str, dict[str, int]] = defaultdict(dict)
        node_pairs: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
        for node_id, w in self.store.pair_windows_since(int(now - self.horizon_s), tenant):
            if node_id in quarantined:
                continue
            for item, n in w.items.items():
                node_items[item][node_id] = node_items[item].get(node_id, 0) + n
            for a, b, n in w.pairs:
                node_pairs[(a, b)][node_id] = node_pairs[(a, b)].get(node_id, 0) + n
        return node_pairs, node_items

    def _capped(self, parts: dict[str, int]) -> float:
        factors = share_factors({node: float(n) for node, n in parts.items()}, self.max_node_share, self.min_size)
        return sum(n * factors[node] for node, n in parts.items())

    def build(self, tenant: str, now: float) -> NeighbourTable:
        node_pairs, node_items = self._parts(tenant, now)
        pairs, items = self._merge(node_pairs, node_items)
        return NeighbourTable(tenant=tenant, built_at=now, items=top_neighbours(
            pairs, items, top_m=self.top_m, max_items=self.max_items, shrink=self.shrink,
            order=preference(node_items, items), measure=self.measure))

    def rebuild(self, now: float, tenants: list[str] | None = None) -> list[str]:
        """Build the tables of ``tenants`` (None: every tenant with counts or a table) and publish
        those whose content changed; returns the tenants published."""
        published = []
        with self._lock:
            for tenant in self.store.pair_tenants() if tenants is None else tenants:
                table = self.build(tenant, now)
                digest = hashlib.sha256(msgspec.json.encode(table.items)).hexdigest()
                stored = self.store.neighbour_table(tenant)
                if stored is not None and stored[1] == digest:
                    continue
                expected = stored[0].version if stored is not None else 0
                table.version = expected + 1
                if self.store.put_neighbour_table(table, digest, expected):
                    published.append(tenant)
                    log.info("item neighbours of tenant %s v%d: %d items", tenant, table.version, len(table.items))
        return published

    def rebuild_due(self, now: float, tenants: list[str]) -> list[str]:
        """What a heartbeat rebuilds: ``tenants`` (whose windows it brought) and those still
        waiting, each at most once per ``rebuild_min_s``; the others wait for a later heartbeat
        (any node's). A node resending windows cannot make every heartbeat read the horizon."""
        with self._lock:
            self._waiting.update(tenants)
            due = sorted(t for t in self._waiting if now - self._built.get(t, -math.inf) >= self.rebuild_min_s)
            self._waiting.difference_update(due)
            self._built.update(dict.fromkeys(due, now))
        return self.rebuild(now, due) if due else []

    def version(self) -> tuple[int, int]:
        return self.store.neighbours_version()

    def tables(self) -> list[NeighbourTable]:
        return self.store.neighbour_tables()

    def prune(self, now: float) -> list[str]:
        """Forget windows past the horizon; returns the tenants whose table changed."""
        self.store.prune_pair_windows(int(now - self.horizon_s - 3600))
        return self.rebuild(now)


def contested(reporters: set[str], pair: tuple[str, str], node_items: dict[str, dict[str, int]], ratio: float) -> bool:
    """A lone pair's reporters are contradicted: for one of its items, the nodes that do not report
    the pair carry at least 1/``ratio`` as many users of it as the reporters do."""
    for item in pair:
        parts = node_items.get(item, {})
        theirs = sum(n for node, n in parts.items() if node not in reporters)
        mine = sum(n for node, n in parts.items() if node in reporters)
        if theirs > 0 and theirs * ratio >= mine:
            return True
    return False


def preference(node_items: dict[str, dict[str, int]], merged: dict[str, float]) -> list[str]:
    """Every item, in the order a table takes them: those several nodes report (most users first),
    then each node's own items in turn, each node's by its users."""
    shared = sorted((i for i, parts in node_items.items() if len(parts) > 1), key=lambda i: (-merged[i], i))
    own: dict[str, list[str]] = defaultdict(list)
    for item, parts in node_items.items():
        if len(parts) == 1:
            (node,) = parts
            own[node].append(item)
    queues = [sorted(items, key=lambda i: (-node_items[i][node], i)) for node, items in sorted(own.items())]
    turns = [item for group in zip_longest(*queues) for item in group if item is not None]
    return shared + turns
