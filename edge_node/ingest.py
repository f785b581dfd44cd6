"""Behavioural events → the user's profile and the cohort aggregates, consent permitting.

An event needs ``personalization`` to move the user's profile (and its recent chosen items) and
``cohort_analytics`` to count in a cohort and in the item co-occurrence counts (a chosen item:
not a dislike, a rating under 3 stars or a negative review); with neither it is dropped. Its
text is scored only with ``sentiment`` (otherwise the event still counts, its text is
ignored). Consent and suppression are read again after scoring, inside the transaction that
writes, so a deletion that lands while texts are being scored is never undone.

:class:`Events` is the use case the HTTP controllers call: every check, then ingest, the
tenant's cohort triggers re-evaluated, the results counted; and what a ranking showed (for the
exposure figures).
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import msgspec

from edge_node.config import EdgeSettings
from edge_node.errors import InvalidInput, LimitExceeded
from edge_node.metrics import EdgeMetrics
from edge_node.personalization import profiles as personalization
from edge_node.personalization.cohorts import CohortBook, Context, context_cohort
from edge_node.personalization.cooccurrence import PairBook
from edge_node.personalization.exposure import ExplorationLog, ExposureBook
from edge_node.personalization.profiles import EVENT_WEIGHTS, Tuning
from edge_node.personalization.ranking import COLLABORATIVE_REASON
from edge_node.personalization.segments import SegmentBook
from edge_node.personalization.triggers import TriggerBook
from edge_node.privacy import PrivacyBook
from edge_node.records import Consent, Member, Profile, Suppression
from sentiedge_core.cohorts import DAYPARTS
from sentiedge_core.inference import NEUTRAL, UNSUPPORTED, Sentiment

# Clocks differ; an event up to this far in the future is taken as "now".
FUTURE_TOLERANCE_S = 300.0


class Event(msgspec.Struct, kw_only=True):
    type: str
    item_id: str
    category: str
    text: str | None = None
    value: float | None = None  # rating value, 1..5
    timestamp: dt.datetime | None = None  # default: when the edge receives it
    source: str = "unknown"  # e.g. web, app, email
    provenance: str = "first_party"  # e.g. first_party, import


class Scorer(Protocol):
    """Scores texts; only a consenting user's (``subject``, of ``tenant``) may be sampled (EdgeNode.score)."""

    def __call__(self, texts: list[str], subject: str | None = None, *,
                 tenant: str = "") -> Awaitable[list[Sentiment]]: ...


class EventResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    index: int
    status: str  # "accepted" or "dropped"
    reason: str | None = None
    sentiment: Sentiment | None = None
    text_ignored: str | None = None  # why a text was not analysed


class IngestReport(msgspec.Struct, kw_only=True):
    accepted: int
    dropped: int
    dropped_reasons: dict[str, int]
    texts_scored: int
    texts_ignored: int
    cohort: str
    results: list[EventResult]




def event_time(event: Event, index: int, now: float) -> float:
    if event.timestamp is None:
        return now
    if event.timestamp.tzinfo is None:
        raise InvalidInput(f"events[{index}].timestamp needs a time zone (e.g. 2026-11-22T10:00:00Z)",
                           field=f"events[{index}].timestamp")
    at = event.timestamp.timestamp()
    if at > now + FUTURE_TOLERANCE_S:
        raise InvalidInput(f"events[{index}].timestamp is in the future", field=f"events[{index}].timestamp")
    return min(at, now)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_id(value: str, settings, field: str = "user_id") -> str:
    if not value.strip():
        raise InvalidInput(f"{field} is empty", field=field)
    if len(value) > settings.max_id_chars:
        raise InvalidInput(f"{field} has {len(value)} characters; the limit is {settings.max_id_chars} "
                           f"(EDGE_MAX_ID_CHARS)", field=field)
    if _CONTROL.search(value):
        raise InvalidInput(f"{field} contains control characters", field=field)
    return value


