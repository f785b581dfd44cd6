"""Cohort merge: every edge's aggregates per tenant, window and cohort, summed; small cohorts hidden.

Per tenant: every aggregate names the tenant whose users it counts, and cells, priors and the
recent windows trigger rules read are merged per (tenant, window, cohort) — never across
tenants, so a pharmacy's cohorts never shape a casino's ranking. Rows without a tenant (stored
before tenants, or sent by an edge from before them) are the legacy tenant's
(``legacy_tenant``, the apps of a store from before tenants); with none they stay a bucket of
their own ("" tenant) that no tenant's users are served from, and age out with the horizon.

Edges resend a closed window until its heartbeat is receipted; a resend replaces that edge's
row rather than adding to it, so nothing is counted twice. Priors for cold start are the
merged cohorts over the horizon; they stream back to every edge.

One node, bounded influence. A credentialed node can still lie about its numbers, so:

* Each aggregate is bounded before it is stored: users at most the node's cap, every sum
  clipped to what that many users can contribute (the edges' own per-user clips). The cap
  starts at ``new_node_users`` and grows with *time*, not with heartbeats: it is at most
  ``growth`` ** (Δt / ``growth_period_s``) times the node's largest accepted cell (one
  period's growth at most, however long the node was quiet), never over ``max_node_users``.
  A node that sends a thousand heartbeats in a second grows exactly as much as one that
  sends one (the growth compounds over the raises, so it telescopes to the elapsed time).
* Each merged cell, and each cohort's prior over the horizon, caps every node's share
  (:mod:`control_plane.influence`): where two or more nodes report a cell, one node's users
  and sums are scaled down to at most ``share/(1−share)`` times the others' users (or times
  ``min_size``, so a node claiming almost nothing cannot shrink the others away). So one node
  has at most ``share`` (``CP_MAX_NODE_SHARE``, 0.75) of the weight of any merged cell or prior
  another node also reports: it moves each per-user mean (mean sentiment, a category's mean
  weight, the negative rate) by at most ``share`` times that mean's range, and adds at most
  ``share/(1−share)`` (3) times the others' users to its count. A cell only it reports is
  bounded by its cap.

* What a heartbeat may add is checked first (:meth:`CohortMerge.plausible`): the tenant exists,
  the cohort key is one an edge builds (``all`` or region/device/daypart, cleaned values, a
  daypart of the four; ``sentiedge_core.cohorts.key_problem``), the window starts inside the
  horizon and not in the future, of the control plane's length (``CP_COHORT_WINDOW_MINUTES``, which the edges'
  ``EDGE_COHORT_WINDOW_MINUTES`` must equal) and starts where such a window starts. Anything
  else is refused, counted per reason (``sentiedge_cp_cohort_aggregates_refused_total``), and
  so is a new cohort key past ``max_node_cohorts`` distinct keys of the node in that tenant's
  window (counted over every heartbeat: the edges' own bound, so made-up keys cannot grow the store).
* Topic mentions (what topic trends and topic triggers read) are bounded once more over the
  whole tenant per window (:mod:`control_plane.topic_share`): a node alone in cohorts it made up
  counts at most ``share`` of the tenant's mentions of a topic where others report the window.

An operator can quarantine a node: its aggregates are then left out of every merge until
released. The growth clock lives in memory: after a restart a node's cap starts again from
its largest stored cell (the conservative side), and each replica keeps its own.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

import msgspec

from control_plane import topic_share
from control_plane.influence import share_factors
from control_plane.intake import misaligned, screen, within_key_limit
from control_plane.store import Store
from sentiedge_core import topics
from sentiedge_core.cohorts import ALL, ASPECT_TEXTS_PER_USER, COUNTS, SUMS, Aggregate, key_problem
from sentiedge_core.cohorts import add as _add

SENTIMENT_PER_USER = 1.0  # the edges' per-user clips (edge_node.personalization.cohorts)
CATEGORY_PER_USER = 3.0
EVENTS_PER_USER = 1000


def scaled(a: Aggregate, factor: float) -> Aggregate:
    """``a`` with every count and sum scaled by ``factor`` ≤ 1 (counts rounded down): the same
    means, less weight."""
    if factor >= 1.0:
        return a

    def count(n: int) -> int:
        return int(math.floor(n * factor))

    keyed: dict[str, dict] = {name: {c: count(v) for c, v in getattr(a, name).items()} for name in COUNTS}
    keyed |= {name: {c: v * factor for c, v in getattr(a, name).items()} for name in SUMS}
    return Aggregate(
        tenant=a.tenant, window_start=a.window_start, window_seconds=a.window_seconds, cohort=a.cohort,
        users=count(a.users),
        texts=count(a.texts), negative=count(a.negative), events=count(a.events),
        sentiment_sum=a.sentiment_sum * factor, categories={c: v * factor for c, v in a.categories.items()},
        **keyed)


def share_capped(parts: dict[str, Aggregate], share: float, floor: float = 0.0) -> dict[str, Aggregate]:
    """Each node's part of one merged output, scaled so that no node outweighs ``share`` of it."""
    factors = share_factors({node: float(a.users) for node, a in parts.items()}, share, floor)
    return {node: scaled(a, factors[node]) for node, a in parts.items()}


