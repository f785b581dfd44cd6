"""The hot route ``GET /v1/personalize``, answered inside the app without the framework's
parameter model and response machinery.

It is the innermost middleware of :func:`edge_node.http.app.create_app`, so everything outside it
applies as to any route: the gate (client key, token or server key, rate limits, CORS
headers) and the request metrics. The query is parsed into one msgspec Struct with the same
conversion the framework applies (so ``tz_offset_minutes=1_0``, ``+60`` or non-ASCII digits
are refused there as well); anything it does not accept, or any domain refusal, is handed to
the documented Litestar route, which answers it (400 with the field, 403, 503, ...). The
domain call is the route's own: :func:`edge_node.http.decisions.personalize_for`.
"""

from __future__ import annotations

import msgspec
from litestar._parsers import parse_query_string  # the framework's own parser: the route's semantics

from edge_node.errors import EdgeError
from edge_node.http.access import admit
from edge_node.http.decisions import personalize_for
from edge_node.ingest import Context

ROUTE = "/v1/personalize"
HEADERS = [(b"content-type", b"application/json")]
_encode = msgspec.json.Encoder().encode


class PersonalizeQuery(msgspec.Struct, forbid_unknown_fields=True):
    user_id: str | None = None
    region: str | None = None
    device: str | None = None
    daypart: str | None = None
    referrer: str | None = None
    tz_offset_minutes: int = 0


def parse(query_string: bytes) -> PersonalizeQuery | None:
    """The query as the route would read it, or None where the route should decide."""
    try:
        pairs = parse_query_string(query_string)
        params = dict(pairs)
        if len(params) != len(pairs):
            return None  # a repeated parameter
        return msgspec.convert(params, PersonalizeQuery, strict=False)
    except (UnicodeDecodeError, ValueError, msgspec.ValidationError):
        return None


def fast_personalize(app):
    """Middleware: answer the happy path of ``GET /v1/personalize``; pass on everything else."""

    async def middleware(scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] != ROUTE or scope["method"] != "GET":
            await app(scope, receive, send)
            return
        body = _answer(scope)
        if body is None:
            await app(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [*HEADERS, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    return middleware


def _answer(scope) -> bytes | None:
    state = scope["litestar_app"].state
    node = state.get("node")
    if node is None or not state.get("fast_path"):
        return None
    query = parse(scope["query_string"])
    if query is None:
        return None
    try:
        caller = admit(node, scope)  # admitted by the gate already: the same caller
        context = Context(region=query.region, device=query.device, daypart=query.daypart, referrer=query.referrer,
                          tz_offset_minutes=query.tz_offset_minutes)
        return _encode(personalize_for(node, caller, query.user_id, context))
    except EdgeError:
        return None  # the route raises the same error and answers it
