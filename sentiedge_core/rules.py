"""Cohort trigger rules as the control plane defines them and every edge applies them."""

from __future__ import annotations

import msgspec

SIGNALS = ("mean_sentiment", "negative_share", "event_volume", "text_volume")
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


def matches(selector: str, key: str) -> bool:
    """A cohort selector ("eu/*/evening") against a cohort key ("eu/mobile/evening")."""
    want, have = selector.lower().split("/"), key.split("/")
    return len(want) == len(have) and all(w in ("*", h) for w, h in zip(want, have))
