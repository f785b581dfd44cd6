"""How events move a user's profile, and how a profile becomes a vector.

* Behaviour: each event adds its type's weight to its category's affinity; sums decay
  with a half-life (default 7 days), so old habits fade.
* Sentiment (temporal ensembling): scores are not applied one by one. Each category keeps
  a decayed sum and count of scores over the sentiment window (15-60 minutes), shrunk
  toward neutral by a prior weight: one angry sentence moves a category by a fraction of
  its score, a sustained mood moves it fully.
* Vector: every category name maps to a fixed pseudo-random unit vector per path prefix
  ("beauty/skincare" shares its "beauty" part with "beauty/makeup"); the profile vector
  is the affinity-weighted sum, L2-normalized, float32, fixed dimension.
"""

from __future__ import annotations

import hashlib
import math
from functools import lru_cache

import numpy as np

from edge_node.records import Affinity, Profile, WindowedSentiment

# Behavioural weight of each event type.
EVENT_WEIGHTS = {
    "view": 0.2, "click": 0.5, "search": 0.3, "add_to_cart": 1.0, "purchase": 2.0,
    "review": 1.0, "rating": 1.5, "like": 1.0, "dislike": -1.0, "share": 0.8,
}
# Events that state an opinion: their weight takes the sign of the category's smoothed sentiment.
OPINION_KINDS = frozenset({"review", "rating"})
# Items a profile remembers as chosen lately (the collaborative signal's "your recent items").
RECENT_ITEMS = 50
# How strongly a category's smoothed sentiment adds to its affinity (behaviour is log-scaled).
SENTIMENT_INFLUENCE = 1.0


class Tuning:
    """The time constants and prior of the profile math, from settings."""

    def __init__(self, *, sentiment_window_s: float, half_life_s: float, prior_weight: float,
                 max_categories: int = 256) -> None:
        self.sentiment_window_s = sentiment_window_s
        self.half_life_s = half_life_s
        self.prior_weight = prior_weight
        self.max_categories = max_categories  # per profile: the weakest go when a new one comes

    def behaviour_decay(self, dt: float) -> float:
        return 0.5 ** (max(dt, 0.0) / self.half_life_s)

    def sentiment_decay(self, dt: float) -> float:
        return math.exp(-max(dt, 0.0) / self.sentiment_window_s)


def _decay_affinity(a: Affinity, now: float, tuning: Tuning) -> None:
    b = tuning.behaviour_decay(now - a.at)
    s = tuning.sentiment_decay(now - a.at)
    a.weight *= b
    a.kinds = {k: v * b for k, v in a.kinds.items() if abs(v * b) > 1e-4}
    a.sentiment_sum *= s
    a.sentiment_weight *= s
    a.at = max(a.at, now)


def _decay_sentiment(w: WindowedSentiment, now: float, tuning: Tuning) -> None:
    s = tuning.sentiment_decay(now - w.at)
    w.total *= s
    w.weight *= s
    w.negative *= s
    w.at = max(w.at, now)


def rating_signal(value: float) -> float:
    """A 1-5 star rating as a sentiment score in [-1, 1]."""
    return (value - 3.0) / 2.0


def modulated(kind: str, smoothed_sentiment: float | None, rating: float | None = None) -> float:
    """An event's weight once sentiment is known. The *smoothed* sentiment of the category
    is used, not the event's own score, so one angry sentence moves a category a little
    and a sustained mood moves it fully. Opinions (review, rating) take its sign; other
    events are scaled between 0.5x (negative) and 1.5x (positive).

    A rating states its own opinion: with ``rating`` (its signal in [-1, 1], 3 of 5 stars
    neutral) its weight is the rating weight times that signal, whatever the texts say, so a
    rating below neutral always moves the category down."""
    base = EVENT_WEIGHTS[kind]
    if kind == "rating" and rating is not None:
        return base * rating
    if smoothed_sentiment is None:
        return base
    if kind in OPINION_KINDS:
        return base * smoothed_sentiment
    return base * (1.0 + 0.5 * smoothed_sentiment)