def check_context(context: Context | None, settings) -> None:
    if context is None:
        return
    for name in ("region", "device", "referrer"):
        value = getattr(context, name)
        if value is not None:  # cohort keys and echoed reasons are built from these
            check_id(value, settings, field=f"context.{name}")
    if context.daypart is not None and context.daypart not in DAYPARTS:
        raise InvalidInput(f"context.daypart {context.daypart[:40]!r} is not one of {', '.join(DAYPARTS)}",
                           field="context.daypart")
    if not -14 * 60 <= context.tz_offset_minutes <= 14 * 60:
        raise InvalidInput("context.tz_offset_minutes must be within -840..840", field="context.tz_offset_minutes")


def validate_event(event: Event, index: int, max_text_chars: int, max_id_chars: int) -> None:
    where = f"events[{index}]"
    if event.type not in EVENT_WEIGHTS:
        raise InvalidInput(f"{where}.type {event.type!r} is not one of {', '.join(EVENT_WEIGHTS)}",
                           field=f"{where}.type")
    for name in ("item_id", "category"):
        value = getattr(event, name)
        if not value.strip():
            raise InvalidInput(f"{where}.{name} is empty", field=f"{where}.{name}")
        if len(value) > max_id_chars:
            raise InvalidInput(f"{where}.{name} has {len(value)} characters; the limit is {max_id_chars}",
                               field=f"{where}.{name}")
    if event.text is not None and len(event.text) > max_text_chars:
        raise InvalidInput(f"{where}.text has {len(event.text)} characters; the limit is {max_text_chars} "
                           f"(EDGE_MAX_TEXT_CHARS)", field=f"{where}.text")
    if event.type == "rating" and (event.value is None or not 1 <= event.value <= 5):
        raise InvalidInput(f"{where}.value must be a rating from 1 to 5", field=f"{where}.value")


def _drop_reason(consent: Consent, suppression: Suppression | None, at: float, now: float,
                 retention_s: float, backfill: bool = False) -> str | None:
    if suppression is not None and at <= suppression.at:
        return "user_deleted"
    if now - at > retention_s and not backfill:
        return "older_than_retention"
    if not (consent.allows("personalization") or consent.allows("cohort_analytics")):
        return "no_consent_personalization_or_cohort_analytics"
    return None


def count_aspects(m: Member, aspects) -> None:
    """A text's aspects (one per topic it mentions) in the user's cohort contribution: a mention,
    negative when the aspect's label is (a neutral aspect is not), and its score."""
    for aspect in aspects:
        m.aspect_texts[aspect.topic] = m.aspect_texts.get(aspect.topic, 0) + 1
        m.aspect_negative[aspect.topic] = m.aspect_negative.get(aspect.topic, 0) + (aspect.label == "negative")
        m.aspect_sentiment[aspect.topic] = m.aspect_sentiment.get(aspect.topic, 0.0) + aspect.score


