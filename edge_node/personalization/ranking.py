"""Re-rank candidate items: personal affinity + cohort signal + popularity + the collaborative
signal ("often chosen with X"), then exploration slots and a per-category diversity limit, each
item with a reason."""

from __future__ import annotations

import hashlib
import math
import random

import msgspec

from edge_node.personalization.profiles import OPINION_KINDS, normalize_category, prefixes
from edge_node.records import Affinity


class Candidate(msgspec.Struct, kw_only=True):
    id: str
    category: str
    popularity: float = 0.0  # any non-negative scale; log-normalized across the candidates
    features: dict[str, float] = {}  # "boost" is added to the score; others are echoed back


class Weights(msgspec.Struct, frozen=True, kw_only=True):
    personal: float = 1.0
    cohort: float = 0.5
    popularity: float = 0.3
    collaborative: float = 1.0  # the item-neighbour table's score (personalization/cooccurrence.py)


class ColdStart(msgspec.Struct, frozen=True, kw_only=True):
    """How a user with fewer than ``events`` events is ranked: no exploration slot (a guess costs
    a two-item profile most) and, where their own profile is used, popularity weighs
    ``popularity`` (their own signal is thin; without a profile the cohort prior ranks as usual)."""

    events: int = 0  # 0: no user is ranked as a cold start
    popularity: float = 0.3


class Signals(msgspec.Struct, kw_only=True):
    personal: float
    cohort: float
    popularity: float
    collaborative: float = 0.0  # similarity to the user's recent items, the best candidate 1


COLLABORATIVE_REASON = "often chosen with "  # + the user's recent item that contributed most


class RankedItem(msgspec.Struct, kw_only=True):
    id: str
    category: str
    rank: int
    score: float
    reason: str
    signals: Signals
    exploration: bool = False


def expand(scores: dict[str, float]) -> dict[str, tuple[float, str]]:
    """Scores per category and per parent: a parent ("beauty") gets half the summed scores
    of its scored children; each entry keeps the category its score mostly came from."""
    out: dict[str, tuple[float, str]] = {c: (s, c) for c, s in scores.items()}
    parents: dict[str, list[tuple[float, str]]] = {}
    for c, s in scores.items():
        for parent in prefixes(c)[:-1]:
            parents.setdefault(parent, []).append((s, c))
    for parent, children in parents.items():
        if parent not in out:
            strongest = max(children, key=lambda t: abs(t[0]))[1]
            out[parent] = (0.5 * sum(s for s, _ in children), strongest)
    return out


def lookup(expanded: dict[str, tuple[float, str]], category: str) -> tuple[float, str | None]:
    """The category's score, else half its nearest scored parent's; with the name it was found
    under: the item's own category or one of its parents ("drama" for "Drama/Romance"), never
    a sibling, so a reason names what the item is."""
    names = prefixes(normalize_category(category))
    for depth, name in enumerate(reversed(names)):
        if name in expanded:
            score, _ = expanded[name]
            return score * (1.0 if depth == 0 else 0.5), name
    return 0.0, None


def scale_of(scores: dict[str, float]) -> float:
    """What a user's (or cohort's) scores are divided by so that the strongest is about ±1 and
    competes with popularity (in [0, 1]) on one scale; a weak profile (nothing above 1) is not
    blown up to full strength."""
    return max([1.0] + [abs(s) for s in scores.values()])


PHRASES = {
    "rating": "rated", "review": "reviewed", "purchase": "bought", "add_to_cart": "added to your cart",
    "click": "clicked on", "view": "viewed", "search": "searched for", "like": "liked", "dislike": "disliked",
    "share": "shared",
}


def _when(age_s: float) -> str:
    if age_s < 86400:
        return "today"
    if age_s < 7 * 86400:
        return "this week"
    return "recently"


def personal_reason(display: str, affinity: Affinity | None, score: float, now: float) -> str:
    """"because you rated Skincare positively this week": the opinion behind the score when
    the user expressed one, else the behaviour that weighs most. The mood is the score's own
    sign, so the reason always says what the ranking did with it: "because ... positively"
    lifts an item, "ranked lower because ... negatively" sinks it."""
    kinds = affinity.kinds if affinity else {}
    opinions = {k: v for k, v in kinds.items() if k in OPINION_KINDS}
    mood = ""
    if opinions and abs(score) >= 0.05:
        kind = max(opinions, key=opinions.__getitem__)
        mood = " positively" if score > 0 else " negatively"
    else:
        kind = max(kinds, key=kinds.__getitem__) if kinds else "view"
    when = _when(now - affinity.at) if affinity else "recently"
    if kind == "add_to_cart":
        phrase = f"you added {display} items to your cart {when}"
    else:
        phrase = f"you {PHRASES.get(kind, 'interacted with')} {display}{mood} {when}"
    return f"because {phrase}" if score > 0 else f"ranked lower because {phrase}"


