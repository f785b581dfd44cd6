"""Wire schemas of the edge HTTP API (msgspec Structs; they only grow, with defaults)."""

from __future__ import annotations

import msgspec

from edge_node.inference import Sentiment


class Wire(msgspec.Struct, kw_only=True):
    """Base for request and response bodies; unknown fields are ignored, never rejected."""


class SentimentRequest(Wire, kw_only=True):
    texts: list[str]


class SentimentResponse(Wire, kw_only=True):
    results: list[Sentiment]


class ErrorBody(Wire, kw_only=True):
    error: str
    message: str
    field: str | None = None


class Health(Wire, kw_only=True):
    status: str
    model: str | None = None
    version: str | None = None
