"""What the preference center shows a user about themselves, in levels a page can put into
words: each purpose and whether it is granted, the strongest inferred interests (never the
vector), the windowed mood, and the reasons of the items they were recently shown.

Nothing here knows HTML or a language; edge_node.http.preferences renders it with a string
catalog. Reading it changes nothing (the preference center is not a signal).
"""

from __future__ import annotations

import msgspec

from edge_node.personalization import profiles
from edge_node.records import PURPOSES, Consent
from edge_node.store import EdgeStore

STRONG_AFFINITY = 1.5  # an affinity score past this is "very interested"
MOOD_LEAN = 0.25  # a smoothed mean sentiment past ±this leans positive or negative
MIN_MOOD_TEXTS = 0.5  # fewer (time-decayed) texts in the window: too little to say anything


class Interest(msgspec.Struct, kw_only=True):
    category: str  # as the user's client spelled it
    level: str  # "strong", "positive" or "negative"


class Reason(msgspec.Struct, kw_only=True):
    item_id: str
    reason: str
    at: float
    category: str = ""


class Purpose(msgspec.Struct, kw_only=True):
    name: str
    granted: bool
    at: float | None  # when the user last chose
    policy_version: str | None


class PreferenceView(msgspec.Struct, kw_only=True):
    purposes: list[Purpose]
    profiled: bool  # personalization granted and a profile exists
    interests: list[Interest]
    mood: str  # "positive", "negative", "mixed" or "none"
    reasons: list[Reason]
    policy_version: str | None  # the latest policy version the user agreed to


def purposes_of(consent: Consent) -> list[Purpose]:
    out = []
    for name in PURPOSES:
        grant = consent.purposes.get(name)
        out.append(Purpose(name=name, granted=bool(grant and grant.granted), at=grant.at if grant else None,
                           policy_version=(grant.policy_version or None) if grant else None))
    return out


def mood_of(mean: float, texts: float) -> str:
    if texts < MIN_MOOD_TEXTS:
        return "none"
    if mean >= MOOD_LEAN:
        return "positive"
    if mean <= -MOOD_LEAN:
        return "negative"
    return "mixed"


def interest_level(score: float) -> str:
    if score < 0:
        return "negative"
    return "strong" if score >= STRONG_AFFINITY else "positive"


def view_of(store: EdgeStore, subject: str, now: float, tuning: profiles.Tuning, *, top: int = 5) -> PreferenceView:
    consent = store.consent(subject)
    purposes = purposes_of(consent)
    latest = max((g for g in consent.purposes.values()), key=lambda g: g.at, default=None)
    profile = store.profile(subject) if consent.allows("personalization") else None
    interests, mood = [], "none"
    if profile is not None:
        scores = profiles.affinity_scores(profile, now, tuning)
        interests = [Interest(category=profiles.display_name(profile, c), level=interest_level(s))
                     for c, s in profiles.top(scores, top) if abs(s) > 1e-3]
        mean, texts, _ = profiles.windowed_sentiment(profile, now, tuning)
        mood = mood_of(mean, texts)
    shown = store.shown(subject) if consent.allows("personalization") else None
    reasons = [Reason(item_id=i.item_id, reason=i.reason, at=i.at, category=i.category)
               for i in shown.items] if shown else []
    return PreferenceView(purposes=purposes, profiled=profile is not None, interests=interests, mood=mood,
                          reasons=reasons, policy_version=(latest.policy_version or None) if latest else None)