class Ingestor:
    def __init__(self, privacy: PrivacyBook, cohorts: CohortBook, tuning: Tuning, *, retention_s: float,
                 score: Scorer,
                 segments: SegmentBook | None = None, pairs: PairBook | None = None,
                 exploration: ExplorationLog | None = None,
                 on_exploration_click: Callable[[str], None] = lambda tenant: None) -> None:
        self.privacy = privacy
        self.store = privacy.store
        self.cohorts = cohorts
        self.tuning = tuning
        self.retention_s = retention_s
        self.score = score
        self.segments = segments
        self.pairs = pairs  # item co-occurrence (the collaborative signal)
        self.exploration = exploration  # which items exploration slots showed each user
        self.on_exploration_click = on_exploration_click

    async def ingest(self, user_id: str, events: list[Event], context: Context | None, now: float, *,
                     tenant: str, backfill: bool = False) -> IngestReport:
        """``user_id`` is scoped to ``tenant`` already; the events count in that tenant's cohorts.

        ``backfill``: an import of history (a replay of a log with its own time stamps). Events
        older than the retention window are kept rather than dropped as ``older_than_retention``;
        they are applied in time order and every sum decays from each event's own time, so
        old history weighs what its age says (a 7-day half-life leaves 5% after a month). Cohort
        windows that closed long ago are not reopened (those events move the profile only);
        consent and deletions apply as to any event."""
        subject = self.privacy.subject_of(user_id)
        times = [event_time(e, i, now) for i, e in enumerate(events)]
        consent = self.store.consent(subject)
        suppression = self.store.suppression(subject)
        to_score = [i for i, e in enumerate(events)
                    if e.text and e.text.strip() and consent.allows("sentiment")
                    and _drop_reason(consent, suppression, times[i], now, self.retention_s, backfill) is None]
        scored = dict(zip(to_score, await self.score([events[i].text or "" for i in to_score], subject, tenant=tenant)
                          if to_score else [], strict=False))
        with self.store.transaction():
            # Read again: a withdrawal or deletion may have landed while texts were scored.
            consent = self.store.consent(subject)
            suppression = self.store.suppression(subject)
            return self._apply(subject, events, times, scored, consent, suppression, context, now, tenant,
                               backfill)

    def _apply(self, subject: str, events: list[Event], times: list[float], scored: dict[int, Sentiment],
               consent: Consent, suppression: Suppression | None, context: Context | None,
               now: float, tenant: str, backfill: bool = False) -> IngestReport:
        profile = self.store.profile(subject) if consent.allows("personalization") else None
        if profile is None and consent.allows("personalization"):
            profile = Profile()
        members: dict[tuple[str, int], Member] = {}
        by_index: dict[int, EventResult] = {}
        reasons: dict[str, int] = {}
        order = sorted(range(len(events)), key=times.__getitem__) if backfill else range(len(events))
        for i in order:
            event, at = events[i], times[i]
            reason = _drop_reason(consent, suppression, at, now, self.retention_s, backfill)
            if reason is not None:
                reasons[reason] = reasons.get(reason, 0) + 1
                by_index[i] = EventResult(index=i, status="dropped", reason=reason)
                continue
            sentiment = scored.get(i) if consent.allows("sentiment") else None
            result = EventResult(index=i, status="accepted", sentiment=sentiment)
            if sentiment is not None and sentiment.label == UNSUPPORTED:
                result.text_ignored = UNSUPPORTED  # shown to the caller, but moves no profile or cohort
                sentiment = None
            elif event.text and sentiment is None:
                result.text_ignored = "no_consent_sentiment" if not consent.allows("sentiment") else "empty_text"
            elif sentiment is not None and sentiment.label == NEUTRAL:
                sentiment = None  # a neutral text states no opinion: it moves no affinity and no cohort sentiment
            by_index[i] = result
            category = personalization.normalize_category(event.category)
            # A rating's stars are its own opinion, not a text: they weigh the event and never
            # enter the sentiment window (a user who only rates has sent no texts).
            rating = personalization.rating_signal(event.value) if event.type == "rating" and event.value else None
            signal = sentiment.score if sentiment is not None else None
            key = context_cohort(context, at)
            chose = personalization.chosen(event.type, rating if rating is not None else signal)
            self._items(subject, event, at, now, chose, profile, consent, tenant)
            if profile is not None:
                weight = personalization.apply_event(profile, category=category, kind=event.type, sentiment=signal,
                                                     at=at, tuning=self.tuning, rating=rating,
                                                     display=personalization.display_category(event.category))
                profile.cohort = key
            else:  # cohort-only consent: the event's own signal, unsmoothed (cohorts smooth over users)
                weight = personalization.modulated(event.type, signal, rating)
            if consent.allows("cohort_analytics"):
                m = members.setdefault((key, self.cohorts.window_of(at)), Member())
                m.events += 1
                m.topic_events[category] = m.topic_events.get(category, 0) + 1
                m.categories[category] = m.categories.get(category, 0.0) + weight
                if sentiment is not None:
                    m.texts += 1
                    m.negative += sentiment.score < 0
                    m.sentiment_sum += sentiment.score
                    m.topic_texts[category] = m.topic_texts.get(category, 0) + 1
                    m.topic_sentiment[category] = m.topic_sentiment.get(category, 0.0) + sentiment.score
                    if sentiment.score < 0:
                        m.topic_negative[category] = m.topic_negative.get(category, 0) + 1
                    count_aspects(m, sentiment.aspects)
        results = [by_index[i] for i in range(len(events))]
        for (key, window), member in members.items():
            self.cohorts.contribute(subject, key, float(window), member, now, tenant=tenant)
        accepted = sum(r.status == "accepted" for r in results)
        if profile is not None and accepted:
            profile.pending_signal_at = profile.pending_signal_at or now
            self.store.put_profile(subject, profile)
            if self.segments is not None and consent.allows("cohort_analytics"):
                self.segments.contribute(subject, profile, now)
        return IngestReport(accepted=accepted, dropped=len(events) - accepted, dropped_reasons=reasons,
                            texts_scored=sum(r.sentiment is not None and r.text_ignored is None for r in results),
                            texts_ignored=sum(r.text_ignored is not None for r in results),
                            cohort=context_cohort(context, now), results=results)

    def _items(self, subject: str, event: Event, at: float, now: float, chose: bool, profile: Profile | None,
               consent: Consent, tenant: str) -> None:
        """The item itself: the profile's recent items, the co-occurrence basket, and a click on
        what an exploration slot showed."""
        if profile is not None:
            personalization.remember_item(profile, event.item_id, at, chose)
        if chose and self.pairs is not None and consent.allows("cohort_analytics"):
            self.pairs.add(subject, event.item_id, at, now, tenant=tenant)
        if event.type == "click" and self.exploration is not None and \
                self.exploration.clicked(subject, event.item_id, at):
            self.on_exploration_click(tenant)