def apply_event(profile: Profile, *, category: str, kind: str, sentiment: float | None, at: float,
                tuning: Tuning, display: str = "", rating: float | None = None) -> float:
    """Fold one event into the profile; returns its weight. ``sentiment`` in [-1, 1] is the
    score of the event's *text* (or None): only texts enter the sentiment window. ``rating``
    is a star rating's signal (:func:`rating_signal`): it weighs the event by itself and is
    no text. ``category`` is the normalized key; ``display`` the client's spelling, kept for
    showing it."""
    affinity = profile.affinities.get(category)
    if affinity is None:
        if len(profile.affinities) >= tuning.max_categories:
            _drop_weakest(profile, len(profile.affinities) - tuning.max_categories + 1, at, tuning)
        affinity = profile.affinities[category] = Affinity(at=at)
    if display:
        affinity.display = display
    _decay_affinity(affinity, at, tuning)
    smoothed_now = None
    if sentiment is not None:
        affinity.sentiment_sum += sentiment
        affinity.sentiment_weight += 1.0
        smoothed_now = smoothed(affinity.sentiment_sum, affinity.sentiment_weight, tuning.prior_weight)
        _decay_sentiment(profile.sentiment, at, tuning)
        profile.sentiment.total += sentiment
        profile.sentiment.weight += 1.0
        profile.sentiment.negative += 1.0 if sentiment < 0 else 0.0
    weight = modulated(kind, smoothed_now, rating)
    affinity.weight += weight
    affinity.kinds[kind] = affinity.kinds.get(kind, 0.0) + abs(weight)
    profile.events += 1
    profile.updated_at = max(profile.updated_at, at)
    return weight


def chosen(kind: str, own_signal: float | None) -> bool:
    """Whether an event says the user chose the item: anything but a dislike, a rating below
    neutral or a review whose own text is negative (``own_signal``: the rating's or the text's)."""
    return kind != "dislike" and (own_signal is None or own_signal >= 0)


def remember_item(profile: Profile, item: str, at: float, is_chosen: bool) -> None:
    """Keep ``item`` among the profile's recent chosen items (the latest RECENT_ITEMS), or take
    it out when the user turned against it."""
    if not is_chosen:
        profile.items.pop(item, None)
        return
    if profile.items.get(item, -1.0) >= at:
        return
    profile.items[item] = at
    if len(profile.items) > RECENT_ITEMS:
        profile.items = dict(sorted(profile.items.items(), key=lambda kv: kv[1])[-RECENT_ITEMS:])


def _drop_weakest(profile: Profile, count: int, now: float, tuning: Tuning) -> None:
    """Make room in a full profile: the categories with the weakest decayed affinity go. A
    category with a parent ("drama/romance") is folded into its nearest ancestor the profile
    holds (its decayed sums add there), else it becomes its top-level category ("drama"), so
    a user with many category paths keeps what they said about the genre; a top-level
    category is dropped outright only when no path is left."""
    remaining = count
    while remaining > 0:
        # Paths fold first (they lose only detail), the weakest first; a top-level category is
        # dropped only when no path is left to fold.
        weakest = sorted(profile.affinities, key=lambda c: ("/" not in c,
                                                            abs(affinity_score(profile.affinities[c], now, tuning))))
        for category in weakest:
            names = prefixes(category)
            if len(names) == 1:
                del profile.affinities[category]
                remaining -= 1
                break
            ancestor = next((n for n in reversed(names[:-1]) if n in profile.affinities), None)
            child = profile.affinities.pop(category)
            _decay_affinity(child, now, tuning)
            if ancestor is None:  # no room freed, but one level less: the next pass folds into it
                child.display = "/".join(child.display.split("/")[:1]) if child.display else ""
                profile.affinities[names[0]] = child
                break
            into = profile.affinities[ancestor]
            _decay_affinity(into, now, tuning)
            _add_affinity(into, child)
            remaining -= 1
            break
        else:
            return


def _add_affinity(into, other) -> None:
    """Add one category's decayed sums (behaviour, sentiment, kinds) to another's, both decayed
    to the same moment already."""
    into.weight += other.weight
    into.sentiment_sum += other.sentiment_sum
    into.sentiment_weight += other.sentiment_weight
    for kind, weight in other.kinds.items():
        into.kinds[kind] = into.kinds.get(kind, 0.0) + weight


def merge(into: Profile, other: Profile, now: float, tuning: Tuning) -> None:
    """Fold ``other`` (an anonymous visitor's profile) into ``into`` (the known user's) once:
    both are decayed to ``now``, then their decayed sums add, per category (behaviour, kinds,
    sentiment) and for the sentiment window. A category keeps the spelling last used; past
    the profile's category cap the weakest go, as they do for a new event."""
    for category, theirs in other.affinities.items():
        mine = into.affinities.get(category)
        spelled_later = mine is None or theirs.at > mine.at
        _decay_affinity(theirs, now, tuning)
        if mine is None:
            into.affinities[category] = theirs
            continue
        _decay_affinity(mine, now, tuning)
        _add_affinity(mine, theirs)
        if spelled_later and theirs.display:
            mine.display = theirs.display
    _decay_sentiment(into.sentiment, now, tuning)
    _decay_sentiment(other.sentiment, now, tuning)
    into.sentiment.total += other.sentiment.total
    into.sentiment.weight += other.sentiment.weight
    into.sentiment.negative += other.sentiment.negative
    if other.updated_at > into.updated_at:
        into.cohort = other.cohort or into.cohort
    into.events += other.events
    into.updated_at = max(into.updated_at, other.updated_at)
    for item, at in other.items.items():
        remember_item(into, item, at, True)
    pending = [at for at in (into.pending_signal_at, other.pending_signal_at) if at is not None]
    into.pending_signal_at = min(pending) if pending else None
    if len(into.affinities) > tuning.max_categories:
        _drop_weakest(into, len(into.affinities) - tuning.max_categories, now, tuning)


