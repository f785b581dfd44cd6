"""Which vector to use for a request, and the ranking built on it.

A user with ``personalization`` consent and a profile gets their own vector; anyone else
(anonymous, cold start, no consent, deleted) gets their cohort's prior when the cohort
is big enough, else the prior over all its cohorts, else nothing but popularity — never an
error. Priors are the caller's tenant's only: another brand's cohorts never shape a decision.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

import msgspec

from edge_node.errors import StorageFull
from edge_node.personalization import cooccurrence, ranking
from edge_node.personalization import profiles as personalization
from edge_node.personalization.cohorts import ALL, CohortBook, CohortPrior, Context, context_cohort
from edge_node.personalization.experiments import Assignment
from edge_node.personalization.exposure import ExplorationLog
from edge_node.personalization.profiles import Tuning
from edge_node.personalization.segments import SegmentBook, SegmentRef
from edge_node.personalization.triggers import Action
from edge_node.records import Affinity, Profile, Shown, ShownItem
from edge_node.store import EdgeStore

CACHE_ENTRIES = 50_000
SHOWN_ITEMS = 10  # the reasons of this many top items are kept per user for the preference center
ENTRY_BYTES = 600  # a cached decision's fixed cost (key, tuple, structs)
CATEGORY_BYTES = 260  # ... and per category it holds (scores, profile, prior); tracemalloc: ~255


class NamedAffinity(msgspec.Struct, kw_only=True):
    category: str
    score: float


class Decision(msgspec.Struct, kw_only=True):
    source: str  # "user", "cohort" or "global"
    vector: list[float]
    dimension: int
    cohort: str
    affinities: list[NamedAffinity]
    reason: str
    actions: list[Action] = []  # active cohort triggers, each with its reason
    experiments: list[Assignment] = []  # this unit's arm in every running experiment
    segment: SegmentRef | None = None  # the user's learned segment (own profile only)


class Chosen(msgspec.Struct, kw_only=True):
    decision: Decision
    scores: dict[str, float]
    profile: Profile | None
    cohort_scores: dict[str, float]


class Subjects(Protocol):
    """What decisions need of the privacy use case (edge_node.privacy.PrivacyBook)."""

    def subject_of(self, user_id: str) -> str:
        """The pseudonym whose records a user id reaches."""
        ...


class Personalizer:
    def __init__(self, store: EdgeStore, privacy: Subjects, cohorts: CohortBook, tuning: Tuning, *,
                 dimension: int, weights: ranking.Weights, on_signal_used: Callable[[float], None] | None = None,
                 cache_s: float = 1.0, allow_personal: Callable[[], bool] = lambda: True,
                 held_out: Callable[[str, str | None, str], str | None] = lambda unit, segment, tenant: None,
                 cache_bytes: int = 64 << 20, segments: SegmentBook | None = None,
                 neighbours: cooccurrence.Neighbours | None = None, exploration: ExplorationLog | None = None,
                 cold_start: ranking.ColdStart | None = None, no_table_popularity: float | None = None) -> None:
        self.store = store
        self.privacy = privacy
        self.cohorts = cohorts
        self.tuning = tuning
        self.dimension = dimension
        self.weights = weights
        self.on_signal_used = on_signal_used
        self.cache_s = cache_s
        self.allow_personal = allow_personal
        self.held_out = held_out
        self.segments = segments
        self.neighbours = neighbours  # the control plane's item-neighbour tables (the collaborative signal)
        self.exploration = exploration  # which items exploration slots showed a user (click-through)
        self.cold_start = cold_start or ranking.ColdStart()  # how users with few events are ranked
        # Popularity's weight for a user ranked by their own profile in a tenant with no neighbour
        # table (None: the blend's): the blend is tuned with the table, without it genre orders too much.
        self.no_table_popularity = no_table_popularity
        # (subject, tenant, cohort) → (expires, consent bytes, profile bytes, priors generation, decision, size)
        self._cache: OrderedDict[tuple[str | None, str, str], tuple] = OrderedDict()
        # Bounded by an estimate of its bytes, not only by entries: one entry holds every
        # category of its user and cohort. An entry over 1/64 of the budget is not cached.
        self.cache_bytes = cache_bytes
        self.cached_bytes = 0

    def _profile(self, user_id: str | None) -> tuple[str | None, Profile | None, str]:
        """The user's usable profile, or None with the reason it cannot be used."""
        if not user_id:
            return None, None, "anonymous request"
        subject = self.privacy.subject_of(user_id)
        if not self.allow_personal():
            return subject, None, "edge is catching up with the privacy log (failing closed)"
        if not self.store.consent(subject).allows("personalization"):
            return subject, None, "no personalization consent"
        profile = self.store.profile(subject)
        if profile is None or not profile.affinities:
            return subject, None, "no history yet"
        return subject, profile, ""

    def choose(self, user_id: str | None, context: Context | None, now: float, *, tenant: str) -> Chosen:
        """The decision for a user (scoped to ``tenant`` already) or an anonymous context of
        ``tenant``'s app, reused for up to ``cache_s`` while neither the user's consent nor their
        profile changes (any write makes it recomputed at once). Priors are the tenant's only."""
        key = context_cohort(context, now)
        experiment = self.held_out(user_id or key, None, tenant)
        if experiment is not None:  # the holdout of an experiment: no personalization at all
            return self._holdout(key, experiment)
        chosen = self._cached_choice(user_id, key, now, tenant)
        segment = chosen.decision.segment
        # An experiment that targets the user's segment can hold them out too.
        experiment = self.held_out(user_id or key, segment.id, tenant) if segment is not None else None
        return self._holdout(key, experiment, segment) if experiment is not None else chosen

    def _holdout(self, key: str, experiment: str, segment=None) -> Chosen:
        # The segment stays on the decision: the held-out user is still in the segment's
        # experiment, and its answer must name the arm it was counted in.
        decision = Decision(source="global", vector=[0.0] * self.dimension, dimension=self.dimension, cohort=key,
                            affinities=[], segment=segment,
                            reason=f"holdout arm of experiment {experiment}: no personalization")
        return Chosen(decision=decision, scores={}, profile=None, cohort_scores={})

    def _cached_choice(self, user_id: str | None, key: str, now: float, tenant: str) -> Chosen:
        subject = self.privacy.subject_of(user_id) if user_id else None
        versions = self.store.versions(subject) if subject else (None, None)
        self.cohorts.priors(now)  # refreshes the priors (and their generation) when due
        cached = self._cache.get((subject, tenant, key))
        # The stored bytes themselves: the same object while cached in memory, equal when read
        # again (workers sharing the store cache nothing between requests).
        if (cached is not None and cached[0] > now and cached[1] == versions[0] and cached[2] == versions[1]
                and cached[3] == self._generation()
                and (cached[4].decision.source != "user" or self.allow_personal())):
            return cached[4]
        chosen = self._choose(user_id, key, now, tenant)
        if self.cache_s > 0:
            # Read again: choosing may have written the profile (signal-to-action bookkeeping).
            versions = self.store.versions(subject) if subject else (None, None)
            self._remember((subject, tenant, key), (now + self.cache_s, versions[0], versions[1], self._generation(),
                                            chosen, _size(chosen)))
        return chosen

    def _generation(self) -> tuple[int, int]:
        """What else a cached decision depends on: the priors and the learned segments in force."""
        return self.cohorts.generation, self.segments.version if self.segments is not None else 0

    def _remember(self, key: tuple[str | None, str, str], entry: tuple) -> None:
        old = self._cache.pop(key, None)
        if old is not None:
            self.cached_bytes -= old[5]
        if entry[5] > self.cache_bytes // 64:
            return  # too big to be worth its room
        self._cache[key] = entry
        self.cached_bytes += entry[5]
        while self._cache and (self.cached_bytes > self.cache_bytes or len(self._cache) > CACHE_ENTRIES):
            self.cached_bytes -= self._cache.popitem(last=False)[1][5]

    def _choose(self, user_id: str | None, key: str, now: float, tenant: str) -> Chosen:
        subject, profile, why_not = self._profile(user_id)
        cohort_prior = self.cohorts.prior(key, now, tenant)
        cohort_scores = cohort_prior.scores() if cohort_prior else {}
        if profile is not None:
            scores = personalization.affinity_scores(profile, now, self.tuning)
            self._signal_used(subject, profile, now)
            source, reason = "user", f"your own activity ({profile.events} events)"
        elif cohort_prior is not None:
            scores, source = cohort_scores, "cohort"
            reason = f"{why_not}: prior of cohort {key} ({_users(cohort_prior)})"
        else:
            global_prior = self.cohorts.prior(ALL, now, tenant)
            scores, source = (global_prior.scores() if global_prior else {}), "global"
            reason = (f"{why_not}: prior over all cohorts ({_users(global_prior)})" if global_prior
                      else f"{why_not}: no cohort large enough yet, popularity only")
        vector = personalization.vector_of(scores, self.dimension)
        segment = self.segments.of(vector) if profile is not None and self.segments is not None else None
        decision = Decision(
            source=source, vector=vector.tolist(), dimension=self.dimension, cohort=key, reason=reason,
            affinities=named_affinities(profile, scores), segment=segment)
        return Chosen(decision=decision, scores=scores, profile=profile, cohort_scores=cohort_scores)

    def segment_of(self, user_id: str, now: float) -> SegmentRef | None:
        """The learned segment of a user whose own profile may be used, else None."""
        _, profile, _ = self._profile(user_id)
        if profile is None or self.segments is None:
            return None
        return self.segments.of(self.segments.vector(profile, now)[0])

    def _signal_used(self, subject: str | None, profile: Profile, now: float) -> None:
        if subject is None or profile.pending_signal_at is None:
            return
        if self.on_signal_used is not None:
            self.on_signal_used(max(now - profile.pending_signal_at, 0.0))
        profile.pending_signal_at = None
        try:
            self.store.put_profile(subject, profile)
        except StorageFull:
            pass  # bookkeeping only: a read is answered on a full disk too

    def rank(self, user_id: str | None, context: Context | None, candidates: list[ranking.Candidate], *,
             limit: int, exploration_slots: int, max_per_category: int, now: float, diversity_depth: int = 1,
             tenant: str) -> tuple[Decision, list[ranking.RankedItem]]:
        """The candidates in rank order for a user (scoped to ``tenant``) or a context. A user
        whose own profile is used is also ranked by the tenant's item-neighbour table: candidates
        often chosen with the items they chose lately."""
        chosen = self.choose(user_id, context, now, tenant=tenant)
        profile = chosen.profile
        personal = chosen.scores if chosen.decision.source == "user" else {}
        # Without a profile the chosen prior already plays the cohort's part.
        cohort = chosen.cohort_scores if profile is not None else chosen.scores

        def explain(name: str | None, display: str, score: float) -> str:
            # ``name`` is the item's own category or the parent of it that holds the evidence
            # ("drama" for a "Drama/Romance" item): shown in the item's own spelling, cut to it.
            affinity = evidence(profile, name) if profile and name else None
            depth = name.count("/") + 1 if name else 0
            shown = "/".join(personalization.display_category(display).split("/")[:depth]) if name else display
            return ranking.personal_reason(shown, affinity, score, now)

        day = int(now // 86400)
        weights = self.weights
        if user_id is not None and (profile.events if profile is not None else 0) < self.cold_start.events:
            exploration_slots = 0
            if chosen.decision.source == "user":  # their own thin profile; without one, the prior is the signal
                weights = msgspec.structs.replace(weights, popularity=self.cold_start.popularity)
        elif chosen.decision.source == "user" and self.no_table_popularity is not None and not self._has_table(tenant):
            weights = msgspec.structs.replace(weights, popularity=self.no_table_popularity)
        items = ranking.rank(candidates, personal=personal, cohort=cohort, weights=weights,
                             explain_personal=explain, cohort_name=chosen.decision.cohort, limit=limit,
                             exploration_slots=exploration_slots, max_per_category=max_per_category,
                             seed=f"{user_id or chosen.decision.cohort}|{day}", diversity_depth=diversity_depth,
                             collaborative=self._collaborative(profile, candidates, tenant))
        if chosen.decision.source == "user" and user_id:
            subject = self.privacy.subject_of(user_id)
            self._remember_shown(subject, items[:min(limit, SHOWN_ITEMS)], now)
            if self.exploration is not None:
                self._remember_explored(subject, [i.id for i in items[:limit] if i.exploration], now)
        return chosen.decision, items

    def _has_table(self, tenant: str) -> bool:
        """Whether the tenant's item-neighbour table is in force here (received and not empty)."""
        return self.neighbours is not None and bool(self.neighbours.of(tenant))

    def _collaborative(self, profile: Profile | None, candidates: list[ranking.Candidate],
                       tenant: str) -> dict[str, tuple[float, str]] | None:
        """Candidate → (similarity to the user's recent items, the item it is most often chosen with)."""
        if profile is None or not profile.items or self.neighbours is None:
            return None
        table = self.neighbours.lookup(tenant)
        if not table:
            return None
        return cooccurrence.scores(table, cooccurrence.recency_weights(profile.items), [c.id for c in candidates])

    def _remember_explored(self, subject: str, explored: list[str], now: float) -> None:
        if self.exploration is None:
            return
        try:
            self.exploration.shown(subject, explored, now)
        except StorageFull:
            pass  # measurement only: a ranking is answered on a full disk too

    def _remember_shown(self, subject: str, items: list[ranking.RankedItem], now: float) -> None:
        """Keep the reasons of what the user was shown because of their own activity (written
        only when they change): an item their profile pushed down was not shown *for* them."""
        fresh = [(item.id, item.reason, item.category) for item in items
                 if item.signals.personal > 0 and not item.exploration]
        old = self.store.shown(subject)
        if old is not None and [(i.item_id, i.reason, i.category) for i in old.items] == fresh:
            return
        try:
            self.store.put_shown(subject, Shown(items=[ShownItem(item_id=i, reason=r, at=now, category=c)
                                                       for i, r, c in fresh]))
        except StorageFull:
            pass  # explanation only: a ranking is answered on a full disk too


def evidence(profile: Profile, name: str) -> Affinity | None:
    """What the profile holds about ``name``: its own affinity, else (a parent known only through
    its children) the children's kinds added up, with the latest of their times."""
    own = profile.affinities.get(name)
    if own is not None:
        return own
    children = [a for key, a in profile.affinities.items() if key.startswith(name + "/")]
    if not children:
        return None
    kinds: dict[str, float] = {}
    for child in children:
        for kind, weight in child.kinds.items():
            kinds[kind] = kinds.get(kind, 0.0) + weight
    return Affinity(kinds=kinds, at=max(child.at for child in children))


def named_affinities(profile, scores: dict[str, float], k: int = 5) -> list[NamedAffinity]:
    """The top ``k`` categories, spelled as the user's client spelled them."""
    return [NamedAffinity(category=personalization.display_name(profile, c), score=round(s, 4))
            for c, s in personalization.top(scores, k)]


def _size(chosen: Chosen) -> int:
    categories = len(chosen.scores) + len(chosen.cohort_scores)
    if chosen.profile is not None:
        categories += len(chosen.profile.affinities)
    return ENTRY_BYTES + CATEGORY_BYTES * categories + 8 * len(chosen.decision.vector) + len(chosen.decision.cohort)


def _users(prior: CohortPrior) -> str:
    return f"{prior.users} user-windows"
