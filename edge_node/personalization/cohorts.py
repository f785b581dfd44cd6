"""Cohort aggregates: per window and cohort key (region/device/daypart), consenting users only.

A cohort cell holds counts and clipped sums; each user's contribution to a cell is kept
apart only while the window is open (so a withdrawal of ``cohort_analytics`` can take it
back out) and expires with the window. A user counts in at most ``max_per_user``
cohorts per window (plus the node-wide ``all`` cell). Cells under ``min_size`` users are
never exported and never used as a prior: a small cohort could reveal one person.

Every cell belongs to one tenant (a brand, ``sentiedge_core.access.App.tenant_id``): a user
counts in their own tenant's cells (``ALL`` included), priors and windows are per tenant, and
nothing of one tenant's cohorts shapes another's decisions. In the store a cell is named by
:func:`cell_id` (tenant, a separator no cohort key or tenant can hold, then the cohort key);
the cohort keys callers see ("eu/mobile/evening") stay as they are. Cells written before
tenants (a bare cohort key) belong to the legacy tenant (``AppSet.legacy_tenant``, the one
whose users kept their pseudonyms); with none, they are left out of every export and prior,
and expire with their window.
"""

from __future__ import annotations

import datetime as dt
import math

import msgspec

from edge_node.records import CohortCell, Keys, Member
from edge_node.store import EdgeStore
from sentiedge_core.cohorts import ALL, ASPECT_TEXTS_PER_USER  # ALL: a tenant's cell of every consenting user

UNKNOWN = "unknown"
SEPARATOR = "\x1f"  # neither a tenant name nor a cohort key holds a control character
SENTIMENT_CLIP = 1.0  # one user moves a cell's sentiment sum by at most this much per window
CATEGORY_CLIP = 3.0  # ... and each category's weight by at most this much


def daypart(at: float, tz_offset_minutes: int = 0) -> str:
    hour = dt.datetime.fromtimestamp(at + tz_offset_minutes * 60, dt.UTC).hour
    if 5 <= hour < 12:
        return "morning"
    if 12 <= hour < 17:
        return "afternoon"
    if 17 <= hour < 22:
        return "evening"
    return "night"


def cohort_key(region: str | None, device: str | None, part: str) -> str:
    def clean(value: str | None) -> str:
        value = (value or "").strip().lower().replace("/", "-")
        return value or UNKNOWN

    return f"{clean(region)}/{clean(device)}/{part}"


# Where and when a request comes from: what names its cohort (a request schema of the HTTP API).
class Context(msgspec.Struct, kw_only=True):
    region: str | None = None
    device: str | None = None
    daypart: str | None = None  # morning|afternoon|evening|night; default from the time
    referrer: str | None = None
    tz_offset_minutes: int = 0


def context_cohort(context: Context | None, at: float) -> str:
    context = context or Context()
    part = context.daypart or daypart(at, context.tz_offset_minutes)
    return cohort_key(context.region, context.device, part)


def cell_id(tenant: str, key: str) -> str:
    """The name of a tenant's cohort cell in the store."""
    return f"{tenant}{SEPARATOR}{key}"


def split_cell_id(cell: str, legacy_tenant: str = "") -> tuple[str, str] | None:
    """(tenant, cohort key) of a stored cell name; a bare key from before tenants is the legacy
    tenant's, or None (left out) when there is none."""
    tenant, sep, key = cell.partition(SEPARATOR)
    if sep:
        return tenant, key
    return (legacy_tenant, cell) if legacy_tenant else None


def _is_all(cell: str) -> bool:
    return cell == ALL or cell.endswith(SEPARATOR + ALL)


TOPIC_FIELDS = ("topic_texts", "topic_negative", "topic_events", "topic_sentiment")


def cap_categories(record: CohortCell | Member, limit: int) -> None:
    """Keep a cell's (or a member's) ``limit`` strongest categories; the rest leave every
    per-category field, so the record's size is bounded whatever its users send."""
    if len(record.categories) <= limit:
        return
    keep = set(sorted(record.categories, key=lambda c: -abs(record.categories[c]))[:limit])
    record.categories = {c: w for c, w in record.categories.items() if c in keep}
    for field in TOPIC_FIELDS:
        setattr(record, field, {c: v for c, v in getattr(record, field).items() if c in keep})


def _clip(value: float, bound: float) -> float:
    return max(-bound, min(bound, value))


ASPECT_FIELDS = ("aspect_texts", "aspect_negative", "aspect_sentiment")