class Events:
    def __init__(self, settings: EdgeSettings, *, ingestor: Ingestor, triggers: TriggerBook, metrics: EdgeMetrics,
                 exposure: ExposureBook, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.ingestor = ingestor
        self.triggers = triggers
        self.metrics = metrics
        self.exposure = exposure
        self.clock = clock

    async def record_events(self, user_id: str, events: list, context, *, tenant: str) -> IngestReport:
        """A user's events (the caller is authorized for the user, ``user_id`` scoped to the
        caller's ``tenant``): every check in one place, then ingest (score, profile, the tenant's
        cohorts), re-evaluate the tenant's cohort triggers, count."""
        settings = self.settings
        if not events:
            raise InvalidInput("events must hold at least one event", field="events")
        if len(events) > settings.max_events_per_request:
            raise LimitExceeded(f"events holds {len(events)} items; the limit is "
                                f"{settings.max_events_per_request} (EDGE_MAX_EVENTS_PER_REQUEST)", field="events")
        check_context(context, settings)
        for i, event in enumerate(events):
            validate_event(event, i, settings.max_text_chars, settings.max_id_chars)
        report = await self.ingestor.ingest(user_id, events, context, self.clock(), tenant=tenant)
        self.triggers.evaluate(report.cohort, self.clock(), tenant)  # a crossing is timed from here
        for result in report.results:
            self.metrics.events.labels(result.status, result.reason or "").inc()
        return report

    def observe_ranking(self, tenant: str, offered: list[str], top: list) -> None:
        """What a ranking offered and showed, for the exposure figures (item ids only)."""
        self.exposure.observe(tenant, offered, [item.id for item in top], self.clock())
        explored = sum(item.exploration for item in top)
        self.metrics.shown(tenant, len(top) - explored, explored,
                           sum(item.reason.startswith(COLLABORATIVE_REASON) for item in top))
