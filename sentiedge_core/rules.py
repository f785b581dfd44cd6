"""Cohort trigger rules as the control plane defines them and every edge applies them, and
their one conversion to and from the wire."""

from __future__ import annotations

import msgspec

from protos.sentiedge.v1 import sync_pb2

SIGNALS = ("mean_sentiment", "negative_share", "event_volume", "text_volume")
TOPIC_SIGNALS = ("negative_share", "text_volume")  # what a rule on a topic's aspects can watch
LABELS = {"mean_sentiment": "mean sentiment", "negative_share": "negative share", "event_volume": "event volume",
          "text_volume": "text volume"}


class Rule(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    cohort: str
    signal: str
    op: str
    threshold: float
    clear: float
    window_minutes: float
    min_size: int
    action: str
    category: str = ""
    segment: str = ""  # serve the action only to users of this learned segment ("s2"); empty: everyone
    tenant: str = ""  # this tenant's cohorts only; empty: each tenant's cohorts apart (never merged)
    topic: str = ""  # the signal over this topic's aspects (texts that mention it), not over whole texts


def matches(selector: str, key: str) -> bool:
    """A cohort selector ("eu/*/evening") against a cohort key ("eu/mobile/evening")."""
    want, have = selector.lower().split("/"), key.split("/")
    return len(want) == len(have) and all(w in ("*", h) for w, h in zip(want, have, strict=False))


def to_proto(r: Rule) -> sync_pb2.TriggerRule:
    return sync_pb2.TriggerRule(name=r.name, cohort=r.cohort, signal=r.signal, category=r.category, op=r.op,
                                threshold=r.threshold, clear=r.clear, window_minutes=r.window_minutes,
                                min_size=r.min_size, action=r.action, segment=r.segment, tenant=r.tenant,
                                topic=r.topic)


def from_proto(r: sync_pb2.TriggerRule) -> Rule:
    return Rule(name=r.name, cohort=r.cohort, signal=r.signal, category=r.category, op=r.op, threshold=r.threshold,
                clear=r.clear, window_minutes=r.window_minutes, min_size=r.min_size, action=r.action,
                segment=r.segment, tenant=r.tenant, topic=r.topic)
