"""Wire schemas of the edge HTTP API (msgspec Structs; they only grow, with defaults)."""

from __future__ import annotations

import datetime as dt

import msgspec

from edge_node.ingest import Context, Event
from edge_node.personalization.decisions import NamedAffinity
from edge_node.personalization.experiments import Assignment
from edge_node.personalization.ranking import Candidate, RankedItem
from edge_node.personalization.segments import SegmentRef
from edge_node.personalization.triggers import Action
from sentiedge_core.inference import Sentiment


class Wire(msgspec.Struct, kw_only=True):
    """Base for request and response bodies; unknown fields are ignored, never rejected."""


class SentimentRequest(Wire, kw_only=True):
    texts: list[str]


class ItemError(Wire, kw_only=True):
    """Why one text of a batch was not scored (the others were)."""

    index: int
    error: str  # empty_text
    message: str


class SentimentResponse(Wire, kw_only=True):
    results: list[Sentiment | None]  # one per text, in order; null where ``errors`` names the index
    errors: list[ItemError] = []


class ErrorBody(Wire, kw_only=True):
    error: str
    message: str
    field: str | None = None


class Health(Wire, kw_only=True, omit_defaults=True):
    status: str
    model: str | None = None
    version: str | None = None
    sync: str | None = None  # standalone, connected or disconnected
    serving_personal: bool | None = None  # false while failing closed
    worker: int | None = None  # which of several worker processes answered (--workers N)
    # Deletions and withdrawals made here that wait for the control plane's receipt: "ok", or
    # "stalled" once the oldest waited EDGE_PRIVACY_BACKLOG_MAX_S; with the oldest's age in seconds.
    privacy_backlog: str | None = None
    privacy_backlog_s: float | None = None
    # What keeps this edge's numbers from counting upstream without stopping it from serving,
    # each named first (e.g. "cohort window mismatch: ..."); left out when there is none.
    warnings: list[str] | None = None


class GrantView(Wire, kw_only=True):
    granted: bool
    timestamp: dt.datetime | None  # null: never set (the purpose is denied by default)
    policy_version: str | None  # null: never set, or no policy version was ever given for this purpose


class ConsentUpdate(Wire, kw_only=True):
    """Purposes to grant (true) or withdraw (false); purposes left out keep their state."""

    purposes: dict[str, bool]
    policy_version: str
    timestamp: dt.datetime | None = None  # when the user chose; default: now


class ConsentView(Wire, kw_only=True):
    user_id: str
    purposes: dict[str, GrantView]  # every purpose; never set shows granted=false, timestamp and policy null
    withdrawn: list[str] = []
    erased: list[str] = []
    request_id: str | None = None  # set when something was withdrawn (filed with the control plane)


class EventsRequest(Wire, kw_only=True):
    events: list[Event]
    context: Context | None = None


class SentimentWindow(Wire, kw_only=True):
    mean: float  # smoothed toward neutral, in [-1, 1]
    texts: float  # effective (time-decayed) number of texts in the window
    negative_share: float
    window_minutes: float


class VectorView(Wire, kw_only=True):
    user_id: str
    vector: list[float]
    dimension: int
    affinities: list[NamedAffinity]
    sentiment: SentimentWindow
    cohort: str
    events: int
    last_update: dt.datetime


class RankRequest(Wire, kw_only=True):
    candidates: list[Candidate]
    user_id: str | None = None
    context: Context | None = None
    limit: int | None = None  # items returned (default: every candidate)
    exploration_slots: int | None = None  # default: EDGE_EXPLORATION_SLOTS
    include_rest: bool = False  # also return the candidates outside the top, ranked, in ``rest``
    diversity_depth: int | None = None  # category levels the diversity limit counts; default EDGE_DIVERSITY_DEPTH


class RankResponse(Wire, kw_only=True):
    source: str
    cohort: str
    reason: str
    items: list[RankedItem]  # the top: at most ``limit`` items
    rest: list[RankedItem] = []  # the other candidates, ranked, when the request asks for them
    actions: list[Action] = []  # active cohort triggers, each with its reason
    experiments: list[Assignment] = []  # this unit's arm in every running experiment
    segment: SegmentRef | None = None  # the user's learned segment (ranked from their own profile only)


class ExperimentEvent(Wire, kw_only=True):
    """An exposure or an outcome, reported by a client for a user or (anonymous) a context."""

    experiment: str
    kind: str  # exposure, click or conversion
    user_id: str | None = None
    context: Context | None = None
    value: float = 0.0  # a conversion's value


class DeletionView(Wire, kw_only=True):
    user_id: str
    request_id: str
    erased: list[str]
    suppressed_at: dt.datetime


class AliasRequest(Wire, kw_only=True):
    anonymous_id: str
    # With a user token: a user token of the same app whose sub is anonymous_id, proving the
    # caller holds both identities. Not needed with a server key (scope users:alias).
    anonymous_token: str | None = None


class AliasView(Wire, kw_only=True):
    user_id: str
    anonymous_id: str
    linked_at: dt.datetime
    already_linked: bool  # linked before: nothing changed
    merged: list[str]  # what moved to the user: profile, cohort_contributions
    events: int  # events the anonymous profile brought


class LabelRequest(Wire, kw_only=True):
    sample_id: str
    label: str


class LabelResponse(Wire, kw_only=True):
    sample_id: str
    predicted: str
    label: str
    agreed: bool
    model: str
    version: str


# Every error any route answers has the ErrorBody shape; each route documents the statuses it
# can answer (the gate's 401/403/429 included), so the OpenAPI is the contract clients get.
ERROR_MEANINGS = {
    400: "invalid input: `error` names the problem, `field` the culprit",
    401: "no, an unknown, revoked or expired client key or user token",
    403: "a valid credential that may not do this (another user or app, a missing scope)",
    404: "no such record (user, sample or experiment) on this edge, or a user id that does not fit the path",
    408: "the request body did not arrive within EDGE_BODY_TIMEOUT_S",
    409: "contradicts what is recorded (an anonymous id linked to another user, consent missing): `error` says which",
    413: "over a configured limit (the message names the EDGE_* setting)",
    429: "over a rate limit: retry after the Retry-After header's seconds",
    503: "not ready (model loading, disk full, privacy outbox full): retry later",
    507: "the disk is full or the store is over EDGE_STORE_MAX_BYTES: the write was refused",
}


def error_responses(*statuses: int) -> dict:
    from litestar.openapi import ResponseSpec

    return {status: ResponseSpec(data_container=ErrorBody, description=ERROR_MEANINGS[status], generate_examples=False)
            for status in statuses}


READ_ERRORS = error_responses(400, 401, 403, 429, 503)
BODY_ERRORS = error_responses(400, 401, 403, 408, 413, 429, 503)
WRITE_ERRORS = error_responses(400, 401, 403, 408, 413, 429, 503, 507)