def forget_sentiment(profile: Profile) -> None:
    """Drop everything derived from the user's texts (consent for ``sentiment`` withdrawn)."""
    profile.sentiment = WindowedSentiment()
    for affinity in profile.affinities.values():
        affinity.sentiment_sum = 0.0
        affinity.sentiment_weight = 0.0


def smoothed(total: float, weight: float, prior_weight: float) -> float:
    """Mean sentiment shrunk toward neutral: a few texts count for little."""
    return total / (weight + prior_weight) if weight > 0 else 0.0


def category_sentiment(a: Affinity, now: float, tuning: Tuning) -> float:
    s = tuning.sentiment_decay(now - a.at)
    return smoothed(a.sentiment_sum * s, a.sentiment_weight * s, tuning.prior_weight)


def affinity_score(a: Affinity, now: float, tuning: Tuning) -> float:
    """Signed affinity: log-scaled behaviour plus smoothed sentiment."""
    weight = a.weight * tuning.behaviour_decay(now - a.at)
    behaviour = math.copysign(math.log1p(abs(weight)), weight)
    return behaviour + SENTIMENT_INFLUENCE * category_sentiment(a, now, tuning)


def affinity_scores(profile: Profile, now: float, tuning: Tuning) -> dict[str, float]:
    return {c: affinity_score(a, now, tuning) for c, a in profile.affinities.items()}


def windowed_sentiment(profile: Profile, now: float, tuning: Tuning) -> tuple[float, float, float]:
    """(smoothed mean, effective number of texts, negative share) over the window."""
    w = profile.sentiment
    s = tuning.sentiment_decay(now - w.at)
    weight = w.weight * s
    share = (w.negative * s) / weight if weight > 0 else 0.0
    return smoothed(w.total * s, weight, tuning.prior_weight), weight, share


def prefixes(category: str) -> list[str]:
    parts = [p for p in category.split("/") if p]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))] or [category]


@lru_cache(maxsize=65536)
def _unit(name: str, dim: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little")
    v = np.random.default_rng(seed).standard_normal(dim)
    return (v / np.linalg.norm(v)).astype(np.float32)


@lru_cache(maxsize=65536)
def category_vector(category: str, dim: int) -> np.ndarray:
    """Unit vector of a category: the sum of its own direction and each parent's, so
    siblings ("beauty/skincare", "beauty/makeup") point half the same way."""
    names = prefixes(normalize_category(category))
    v = sum(_unit(n, dim) for n in names)
    v = np.asarray(v, dtype=np.float32)
    v = v / np.float32(np.linalg.norm(v))
    v.setflags(write=False)  # cached: shared by every caller
    return v


def normalize_category(category: str) -> str:
    """The key a category is stored and compared by: case-insensitive, blank segments dropped."""
    return "/".join(p.strip().lower() for p in category.split("/") if p.strip())


def display_category(category: str) -> str:
    """The client's spelling, tidied the same way but with its case kept."""
    return "/".join(p.strip() for p in category.split("/") if p.strip())


def display_name(profile: Profile | None, name: str) -> str:
    """How to show a normalized category to the user: their own spelling when the profile has
    it, for the category or (a parent) any of its children; else the key itself."""
    if profile is None:
        return name
    affinity = profile.affinities.get(name)
    if affinity is not None and affinity.display:
        return affinity.display
    depth = name.count("/") + 1
    for key, child in profile.affinities.items():
        if child.display and key.startswith(name + "/"):
            return "/".join(child.display.split("/")[:depth])
    return name


def vector_of(scores: dict[str, float], dim: int) -> np.ndarray:
    v = np.zeros(dim, dtype=np.float32)
    for category, score in scores.items():
        v += np.float32(score) * category_vector(category, dim)
    norm = float(np.linalg.norm(v))
    return v / np.float32(norm) if norm > 0 else v


def top(scores: dict[str, float], k: int) -> list[tuple[str, float]]:
    return sorted(scores.items(), key=lambda kv: -abs(kv[1]))[:k]
