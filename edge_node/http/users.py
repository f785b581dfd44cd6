"""HTTP: a user's consent, events, vector and deletion (``/v1/users/{user_id}/...``)."""

from __future__ import annotations

import datetime as dt

from litestar import Controller, Request, delete, get, post, put
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody

from edge_node.errors import Forbidden
from edge_node.http.access import authorize_user, caller_of, running
from edge_node.http.schemas import (
    READ_ERRORS,
    WRITE_ERRORS,
    AliasRequest,
    AliasView,
    ConsentUpdate,
    ConsentView,
    DeletionView,
    EventsRequest,
    GrantView,
    SentimentWindow,
    VectorView,
    error_responses,
)
from edge_node.ingest import IngestReport, check_id
from edge_node.personalization.decisions import named_affinities
from edge_node.records import PURPOSES, Consent


def timestamp(at: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(at, dt.UTC)


def user_request(request: Request, state: State, user_id: str, scope: str):
    """The running node and the user as its records name it (scoped to the caller's tenant),
    once the caller is known to act for this (valid) user id."""
    node = running(state)
    check_id(user_id, node.settings)
    return node, authorize_user(node, caller_of(request), user_id, scope)


def consent_view(user_id: str, consent: Consent, **extra) -> ConsentView:
    purposes = {}
    for purpose in PURPOSES:
        grant = consent.purposes.get(purpose)
        purposes[purpose] = (GrantView(granted=grant.granted, timestamp=timestamp(grant.at),
                                       policy_version=grant.policy_version or None) if grant
                             else GrantView(granted=False, timestamp=None, policy_version=None))
    return ConsentView(user_id=user_id, purposes=purposes, **extra)


class UsersController(Controller):
    path = "/v1/users/{user_id:str}"
    tags = ["users"]
    security = [{"clientKey": [], "bearer": []}]

    @put("/consent", responses={**WRITE_ERRORS, **error_responses(404)})
    async def put_consent(self, user_id: FromPath[str], data: JSONBody[ConsentUpdate],
                          state: State, request: Request) -> ConsentView:
        """Grant or withdraw purposes. Withdrawing erases what the purpose allowed, here and
        (through the control plane) on every other edge. User token, or server key ``consent:write``."""
        node, user = user_request(request, state, user_id, "consent:write")
        at = data.timestamp.timestamp() if data.timestamp is not None and data.timestamp.tzinfo else None
        change = node.users.set_consent(user, data.purposes, data.policy_version, at)
        return consent_view(user_id, change.consent, withdrawn=change.withdrawn, erased=change.erased,
                            request_id=change.request_id)

    @get("/consent", sync_to_thread=False, responses={**READ_ERRORS, **error_responses(404)})
    def get_consent(self, user_id: FromPath[str], state: State, request: Request) -> ConsentView:
        """Consent per purpose; a purpose never granted reads ``granted: false``.
        User token, or server key ``users:read``."""
        node, user = user_request(request, state, user_id, "users:read")
        return consent_view(user_id, node.users.consent_of(user))

    @post("/events", status_code=200, responses={**WRITE_ERRORS, **error_responses(404)})
    async def post_events(self, user_id: FromPath[str], data: JSONBody[EventsRequest],
                          state: State, request: Request) -> IngestReport:
        """Behavioural events. Texts are scored (with ``sentiment`` consent) and modulate how
        each event moves the profile; events without consent are dropped and counted.
        User token, or server key ``events:write``."""
        node, user = user_request(request, state, user_id, "events:write")
        return await node.events.record_events(user, data.events, data.context, tenant=caller_of(request).tenant)

    @get("/vector", sync_to_thread=False, responses={**READ_ERRORS, **error_responses(404)})
    def get_vector(self, user_id: FromPath[str], state: State, request: Request) -> VectorView:
        """The user's own vector, top affinities and windowed sentiment (needs ``personalization``).
        User token, or server key ``users:read``."""
        node, user = user_request(request, state, user_id, "users:read")
        v = node.users.user_vector(user)
        return VectorView(
            user_id=user_id, vector=v.vector.tolist(), dimension=node.settings.vector_dim,
            affinities=named_affinities(v.profile, v.scores),
            sentiment=SentimentWindow(mean=round(v.sentiment_mean, 4), texts=round(v.sentiment_texts, 3),
                                      negative_share=round(v.negative_share, 4),
                                      window_minutes=node.settings.sentiment_window_minutes),
            cohort=v.profile.cohort, events=v.profile.events, last_update=timestamp(v.profile.updated_at))

    @post("/aliases", status_code=200, responses={**WRITE_ERRORS, **error_responses(404, 409)})
    async def post_alias(self, user_id: FromPath[str], data: JSONBody[AliasRequest],
                         state: State, request: Request) -> AliasView:
        """Link an anonymous id (a visitor before login) to this user, once: with the user's
        ``personalization`` consent the anonymous profile and cohort contributions merge into
        the user's, and the anonymous id reaches the user's records from then on. Deletion and
        withdrawal cascade to every linked id. User token plus ``anonymous_token`` (a user token
        for the anonymous id), or server key ``users:alias``."""
        node, user = user_request(request, state, user_id, "users:alias")
        check_id(data.anonymous_id, node.settings, field="anonymous_id")
        caller = caller_of(request)
        if caller.user is not None:  # a user token proves one identity; the other needs its own proof
            if not data.anonymous_token:
                raise Forbidden("linking with a user token needs anonymous_token: a user token whose sub is the "
                                "anonymous id (or call with a server key that has the users:alias scope)",
                                reason="anonymous_token_required", field="anonymous_token")
            proven = node.access.verify_user_token(caller.app, data.anonymous_token, node.now()).user
            if proven != data.anonymous_id:
                raise Forbidden("anonymous_token is for another id than anonymous_id", reason="wrong_user",
                                field="anonymous_token")
        link = node.users.link_alias(user, caller.tenant_user(data.anonymous_id))
        return AliasView(user_id=user_id, anonymous_id=data.anonymous_id, linked_at=timestamp(link.linked_at),
                         already_linked=link.already_linked, merged=link.merged, events=link.events)

    @delete("/", status_code=200, responses={**WRITE_ERRORS, **error_responses(404)})
    async def delete_user(self, user_id: FromPath[str], state: State, request: Request) -> DeletionView:
        """Erase everything derived from the user on this node now and suppress late events;
        the request is filed with the control plane so every other edge erases too.
        User token, or server key ``users:delete``."""
        node, user = user_request(request, state, user_id, "users:delete")
        erasure = node.users.delete_user(user)
        return DeletionView(user_id=user_id, request_id=erasure.request_id, erased=erasure.erased,
                            suppressed_at=timestamp(erasure.suppressed_at))
