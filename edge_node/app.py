"""The edge HTTP application, assembled in one :func:`create_app` from settings."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from litestar import Litestar, Request, Response, get, post
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.enums import RequestEncodingType
from litestar.openapi import OpenAPIConfig
from litestar.params import Body

from edge_node import __version__
from edge_node.config import EdgeSettings
from edge_node.errors import EdgeError, InvalidInput, LimitExceeded, NotReady
from edge_node.inference import SentimentModel
from edge_node.schemas import ErrorBody, Health, SentimentRequest, SentimentResponse
from edge_node.sentiment_service import SentimentService

log = logging.getLogger("edge_node")


def check_texts(texts: list[str], settings: EdgeSettings) -> None:
    if not texts:
        raise InvalidInput("texts must hold at least one text", field="texts")
    if len(texts) > settings.max_texts_per_request:
        raise LimitExceeded(f"texts holds {len(texts)} items; the limit is {settings.max_texts_per_request} "
                            f"(EDGE_MAX_TEXTS_PER_REQUEST)", field="texts")
    for i, text in enumerate(texts):
        if not text.strip():
            raise InvalidInput(f"texts[{i}] is empty", field=f"texts[{i}]")
        if len(text) > settings.max_text_chars:
            raise LimitExceeded(f"texts[{i}] has {len(text)} characters; the limit is {settings.max_text_chars} "
                                f"(EDGE_MAX_TEXT_CHARS)", field=f"texts[{i}]")


@get("/healthz", tags=["health"], sync_to_thread=False)
def healthz() -> Health:
    """Liveness: the process is up."""
    return Health(status="ok")


@get("/readyz", tags=["health"], sync_to_thread=False)
def readyz(state: State) -> Health:
    """Readiness: the model is loaded and warmed up."""
    service: SentimentService | None = state.get("sentiment")
    if service is None:
        raise NotReady("model is not loaded yet")
    return Health(status="ready", model=service.model.name, version=service.model.version)


@post("/v1/sentiment", tags=["sentiment"], status_code=200)
async def score_sentiment(data: Annotated[SentimentRequest, Body(media_type=RequestEncodingType.JSON)],
                          state: State) -> SentimentResponse:
    """Score one or many texts: label, score in [-1, 1], confidence, stage, model and version."""
    settings: EdgeSettings = state.settings
    check_texts(data.texts, settings)
    service: SentimentService | None = state.get("sentiment")
    if service is None:
        raise NotReady("model is not loaded yet")
    return SentimentResponse(results=await service.score(data.texts))


def edge_error_handler(_: Request, exc: EdgeError) -> Response[ErrorBody]:
    if exc.status_code >= 500:
        log.error("request failed: %s", exc.message)
    return Response(ErrorBody(error=exc.code, message=exc.message, field=exc.field), status_code=exc.status_code)


def http_error_handler(_: Request, exc: HTTPException) -> Response[ErrorBody]:
    # Litestar's own 4xx (validation, body too large, bad JSON): same body shape as ours.
    detail = exc.detail
    extra = exc.extra if isinstance(exc.extra, list) else []
    field = None
    if extra and isinstance(extra[0], dict):
        field = extra[0].get("key")
        detail = f"{detail}: {extra[0].get('message', '')}".rstrip(": ")
    code = "invalid_input" if exc.status_code < 500 else "internal_error"
    return Response(ErrorBody(error=code, message=detail, field=field), status_code=exc.status_code)


def unicode_error_handler(_: Request, exc: UnicodeDecodeError) -> Response[ErrorBody]:
    # msgspec raises UnicodeDecodeError (not a DecodeError) for bytes that are not UTF-8.
    return Response(ErrorBody(error="invalid_input", message=f"request body is not valid UTF-8 ({exc.reason} "
                                                             f"at byte {exc.start})"), status_code=400)


def create_app(settings: EdgeSettings, *, model: SentimentModel | None = None) -> Litestar:
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        loaded = model or SentimentModel(settings.model_path, threads=settings.inference_threads)
        service = SentimentService(loaded, settings)
        await service.start()
        app.state.sentiment = service
        log.info("serving model %s %s from %s", loaded.name, loaded.version, settings.model_dir)
        try:
            yield
        finally:
            app.state.sentiment = None
            await service.close()

    return Litestar(
        route_handlers=[healthz, readyz, score_sentiment],
        lifespan=[lifespan],
        state=State({"settings": settings, "sentiment": None}),
        exception_handlers={EdgeError: edge_error_handler, HTTPException: http_error_handler,
                            UnicodeDecodeError: unicode_error_handler},
        openapi_config=OpenAPIConfig(title="Sentiedge edge node", version=__version__, path="/schema"),
        request_max_body_size=1 << 20,
    )
