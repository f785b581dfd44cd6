"""HTTP: which vector to use (``/v1/personalize``) and re-ranking (``/v1/rank``)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import FromQuery, JSONBody, QueryParameter

from edge_node.errors import InvalidInput, LimitExceeded
from edge_node.http.access import authorize_user, caller_of, running
from edge_node.http.schemas import (
    BODY_ERRORS,
    READ_ERRORS,
    WRITE_ERRORS,
    ExperimentEvent,
    RankRequest,
    RankResponse,
    error_responses,
)
from edge_node.ingest import Context, check_context, check_id, context_cohort
from edge_node.node import EdgeNode
from edge_node.personalization.decisions import Decision
from edge_node.personalization.experiments import Assignment
from sentiedge_core.access import Caller


def personalize_for(node: EdgeNode, caller: Caller, user_id: str | None, context: Context) -> Decision:
    """Validate, authorize, decide, add the active trigger actions and experiment arms, count it.
    Shared by the route below and the fast path in front of the app (edge_node.http.fast_path)."""
    if user_id is not None:
        check_id(user_id, node.settings)
        user_id = authorize_user(node, caller, user_id, "users:read")
    check_context(context, node.settings)
    now = node.now()
    tenant = caller.tenant  # a client key alone (no user) is its app's tenant too
    decision = node.personalizer.choose(user_id, context, now, tenant=tenant).decision
    node.metrics.decided(decision.source)
    segment = decision.segment.id if decision.segment is not None else None
    actions = node.triggers.active(decision.cohort, now, segment, tenant)
    arms = node.experiments.assignments(user_id or decision.cohort, segment, tenant)
    return msgspec.structs.replace(decision, actions=actions, experiments=arms) if actions or arms else decision


class DecisionsController(Controller):
    path = "/v1"
    tags = ["personalization"]
    security = [{"clientKey": []}, {"clientKey": [], "bearer": []}]

    @get("/personalize", sync_to_thread=False, responses=READ_ERRORS)
    def personalize(
        self, state: State, request: Request,
        user_id: Annotated[str | None, QueryParameter(description="the user, if known")] = None,
        region: FromQuery[str | None] = None, device: FromQuery[str | None] = None,
        daypart: Annotated[str | None, QueryParameter(description="morning|afternoon|evening|night")] = None,
        referrer: FromQuery[str | None] = None, tz_offset_minutes: FromQuery[int] = 0,
    ) -> Decision:
        """The vector to use for a user and/or context, and where it came from: ``user``,
        ``cohort`` or ``global``. Cold start and users without consent get a prior, never an error.
        With a ``user_id``: that user's token, or a server key with ``users:read``."""
        return personalize_for(running(state), caller_of(request), user_id, Context(
            region=region, device=device, daypart=daypart, referrer=referrer, tz_offset_minutes=tz_offset_minutes))

    @post("/rank", status_code=200, responses=BODY_ERRORS)
    async def rank(self, data: JSONBody[RankRequest],
                   state: State, request: Request) -> RankResponse:
        """Re-rank candidates for a user or context, with a reason for every item.
        With a ``user_id``: that user's token, or a server key with ``users:read``."""
        node = running(state)
        settings = node.settings
        caller = caller_of(request)
        user = None
        if data.user_id is not None:
            check_id(data.user_id, settings)
            user = authorize_user(node, caller, data.user_id, "users:read")
        check_context(data.context, node.settings)
        if not data.candidates:
            raise InvalidInput("candidates must hold at least one item", field="candidates")
        if len(data.candidates) > settings.max_candidates_per_request:
            raise LimitExceeded(f"candidates holds {len(data.candidates)} items; the limit is "
                                f"{settings.max_candidates_per_request} (EDGE_MAX_CANDIDATES_PER_REQUEST)",
                                field="candidates")
        seen = set()
        for i, c in enumerate(data.candidates):
            check_id(c.id, settings, f"candidates[{i}].id")
            check_id(c.category, settings, f"candidates[{i}].category")
            if c.id in seen:
                raise InvalidInput(f"candidates[{i}].id {c.id!r} appears twice", field=f"candidates[{i}].id")
            seen.add(c.id)
            if not c.popularity >= 0:
                raise InvalidInput(f"candidates[{i}].popularity must be >= 0", field=f"candidates[{i}].popularity")
        limit = data.limit if data.limit is not None else len(data.candidates)
        if limit < 1:
            raise InvalidInput("limit must be >= 1", field="limit")
        slots = data.exploration_slots if data.exploration_slots is not None else settings.exploration_slots
        if slots < 0:
            raise InvalidInput("exploration_slots must be >= 0", field="exploration_slots")
        depth = data.diversity_depth if data.diversity_depth is not None else settings.diversity_depth
        if not 0 <= depth <= 16:
            raise InvalidInput("diversity_depth must be 0..16 (0: the full category path)", field="diversity_depth")
        decision, items = node.personalizer.rank(
            user, data.context, data.candidates, limit=limit, exploration_slots=slots,
            max_per_category=settings.max_per_category, now=node.now(), diversity_depth=depth, tenant=caller.tenant)
        node.metrics.decided(decision.source)
        node.events.observe_ranking(caller.tenant, [c.id for c in data.candidates], items[:limit])
        segment = decision.segment.id if decision.segment is not None else None
        return RankResponse(source=decision.source, cohort=decision.cohort, reason=decision.reason,
                            items=items[:limit], rest=items[limit:] if data.include_rest else [],
                            actions=node.triggers.active(decision.cohort, node.now(), segment, caller.tenant),
                            experiments=node.experiments.assignments(user or decision.cohort, segment,
                                                                     caller.tenant),
                            segment=decision.segment)

    @post("/experiments/events", status_code=200, tags=["experiments"],
          responses={**WRITE_ERRORS, **error_responses(404)})
    async def experiment_event(self, data: JSONBody[ExperimentEvent], state: State,
                               request: Request) -> Assignment:
        """Count an exposure or an outcome for a user (or an anonymous context); returns its arm.
        Only counts per window, arm and cohort are kept — never who. With a ``user_id``: that
        user's token, or a server key with ``events:write``."""
        node = running(state)
        caller = caller_of(request)
        user = None
        if data.user_id is not None:
            check_id(data.user_id, node.settings)
            user = authorize_user(node, caller, data.user_id, "events:write")
        check_context(data.context, node.settings)
        if not data.value >= 0:
            raise InvalidInput("value must be >= 0", field="value")
        now = node.now()
        cohort = context_cohort(data.context, now)
        segment = node.personalizer.segment_of(user, now) if user is not None else None
        return node.experiments.record(data.experiment, user or cohort, data.kind, data.value, cohort, now,
                                       segment.id if segment is not None else None, tenant=caller.tenant)
