"""The edge HTTP application, assembled in one :func:`create_app` from settings."""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, Request, Response, get, post
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, Reference, SecurityScheme
from litestar.params import JSONBody
from litestar.types import ExceptionHandlersMap

from edge_node import __version__, wiring
from edge_node.config import EdgeSettings
from edge_node.errors import EdgeError, NotReady
from edge_node.http import api_page
from edge_node.http.access import caller_of, cors_headers, gate, running
from edge_node.http.decisions import DecisionsController
from edge_node.http.fast_path import HotPathsFirst
from edge_node.http.preferences import PreferencesController, is_page, refusal
from edge_node.http.schemas import (
    BODY_ERRORS,
    WRITE_ERRORS,
    ErrorBody,
    Health,
    LabelRequest,
    LabelResponse,
    SentimentRequest,
    SentimentResponse,
    error_responses,
)
from edge_node.http.sentiment import score_texts
from edge_node.http.status import status_of
from edge_node.http.timing import timing
from edge_node.http.users import UsersController
from edge_node.metrics import CONTENT_TYPE
from edge_node.role import SOLE, Role
from edge_node.sync.model_updates import ModelUpdates
from sentiedge_core import signing
from sentiedge_core.inference import SentimentModel

log = logging.getLogger("edge_node")

SECURITY_SCHEMES: dict[str, SecurityScheme | Reference] = {
    "clientKey": SecurityScheme(type="apiKey", name="X-Client-Key", security_scheme_in="header",
                                description="The app's public client key: required on every /v1 route"),
    "bearer": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT or sk_ server key",
                             description="A user token (JWT: sub = user id, aud = app id, exp, kid) for "
                                         "user-scoped routes, or the app's server key (sk_...) with a scope"),
}


@get("/healthz", tags=["health"], sync_to_thread=False)
def healthz() -> Health:
    """Liveness: the process is up."""
    return Health(status="ok")


@get("/readyz", tags=["health"], sync_to_thread=False, responses=error_responses(503))
def readyz(state: State) -> Health:
    """Readiness: the model is loaded and warmed up, the store is open, and the public port is
    listening (the admin port can answer before it binds). An edge with a control plane also
    reports its privacy backlog (``privacy_backlog``: ok, or stalled past
    EDGE_PRIVACY_BACKLOG_MAX_S) without failing on it: the requests already took effect here,
    and taking the edge out of rotation would not file them any sooner. ``warnings`` names a
    setting the control plane refuses (a cohort or co-occurrence window other than its own: the
    edge serves, but none of what it aggregates in such windows counts upstream) without failing
    either: every edge of a fleet would fail together on one control-plane setting."""
    node = running(state)
    public = state.get("public_server")
    if public is not None and not public.started:
        raise NotReady("the public port is not listening yet")
    if not node.disk.space_back():
        raise NotReady("the disk is full: writes are refused until space returns (deletions still succeed)")
    backlog = node.link.privacy_backlog() if node.settings.control_plane else None
    return Health(status="ready", model=node.model.name, version=node.model.version, sync=node.link.sync_state(),
                  serving_personal=node.link.personal_allowed(), worker=node.role.index if node.role.shared else None,
                  privacy_backlog=None if backlog is None else ("stalled" if backlog[1] else "ok"),
                  privacy_backlog_s=None if backlog is None else round(backlog[0], 1),
                  warnings=node.link.warnings() or None)


@get("/metrics", tags=["health"], sync_to_thread=False, media_type=CONTENT_TYPE)
def metrics(state: State) -> Response[bytes]:
    """Prometheus metrics."""
    node = running(state)
    node.health.refresh_gauges()
    return Response(node.metrics.render(), media_type=CONTENT_TYPE)


@post("/v1/sentiment", tags=["sentiment"], status_code=200, security=[{"clientKey": []}], responses=BODY_ERRORS)
async def score_sentiment(data: JSONBody[SentimentRequest], state: State, request: Request) -> SentimentResponse:
    """Score one or many texts: label, score in [-1, 1], confidence, stage, model and version.
    Where the caller's tenant has topics, each result also has ``aspects``: one per topic the text
    talks about (topic, label, score, confidence). Nothing is stored: no user, no consent needed.
    A client key suffices; a server key needs the ``sentiment`` scope."""
    node = running(state)
    return await score_texts(node, caller_of(request), data.texts, request.scope)


@post("/v1/labels", tags=["sentiment"], status_code=200, security=[{"clientKey": [], "bearer": []}],
      responses={**WRITE_ERRORS, **error_responses(404)})
async def submit_label(data: JSONBody[LabelRequest], state: State, request: Request) -> LabelResponse:
    """The true label of a sampled prediction (its ``sample_id``), for the model's quality report.
    Needs the app's server key with the ``labels:write`` scope."""
    node = running(state)
    caller = caller_of(request)
    caller.require_scope("labels:write")
    sample, agreed = node.quality.label(data.sample_id, data.label, caller.tenant)
    return LabelResponse(sample_id=data.sample_id, predicted=sample.label, label=data.label, agreed=agreed,
                         model=sample.model, version=sample.version)


def edge_error_handler(request: Request, exc: EdgeError) -> Response:
    status = status_of(exc)
    if status in (401, 403) and is_page(request):
        return refusal(request, status)
    if status == 500:  # 503 and 507 are states the node logs once and counts (metrics)
        log.error("request failed: %s", exc.message)
    headers = {}
    retry = getattr(exc, "retry_after", None)
    if retry is not None:
        headers["retry-after"] = str(max(1, math.ceil(retry)))
    node = request.app.state.get("node")
    if node is not None:  # a browser can read the error only with the CORS headers
        headers.update((k.decode(), v.decode("latin-1")) for k, v in cors_headers(node, request.scope))
    return Response(ErrorBody(error=exc.code, message=exc.message, field=exc.field), status_code=status,
                    headers=headers or None)


