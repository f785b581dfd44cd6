"""The cohort aggregate: one cohort in one closed window, summed over consenting users, as an
edge sends it and the control plane merges and streams it back. Nothing in it is per user.
Its one conversion to and from the wire is here too."""

from __future__ import annotations

import msgspec

from protos.sentiedge.v1 import sync_pb2

TOPIC_COUNTS = ("topic_texts", "topic_negative", "topic_events")  # per category, integers
TOPIC_SUMS = ("topic_sentiment",)  # per category, floats
ASPECT_COUNTS = ("aspect_texts", "aspect_negative")  # per topic of the tenant's topic set, integers
ASPECT_SUMS = ("aspect_sentiment",)  # per topic, floats
# One user's texts that count for one topic in one window (the edges clip; the control plane
# bounds a cell's mentions of a topic by its users times this): one user cannot make a trend.
ASPECT_TEXTS_PER_USER = 5
COUNTS = (*TOPIC_COUNTS, *ASPECT_COUNTS)  # every per-key count (scaled down together, rounded down)
SUMS = (*TOPIC_SUMS, *ASPECT_SUMS)

# The cohort keys the fleet defines: an edge names a cell "region/device/daypart" (each value
# lower case, stripped, without "/" or control characters; an unknown one "unknown") or "all",
# its tenant's cell of every consenting user (edge_node.personalization.cohorts.cohort_key).
ALL = "all"
DAYPARTS = ("morning", "afternoon", "evening", "night")
MAX_KEY_PART_CHARS = 256


def key_problem(cohort: str) -> str | None:
    """Why ``cohort`` is not a cohort key an edge can build, or None."""
    if cohort == ALL:
        return None
    parts = cohort.split("/")
    if len(parts) != 3:
        return "not region/device/daypart"
    region, device, part = parts
    for name, value in (("region", region), ("device", device)):
        if not value or len(value) > MAX_KEY_PART_CHARS or value != value.strip().lower() \
                or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
            return f"{name} is not a cleaned value"
    if part not in DAYPARTS:
        return f"daypart is not one of {', '.join(DAYPARTS)}"
    return None


WINDOWS = {  # what an edge aggregates per window, its setting, the control plane's, what a mismatch costs
    "cohort": ("COHORT_WINDOW_MINUTES", "every cohort cell it sends is refused (no trends, topic triggers or priors "
               "from it)"),
    "co-occurrence": ("COOCCURRENCE_WINDOW_MINUTES", "every co-occurrence window it sends is refused (nothing of it "
                      "in the item-neighbour tables)"),
}


def window_mismatch(kind: str, edge_s: int, control_plane_s: int) -> str | None:
    """Why an edge whose ``kind`` windows ("cohort", "co-occurrence") are ``edge_s`` long has
    every one refused by a control plane of ``control_plane_s``-second windows, or None where
    they agree (or the edge did not say)."""
    if not edge_s or edge_s == control_plane_s:
        return None
    setting, cost = WINDOWS[kind]
    return (f"{kind} window mismatch: this edge aggregates {edge_s}-second windows (EDGE_{setting}="
            f"{edge_s / 60:g}), the control plane {control_plane_s}-second ones (CP_{setting}="
            f"{control_plane_s / 60:g}): {cost} until both are set to the same value")


class Aggregate(msgspec.Struct, kw_only=True):
    window_start: int
    window_seconds: int
    cohort: str
    users: int = 0
    texts: int = 0
    negative: int = 0
    events: int = 0
    sentiment_sum: float = 0.0
    categories: dict[str, float] = {}  # sum over users of each user's clipped category weight
    topic_texts: dict[str, int] = {}  # per category: texts, negative texts, events, sentiment sum
    topic_negative: dict[str, int] = {}
    topic_events: dict[str, int] = {}
    topic_sentiment: dict[str, float] = {}
    # Per topic (sentiedge_core.topics), from the texts' aspects: texts mentioning it, the negative
    # ones, and the sum over users of each user's clipped sum of the topic's aspect scores.
    aspect_texts: dict[str, int] = {}
    aspect_negative: dict[str, int] = {}
    aspect_sentiment: dict[str, float] = {}
    # Whose users these are: aggregates are merged and served per tenant, never across tenants.
    # Empty only in rows from before tenants (see control_plane.cohorts.CohortMerge.legacy_tenant).
    tenant: str = ""


def add(into: Aggregate, a) -> None:
    """Sum ``a`` (an Aggregate, or an edge's cell with the same fields) into ``into``."""
    into.users += a.users
    into.texts += a.texts
    into.negative += a.negative
    into.events += a.events
    into.sentiment_sum += a.sentiment_sum
    for name in ("categories", *COUNTS, *SUMS):
        target = getattr(into, name)
        for c, v in getattr(a, name).items():
            target[c] = target.get(c, 0) + v


def to_proto(a) -> sync_pb2.CohortAggregate:
    """An Aggregate (or an edge cell with ``tenant``/``window_start``/``window_seconds``/``cohort`` given)
    on the wire."""
    return sync_pb2.CohortAggregate(
        tenant=a.tenant, window_start=a.window_start, window_seconds=a.window_seconds, cohort=a.cohort, users=a.users,
        texts=a.texts,
        negative=a.negative, events=a.events, sentiment_sum=a.sentiment_sum, categories=a.categories,
        topic_texts=a.topic_texts, topic_negative=a.topic_negative, topic_events=a.topic_events,
        topic_sentiment=a.topic_sentiment, aspect_texts=a.aspect_texts, aspect_negative=a.aspect_negative,
        aspect_sentiment=a.aspect_sentiment)


def from_proto(m: sync_pb2.CohortAggregate) -> Aggregate:
    return Aggregate(
        tenant=m.tenant, window_start=m.window_start, window_seconds=m.window_seconds, cohort=m.cohort, users=m.users,
        texts=m.texts,
        negative=m.negative, events=m.events, sentiment_sum=m.sentiment_sum, categories=dict(m.categories),
        topic_texts=dict(m.topic_texts), topic_negative=dict(m.topic_negative), topic_events=dict(m.topic_events),
        topic_sentiment=dict(m.topic_sentiment), aspect_texts=dict(m.aspect_texts),
        aspect_negative=dict(m.aspect_negative), aspect_sentiment=dict(m.aspect_sentiment))