def _shift_aspects(cell: CohortCell, member: Member, sign: int) -> None:
    """Add (``sign`` 1) or take back (-1) one user's topic mentions: at most
    ASPECT_TEXTS_PER_USER texts per topic (negative ones in proportion), and the user's sum of
    the topic's scores clipped to ±SENTIMENT_CLIP; the same member always moves the same amounts."""
    for topic, n in member.aspect_texts.items():
        if n <= 0:
            continue
        counted = min(n, ASPECT_TEXTS_PER_USER)
        negative = min(member.aspect_negative.get(topic, 0), n) * counted // n
        texts = cell.aspect_texts.get(topic, 0) + sign * counted
        if texts <= 0:  # nothing of the topic left in the cell
            for field in ASPECT_FIELDS:
                getattr(cell, field).pop(topic, None)
            continue
        cell.aspect_texts[topic] = texts
        cell.aspect_negative[topic] = max(0, cell.aspect_negative.get(topic, 0) + sign * negative)
        cell.aspect_sentiment[topic] = (cell.aspect_sentiment.get(topic, 0.0)
                                        + sign * _clip(member.aspect_sentiment.get(topic, 0.0), SENTIMENT_CLIP))


class CohortPrior(msgspec.Struct, kw_only=True):
    """What a cohort looks like over the recent windows: per-user means, never per-user data."""

    users: int = 0  # sum over windows of distinct users per window
    texts: int = 0
    negative: int = 0
    events: int = 0
    sentiment_sum: float = 0.0
    categories: dict[str, float] = {}

    def add(self, cell: CohortCell) -> None:
        self.users += cell.users
        self.texts += cell.texts
        self.negative += cell.negative
        self.events += cell.events
        self.sentiment_sum += cell.sentiment_sum
        for c, w in cell.categories.items():
            self.categories[c] = self.categories.get(c, 0.0) + w

    @property
    def mean_sentiment(self) -> float:
        return self.sentiment_sum / self.users if self.users else 0.0

    @property
    def negative_share(self) -> float:
        return self.negative / self.texts if self.texts else 0.0

    def scores(self) -> dict[str, float]:
        """Per-category affinity of an average member, on the same log scale as a user's."""
        if not self.users:
            return {}
        return {c: math.copysign(math.log1p(abs(w / self.users)), w) for c, w in self.categories.items()}