def rank(candidates: list[Candidate], *, personal: dict[str, float], cohort: dict[str, float],
         weights: Weights, explain_personal, cohort_name: str | None, limit: int, exploration_slots: int,
         max_per_category: int, seed: str, diversity_depth: int = 1,
         collaborative: dict[str, tuple[float, str]] | None = None) -> list[RankedItem]:
    """Every candidate in rank order (the first ``limit`` are the top).

    ``explain_personal(category_name, display, score)`` words a personal reason about
    ``category_name``, the item's own category or the parent of it that holds the evidence.
    Personal and cohort scores are divided by :func:`scale_of` first (the strongest ±1), so
    popularity ([0, 1], log-normalized over the candidates) competes across categories, not
    only inside one. ``collaborative``: candidate id → (score in [0, 1], the user's recent item
    it is often chosen with). Diversity counts categories cut to ``diversity_depth`` levels
    ("beauty/skincare" and "beauty/makeup" are one "beauty" at depth 1; 0 counts the full path)."""

    def group(category: str) -> str:
        key = normalize_category(category)
        return "/".join(key.split("/")[:diversity_depth]) if diversity_depth > 0 else key

    top_pop = max((c.popularity for c in candidates), default=0.0)
    personal_x, cohort_x = expand(personal), expand(cohort)
    p_scale, q_scale = scale_of(personal), scale_of(cohort)
    scored = []
    for c in candidates:
        p, p_name = lookup(personal_x, c.category)
        q, _ = lookup(cohort_x, c.category)
        p, q = p / p_scale, q / q_scale
        pop = math.log1p(c.popularity) / math.log1p(top_pop) if top_pop > 0 else 0.0
        co, co_with = (collaborative or {}).get(c.id, (0.0, ""))
        signals = Signals(personal=round(p, 4), cohort=round(q, 4), popularity=round(pop, 4),
                          collaborative=round(co, 4))
        terms = {"personal": weights.personal * p, "cohort": weights.cohort * q,
                 "popularity": weights.popularity * pop, "collaborative": weights.collaborative * co}
        score = sum(terms.values()) + c.features.get("boost", 0.0)
        # The reason says what placed the item: a signal that pushed it down, when one did,
        # else the one that lifted it most. An item that sank never reads "popular right now".
        sinking = [k for k in ("personal", "cohort") if terms[k] <= -0.05]
        strongest = min(sinking, key=terms.__getitem__) if sinking else max(terms, key=terms.__getitem__)
        if abs(terms[strongest]) < 1e-9:
            reason = "no signal yet: ordered by popularity"
        elif strongest == "personal":
            reason = explain_personal(p_name, c.category, p)
        elif strongest == "cohort":
            reason = (f"popular with people like you ({cohort_name})" if q > 0
                      else f"ranked lower: less liked by people like you ({cohort_name})")
        elif strongest == "collaborative":
            reason = f"{COLLABORATIVE_REASON}{co_with}"
        else:
            reason = "popular right now"
        scored.append((score, c, signals, reason))
    scored.sort(key=lambda t: -t[0])
    limit = min(limit, len(scored))

    # Diversity: at most max_per_category of one category in the returned top; the rest wait.
    top: list[tuple] = []
    overflow: list[tuple] = []
    per_category: dict[str, int] = {}
    for item in scored:
        category = group(item[1].category)
        if len(top) < limit and per_category.get(category, 0) < max_per_category:
            top.append(item)
            per_category[category] = per_category.get(category, 0) + 1
        else:
            overflow.append(item)

    # Exploration: the last slots of the top go to items picked at random (stable for the
    # same user and day) from outside it, so the ranking keeps learning. Items the user has
    # shown they dislike are not explored back at them, and exploring keeps the diversity limit.
    slots = min(exploration_slots, max(limit - 1, 0))
    head, tail = top[: limit - slots], top[limit - slots:]
    counts: dict[str, int] = {}
    for item in top:
        counts[group(item[1].category)] = counts.get(group(item[1].category), 0) + 1
    rng = random.Random(int.from_bytes(hashlib.blake2b(seed.encode(), digest_size=8).digest(), "little"))
    order = [i for i, item in enumerate(overflow) if item[2].personal >= 0]
    rng.shuffle(order)
    picked: list[int] = []
    for i in order:
        if len(picked) == slots:
            break
        category = group(overflow[i][1].category)
        if counts.get(category, 0) < max_per_category:
            counts[category] = counts.get(category, 0) + 1
            picked.append(i)
    explored = [overflow[i] for i in sorted(picked)]
    unfilled = slots - len(explored)
    top = head + tail[:unfilled] + explored
    overflow = tail[unfilled:] + [item for i, item in enumerate(overflow) if i not in set(picked)]
    explored_ids = {item[1].id for item in explored}

    out = []
    for position, (score, c, signals, reason) in enumerate(top + overflow, start=1):
        exploring = c.id in explored_ids
        if exploring:
            reason = "exploring: something you might not have seen"
        elif position > limit and per_category.get(group(c.category), 0) >= max_per_category:
            reason = f"{reason} (outside the top {limit}: diversity limit {max_per_category} per {group(c.category)!r})"
        out.append(RankedItem(id=c.id, category=c.category, rank=position, score=round(score, 4), reason=reason,
                              signals=signals, exploration=exploring))
    return out