def _topic_counts(counts: dict[str, int], texts: int) -> dict[str, int]:
    """A cell's texts per topic: at most ``texts`` each, only names a topic can have, at most a
    topic set's worth of them (the most mentioned kept): a node cannot grow a cell without bound."""
    valid = {t: min(n, texts) for t, n in counts.items() if n > 0 and topics.NAME.match(t)}
    return dict(sorted(valid.items(), key=lambda kv: -kv[1])[:topics.MAX_TOPICS])


MAX_ROWS_PER_BEAT = 20_000  # cohort cells one heartbeat may carry (an edge's own bound is 2,000 per tenant and window)


class CohortMerge:
    def __init__(self, store: Store, *, min_size: int, horizon_s: float, max_node_users: int = 10_000,
                 growth: float = 2.0, new_node_users: int = 100, growth_period_s: float = 3600.0,
                 max_node_share: float = 0.75, window_s: float = 1800.0, max_node_cohorts: int = 2000) -> None:
        self.store = store
        self.max_node_cohorts = max_node_cohorts  # distinct cells (but "all") per node, tenant and window
        self.window_s = window_s  # the edges' cohort window (CP_COHORT_WINDOW_MINUTES): every cell's length
        self.min_size = min_size
        self.horizon_s = horizon_s
        self.max_node_users = max_node_users
        self.growth = growth
        self.new_node_users = new_node_users
        self.growth_period_s = growth_period_s
        self.max_node_share = max_node_share
        self.version = 0  # bumped when new aggregates arrive
        self.legacy_tenant = ""  # owns the rows without a tenant (control_plane.apps.AppBook.legacy_tenant)
        # -> the tenants rows may name (None: any); set by the wiring
        self.known_tenants: Callable[[], set[str] | None] = lambda: None
        # (node, reason, how many) for every refused aggregate; set by the wiring (a metric)
        self.on_refused: Callable[[str, str, int], None] = lambda node, reason, n: None
        self._largest: dict[str, tuple[int, float]] = {}  # node -> (largest accepted cell, when it was raised)
        self._lock = threading.RLock()  # streams and operator calls run in worker threads

    def _history(self, node_id: str, now: float) -> tuple[int, float]:
        found = self._largest.get(node_id)
        if found is None:  # first sight since start: its stored history, growing from now on
            found = self._largest[node_id] = (self.store.largest_cell(node_id), now)
        return found

    def cap(self, node_id: str, now: float | None = None) -> int:
        """Most users this node may report per cell at ``now``: its largest accepted cell (at
        least ``new_node_users``) times ``growth`` ** (time since that cell was accepted /
        ``growth_period_s``, at most 1), never over ``max_node_users``."""
        now = time.time() if now is None else now
        with self._lock:
            largest, raised_at = self._history(node_id, now)
        periods = min(1.0, max(0.0, (now - raised_at) / self.growth_period_s))
        base = max(self.new_node_users, largest)
        return min(self.max_node_users, max(largest, int(base * self.growth ** periods)))

    def bound(self, a: Aggregate, cap: int) -> tuple[Aggregate, bool]:
        """The aggregate clipped to what ``cap`` users can contribute; True if it was clipped."""
        users = min(a.users, cap)
        events = min(a.events, users * EVENTS_PER_USER)
        texts = min(a.texts, events)
        mentions = _topic_counts(a.aspect_texts, min(texts, users * ASPECT_TEXTS_PER_USER))
        bounded = Aggregate(
            tenant=a.tenant, window_start=a.window_start, window_seconds=a.window_seconds, cohort=a.cohort, users=users,
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
                             for c, v in a.topic_sentiment.items()},
            aspect_texts=mentions,
            aspect_negative={t: min(n, mentions[t]) for t, n in a.aspect_negative.items() if t in mentions},
            aspect_sentiment={t: max(-min(users, mentions[t]) * SENTIMENT_PER_USER,
                                     min(min(users, mentions[t]) * SENTIMENT_PER_USER, v))
                              for t, v in a.aspect_sentiment.items() if t in mentions})
        return bounded, bounded != a

    def problem(self, a: Aggregate, now: float, known: set[str] | None) -> str | None:
        """Why a heartbeat may not add ``a`` (a reason of the refusal metric), or None."""
        if known is not None and a.tenant and a.tenant not in known:
            return "tenant"
        if key_problem(a.cohort) is not None:
            return "cohort"
        if a.window_seconds != int(self.window_s):
            return "window_length"
        if misaligned(a.window_start, self.window_s):
            return "window_start"
        if not now - self.horizon_s <= a.window_start <= now:  # a window in the future would outlive every prune
            return "window_time"
        return None

    def plausible(self, aggregates: list[Aggregate], now: float, node_id: str = "") -> list[Aggregate]:
        """What a heartbeat may add: at most MAX_ROWS_PER_BEAT aggregates without a
        :meth:`problem`; the others are refused, counted per reason."""
        known = self.known_tenants()
        kept, refused = screen(aggregates, lambda a: self.problem(a, now, known), MAX_ROWS_PER_BEAT)
        for why, n in refused.items():
            self.on_refused(node_id, why, n)
        return kept

    def within_cohort_limit(self, node_id: str, aggregates: list[Aggregate]) -> list[Aggregate]:
        """``aggregates`` but the cells past ``max_node_cohorts`` distinct keys of the node in a
        tenant's window, counting what earlier heartbeats stored (a resend of a held key passes):
        made-up keys cannot grow the store without end. The rest refused as ``too_many_cohorts``."""
        kept = within_key_limit(aggregates, lambda a: (a.tenant, a.window_start),
                                lambda a: None if a.cohort == ALL else a.cohort,
                                lambda g: self.store.cohort_keys(node_id, *g) - {ALL}, self.max_node_cohorts)
        if len(kept) < len(aggregates):
            self.on_refused(node_id, "too_many_cohorts", len(aggregates) - len(kept))
        return kept

    def ingest(self, node_id: str, aggregates: list[Aggregate], now: float | None = None) -> int:
        """Store a node's closed windows, bounded; returns how many had to be clipped or dropped."""
        if not aggregates:
            return 0
        now = time.time() if now is None else now
        kept = self.within_cohort_limit(node_id, self.plausible(aggregates, now, node_id))
        dropped = len(aggregates) - len(kept)
        if not kept:
            return dropped
        aggregates = kept
        with self._lock:
            cap = self.cap(node_id, now)  # from before this heartbeat: one batch cannot ramp itself up
            bounded = [self.bound(a, cap) for a in aggregates]
            largest, raised_at = self._history(node_id, now)
            reported = max(a.users for a, _ in bounded)
            if reported > largest:  # the clock of the next step starts now
                self._largest[node_id] = (reported, now)
            self.store.put_aggregates(node_id, [a for a, _ in bounded])
            self.version += 1
        return dropped + sum(clipped for _, clipped in bounded)

    def changed(self) -> None:
        """Quarantine changed: merges differ from now on."""
        with self._lock:
            self.version += 1

    def _cells(self, now: float) -> dict[tuple[str, int, str], dict[str, Aggregate]]:
        """Per (tenant, window, cohort), each non-quarantined node's part, share-capped: the
        one-node bound holds in every tenant's cell."""
        cells: dict[tuple[str, int, str], dict[str, Aggregate]] = {}
        quarantined = self.store.quarantined()
        for node_id, a in self.store.aggregates_since(int(now - self.horizon_s)):
            if node_id in quarantined:
                continue
            tenant = a.tenant or self.legacy_tenant
            if a.tenant != tenant:
                a = msgspec.structs.replace(a, tenant=tenant)
            parts = cells.setdefault((tenant, a.window_start, a.cohort), {})
            if node_id in parts:  # a node's legacy row and its tenant's row of one window: one part
                total = self._sum([parts[node_id], a], a.window_start, a.window_seconds, a.cohort, tenant)
                a = self.bound(total, self.cap(node_id, now))[0]
            parts[node_id] = a
        return topic_share.capped({key: share_capped(parts, self.max_node_share, self.min_size)
                                   for key, parts in cells.items()}, self.max_node_share, self.min_size)

    @staticmethod
    def _sum(parts, window_start: int, window_seconds: int, cohort: str, tenant: str) -> Aggregate:
        total = Aggregate(tenant=tenant, window_start=window_start, window_seconds=window_seconds, cohort=cohort)
        for a in parts:
            _add(total, a)
        return total

    def merged(self, now: float, tenant: str | None = None) -> list[Aggregate]:
        """Per tenant, window and cohort, summed over edges (each node's share capped); cohorts
        under the minimum size withheld. ``tenant``: that tenant's cells only."""
        cells = (self._sum(parts.values(), w, next(iter(parts.values())).window_seconds, cohort, t)
                 for (t, w, cohort), parts in self._cells(now).items() if tenant is None or t == tenant)
        return sorted((c for c in cells if c.users >= self.min_size),
                      key=lambda c: (c.tenant, c.window_start, c.cohort))

    def everyone(self, now: float, tenant: str | None = None) -> dict[tuple[str, int], dict[str, Aggregate]]:
        """Per (tenant, window), each node's ``all`` cell (every consenting user of the tenant
        at that node once), bounded as in :meth:`merged`, where the merged cell meets the minimum
        size: what topic trends read, node by node."""
        return {(t, w): parts for (t, w, cohort), parts in self._cells(now).items()
                if cohort == ALL and (tenant is None or t == tenant)
                and sum(a.users for a in parts.values()) >= self.min_size}

    def priors(self, now: float) -> list[Aggregate]:
        """Per tenant and cohort over the horizon, from merged cells that meet the minimum size;
        each node's share capped again over the whole horizon (so one node cannot own a prior by
        filling windows the others left empty)."""
        per_node: dict[tuple[str, str], dict[str, Aggregate]] = {}
        horizon = int(self.horizon_s)
        for (tenant, _, cohort), parts in self._cells(now).items():
            if sum(a.users for a in parts.values()) < self.min_size:
                continue
            nodes = per_node.setdefault((tenant, cohort), {})
            for node_id, a in parts.items():
                if node_id not in nodes:
                    nodes[node_id] = Aggregate(tenant=tenant, window_start=0, window_seconds=horizon, cohort=cohort)
                _add(nodes[node_id], a)
        return [self._sum(share_capped(nodes, self.max_node_share, self.min_size).values(), 0, horizon, cohort,
                          tenant)
                for (tenant, cohort), nodes in sorted(per_node.items())]

    def prune(self, now: float) -> None:
        self.store.prune_aggregates(int(now - self.horizon_s - 3600))