class CohortBook:
    def __init__(self, store: EdgeStore, *, window_s: float, min_size: int, max_per_user: int,
                 horizon_s: float, prior_cache_s: float = 5.0, max_categories: int = 1000,
                 max_cohorts: int = 2000) -> None:
        self.store = store
        self.max_categories = max_categories  # per cell and per member (strongest kept)
        self.max_cohorts = max_cohorts  # distinct cohort cells per window; beyond, users count in "all" only
        self.window_s = window_s
        self.min_size = min_size
        self.max_per_user = max_per_user
        self.horizon_s = horizon_s
        self.prior_cache_s = prior_cache_s
        self._priors: tuple[float, dict[str, dict[str, CohortPrior]]] | None = None
        # Merged priors from the control plane (other edges): tenant → cohort → prior; set by the sync agent.
        self.remote: dict[str, dict[str, CohortPrior]] = {}
        # Merged closed windows from every edge: (window, tenant, cohort) → cell; set by the sync agent.
        self.remote_windows: dict[tuple[int, str, str], CohortCell] = {}
        # The tenant that owns cells from before tenants (bare keys); set with the node's apps.
        self.legacy_tenant = ""
        # Bumped whenever the priors a decision can see change (local refresh or remote update).
        self.generation = 0

    def window_of(self, at: float) -> int:
        return int(at // self.window_s * self.window_s)

    def _open_windows(self, now: float) -> list[int]:
        # Member records live for two windows, so the current and the previous one are open.
        current = self.window_of(now)
        return [current, current - int(self.window_s)]

    def contribute(self, subject: str, key: str, at: float, member: Member, now: float, *, tenant: str) -> bool:
        """Add one user's contribution to ``tenant``'s cell ``key`` (and its ``all``) in the window
        of ``at``.

        Call inside a store transaction. False when the user already counts in
        ``max_per_user`` other cohorts this window (the contribution is not counted).
        """
        window = self.window_of(at)
        ttl = window + 2 * self.window_s - now
        if ttl <= 0:
            return False  # the window closed long ago: too late to count
        cell, everyone = cell_id(tenant, key), cell_id(tenant, ALL)
        stored = self.store.get(f"joined|{window}|{subject}", Keys)
        joined = stored or Keys()
        if cell not in joined.keys and self._full(window, cell, tenant):
            cell = everyone  # a window with max_cohorts cells takes no new cohort: the tenant-wide cell only
        joins = cell not in joined.keys
        if joins and not _is_all(cell) and sum(not _is_all(k) for k in joined.keys) >= self.max_per_user:
            return False
        if joins:
            joined.keys.append(cell)  # the tenant's "all" cell too: withdraw() finds it here
        if everyone not in joined.keys:
            joined.keys.append(everyone)
            joins = True
        if joins or stored is None:
            self.store.put(f"joined|{window}|{subject}", joined, ttl=ttl)
        for target in dict.fromkeys((cell, everyone)):
            self._add(window, target, subject, member, ttl)
        return True

    def _full(self, window: int, cell: str, tenant: str) -> bool:
        """The tenant has ``max_cohorts`` cells in this window already (its "all" not counted):
        one tenant's many cohorts never crowd out another's."""
        if self.store.get(f"cohort|{window}|{cell}", CohortCell) is not None:
            return False
        index = self.store.get(f"cohorts|{window}", Keys)
        if index is None:
            return False
        prefix = tenant + SEPARATOR
        return sum(k.startswith(prefix) and not _is_all(k) for k in index.keys) >= self.max_cohorts

    def _add(self, window: int, key: str, subject: str, delta: Member, ttl: float) -> None:
        member_key = f"member|{window}|{key}|{subject}"
        old = self.store.get(member_key, Member)
        cell = self.store.get(f"cohort|{window}|{key}", CohortCell)
        if cell is None:
            cell = CohortCell()
            index = self.store.get(f"cohorts|{window}", Keys) or Keys()
            index.keys.append(key)
            self.store.put(f"cohorts|{window}", index, ttl=self.horizon_s + self.window_s)
        new = Member(texts=(old.texts if old else 0) + delta.texts,
                     negative=(old.negative if old else 0) + delta.negative,
                     events=(old.events if old else 0) + delta.events,
                     sentiment_sum=(old.sentiment_sum if old else 0.0) + delta.sentiment_sum,
                     categories=dict(old.categories) if old else {},
                     topic_texts=dict(old.topic_texts) if old else {},
                     topic_negative=dict(old.topic_negative) if old else {},
                     topic_events=dict(old.topic_events) if old else {},
                     topic_sentiment=dict(old.topic_sentiment) if old else {},
                     **{f: dict(getattr(old, f)) if old else {} for f in ASPECT_FIELDS})
        for c, w in delta.categories.items():
            new.categories[c] = new.categories.get(c, 0.0) + w
        for field in ("topic_texts", "topic_negative", "topic_events", "topic_sentiment", *ASPECT_FIELDS):
            counts = getattr(new, field)
            for c, n in getattr(delta, field).items():
                counts[c] = counts.get(c, 0) + n
        cap_categories(new, self.max_categories)
        if old is None:
            cell.users += 1
        self._shift(cell, old, -1)
        self._shift(cell, new, +1)
        cap_categories(cell, self.max_categories)
        self.store.put(member_key, new, ttl=ttl)
        self.store.put(f"cohort|{window}|{key}", cell, ttl=self.horizon_s + self.window_s)

    @staticmethod
    def _shift(cell: CohortCell, member: Member | None, sign: int) -> None:
        if member is None:
            return
        cell.texts += sign * member.texts
        cell.negative += sign * member.negative
        cell.events += sign * member.events
        cell.sentiment_sum += sign * _clip(member.sentiment_sum, SENTIMENT_CLIP)
        for c, w in member.categories.items():
            if sign < 0 and c not in cell.categories:
                continue  # capped out of the cell already: nothing of it left to take back
            value = cell.categories.get(c, 0.0) + sign * _clip(w, CATEGORY_CLIP)
            if abs(value) < 1e-9 and sign < 0:
                cell.categories.pop(c, None)
            else:
                cell.categories[c] = value
        for field in ("topic_texts", "topic_negative", "topic_events"):
            counts = getattr(cell, field)
            for c, n in getattr(member, field).items():
                counts[c] = counts.get(c, 0) + sign * n
                if counts[c] <= 0:
                    counts.pop(c)
        for c, total in member.topic_sentiment.items():
            if sign < 0 and c not in cell.topic_sentiment:
                continue
            cell.topic_sentiment[c] = cell.topic_sentiment.get(c, 0.0) + sign * _clip(total, SENTIMENT_CLIP)
        _shift_aspects(cell, member, sign)

    def _take_out(self, window: int, subject: str) -> dict[str, Member]:
        """Remove the user's contributions to one window's cells; returns them by cell key."""
        joined = self.store.get(f"joined|{window}|{subject}", Keys)
        if joined is None:
            return {}
        taken = {}
        # A record from before tenants names bare keys and the bare "all" (not in its list then):
        # each is looked up as written.
        for key in dict.fromkeys([*joined.keys, ALL]):
            member = self.store.get(f"member|{window}|{key}|{subject}", Member)
            cell = self.store.get(f"cohort|{window}|{key}", CohortCell)
            if member is None or cell is None:
                continue
            self._shift(cell, member, -1)
            cell.users -= 1
            self.store.put(f"cohort|{window}|{key}", cell, ttl=self.horizon_s + self.window_s)
            self.store.delete(f"member|{window}|{key}|{subject}")
            taken[key] = member
        self.store.delete(f"joined|{window}|{subject}")
        return taken

    def withdraw(self, subject: str, now: float) -> int:
        """Take the user's contributions back out of every open window; returns how many."""
        return sum(len(self._take_out(window, subject)) for window in self._open_windows(now))

    def merge(self, source: str, target: str, now: float) -> int:
        """Move one user's contributions in the open windows to another (an anonymous visitor
        who logged in; call inside a store transaction). A cell both counted in now counts one
        user; the target's bound of ``max_per_user`` cohorts per window holds (a cohort past it
        keeps only the node-wide share, as for a new event). Returns the cells that moved."""
        moved = 0
        for window in self._open_windows(now):
            taken = self._take_out(window, source)
            ttl = window + 2 * self.window_s - now
            if not taken or ttl <= 0:
                continue
            joined = self.store.get(f"joined|{window}|{target}", Keys) or Keys()
            for key, member in taken.items():  # both ids are one tenant's users: the same tenant's cells
                if key not in joined.keys:
                    if not _is_all(key) and sum(not _is_all(k) for k in joined.keys) >= self.max_per_user:
                        continue
                    joined.keys.append(key)
                self._add(window, key, target, member, ttl)
                moved += 1
            self.store.put(f"joined|{window}|{target}", joined, ttl=ttl)
        return moved

    def _stored(self, window: int) -> dict[str, CohortCell]:
        index = self.store.get(f"cohorts|{window}", Keys)
        if index is None:
            return {}
        found = {key: self.store.get(f"cohort|{window}|{key}", CohortCell) for key in index.keys}
        return {k: c for k, c in found.items() if c is not None}

    def all_cells(self, window: int) -> dict[tuple[str, str], CohortCell]:
        """Every tenant's cells of one window: (tenant, cohort key) → cell."""
        out = {}
        for name, cell in self._stored(window).items():
            split = split_cell_id(name, self.legacy_tenant)
            if split is None:
                continue
            if SEPARATOR in name:
                out[split] = cell
            else:  # in the window of the upgrade, the cell written since wins over the one from before
                out.setdefault(split, cell)
        return out

    def cells(self, window: int, tenant: str) -> dict[str, CohortCell]:
        """One tenant's cells of one window, by cohort key."""
        return {key: cell for (t, key), cell in self.all_cells(window).items() if t == tenant}

    def export(self, window: int) -> dict[tuple[str, str], CohortCell]:
        """Cells of one window big enough to leave the node (each tenant's ``all`` cell included),
        by (tenant, cohort key)."""
        return {k: c for k, c in self.all_cells(window).items() if c.users >= self.min_size}

    def set_remote(self, priors: dict[str, dict[str, CohortPrior]]) -> None:
        """The control plane's merged priors, tenant → cohort → prior. Priors without a tenant (a
        control plane from before tenants merged every app's users) are the legacy tenant's, or
        none's."""
        priors = dict(priors)
        untenanted = priors.pop("", None)
        if untenanted and self.legacy_tenant and self.legacy_tenant not in priors:
            priors[self.legacy_tenant] = untenanted
        self.remote = priors
        self.generation += 1

    def set_remote_windows(self, recent: dict[tuple[int, str, str], CohortCell]) -> None:
        self.remote_windows = {(w, t or self.legacy_tenant, k): c for (w, t, k), c in recent.items()
                               if t or self.legacy_tenant}

    def priors(self, now: float) -> dict[str, dict[str, CohortPrior]]:
        """Local priors over the horizon from cells of at least ``min_size`` users, tenant →
        cohort → prior, recomputed at most every ``prior_cache_s`` (a busy node contributes on
        every event)."""
        if self._priors is not None and 0 <= now - self._priors[0] < self.prior_cache_s:
            return self._priors[1]
        priors: dict[str, dict[str, CohortPrior]] = {}
        window = self.window_of(now)
        while window > now - self.horizon_s:
            for (tenant, key), cell in self.export(window).items():
                priors.setdefault(tenant, {}).setdefault(key, CohortPrior()).add(cell)
            window -= int(self.window_s)
        if self._priors is None or priors != self._priors[1]:
            self.generation += 1
        self._priors = (now, priors)
        return priors

    def prior(self, key: str, now: float, tenant: str) -> CohortPrior | None:
        """The tenant's prior for a cohort key: the control plane's merged one if any, else this
        node's. Never another tenant's."""
        return self.remote.get(tenant, {}).get(key) or self.priors(now).get(tenant, {}).get(key)