HTTP_CODES = {400: "invalid_input", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 413: "limit_exceeded", 415: "unsupported_media_type", 429: "rate_limited"}


def http_error_handler(request: Request, exc: HTTPException) -> Response[ErrorBody]:
    # Litestar's own errors (validation, unknown route or method, body too large, bad JSON):
    # our body shape, a code that matches the status, and for limits the setting.
    detail = exc.detail
    extra = exc.extra if isinstance(exc.extra, list) else []
    field = None
    if extra and isinstance(extra[0], dict):
        field = extra[0].get("key")
        detail = f"{detail}: {extra[0].get('message', '')}".rstrip(": ")
    status = exc.status_code
    if status == 404:
        detail = f"no route {request.url.path}; the API is described at /schema/openapi.json"
    elif status == 405:
        detail = f"{request.method} is not allowed on {request.url.path} ({detail})"
    elif status == 413:
        settings = request.app.state.get("settings")
        limit = settings.max_body_bytes if settings is not None else "the"
        detail = f"the request body is over {limit} bytes (EDGE_MAX_BODY_BYTES)"
    code = HTTP_CODES.get(status, "invalid_input" if status < 500 else "internal_error")
    headers = exc.headers if status == 405 and exc.headers else None
    return Response(ErrorBody(error=code, message=detail, field=field), status_code=status, headers=headers)


def unicode_error_handler(_: Request, exc: UnicodeDecodeError) -> Response[ErrorBody]:
    # msgspec raises UnicodeDecodeError (not a DecodeError) for bytes that are not UTF-8.
    return Response(ErrorBody(error="invalid_input", message=f"request body is not valid UTF-8 ({exc.reason} "
                                                             f"at byte {exc.start})"), status_code=400)


def recursion_error_handler(_: Request, exc: RecursionError) -> Response[ErrorBody]:
    # msgspec refuses JSON nested deeper than Python's recursion limit with a RecursionError.
    return Response(ErrorBody(error="invalid_input", message="request body is nested too deeply to decode "
                                                             "(JSON arrays or objects about 1000 levels deep)"),
                    status_code=400)


def unexpected_error_handler(request: Request, exc: Exception) -> Response[ErrorBody]:
    log.exception("unexpected error answering %s %s", request.method, request.url.path)
    return Response(ErrorBody(error="internal_error", message="the edge failed to answer this request; "
                                                              "it is logged"), status_code=500)


ERROR_HANDLERS: ExceptionHandlersMap = {EdgeError: edge_error_handler, HTTPException: http_error_handler,
                  UnicodeDecodeError: unicode_error_handler, RecursionError: recursion_error_handler,
                  Exception: unexpected_error_handler}


def create_app(settings: EdgeSettings, *, model: SentimentModel | None = None, role: Role = SOLE,
               shared=None) -> Litestar:
    """The edge's HTTP app: the Litestar app, with the happy paths of ``GET /v1/personalize`` and
    ``POST /v1/sentiment`` answered before its router (edge_node/http/fast_path.py). With
    ``EDGE_FAST_PATH=false`` (or ``app.state.fast_path = False``) those routes are left to the
    framework alone."""
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        # Offline first: an edge that was assigned a model serves it again after a restart.
        assigned = ModelUpdates(settings.data_path / "models", settings.inference_threads).current() \
            if settings.control_plane and model is None else None
        if model is None and settings.trusted_keys:  # only signed bundles, the first one too
            signing.verify(assigned or settings.model_path, signing.trusted_keys(settings.trusted_keys))
        loaded = model or SentimentModel(assigned or settings.model_path, threads=settings.inference_threads)
        node = wiring.build(settings, loaded, role=role, shared=shared)
        await node.start()
        app.state.node = node
        log.info("serving model %s %s from %s; store in %s", loaded.name, loaded.version, loaded.root,
                 settings.data_dir)
        try:
            yield
        finally:
            app.state.node = None
            await node.close()

    public_ops = [] if settings.admin_port else [healthz, readyz, metrics]  # with an admin port, only there
    return HotPathsFirst(
        route_handlers=[*public_ops, score_sentiment, submit_label, UsersController, DecisionsController,
                         PreferencesController],
        middleware=[timing, gate],  # outermost first
        lifespan=[lifespan],
        state=State({"settings": settings, "node": None, "fast_path": settings.fast_path}),
        exception_handlers=ERROR_HANDLERS,
        openapi_config=OpenAPIConfig(title="Sentiedge edge node", version=__version__, path="/schema",
                                     render_plugins=api_page.plugins(),
                                     components=Components(security_schemes=SECURITY_SCHEMES), create_examples=False,
                                     security=[{"clientKey": []}]),
        request_max_body_size=settings.max_body_bytes,
        logging_config=None,  # the process's one logging format (edge_node.cli.configure_logging)
    )


def create_admin_app(public: Litestar) -> Litestar:
    """The admin listener: health, readiness and metrics of the node the public app runs
    (EDGE_ADMIN_HOST/EDGE_ADMIN_PORT), so /metrics need not face the internet."""
    return Litestar(route_handlers=[healthz, readyz, metrics], state=public.state,
                    exception_handlers=ERROR_HANDLERS,
                    openapi_config=None, logging_config=None)
