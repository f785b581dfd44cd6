"""The hot route ``GET /v1/personalize``, answered before the framework's router, parameter
model and response machinery.

:class:`PersonalizeFirst` is the edge's Litestar app; its ASGI entry point answers the happy
path of that one route itself and hands everything else to the framework. It applies what
the app's middleware applies to any route, with the same functions: the gate's admission
(client key, token or server key, rate limits, the browser origin;
:func:`edge_node.http.access.admit`) and its CORS headers, and the timing middleware's
follower catch-up, worker header and request metrics (edge_node.http.timing). The query is
parsed into one msgspec Struct with the same conversion the framework applies (so
``tz_offset_minutes=1_0``, ``+60`` or non-ASCII digits are refused there as well); anything it
does not accept, any refusal and any domain error is handed to the documented Litestar route,
which answers it (400 with the field, 401, 403, 429, 503, ...). A refusal is not decided twice:
the gate re-raises the one admission found. The domain call is the route's own:
:func:`edge_node.http.decisions.personalize_for`.
"""

from __future__ import annotations

import time

import msgspec
from litestar import Litestar
from litestar._parsers import parse_query_string  # the framework's own parser: the route's semantics

from edge_node.http.access import admit, cors_headers
from edge_node.http.decisions import personalize_for
from edge_node.http.timing import WORKER_HEADER, arrive
from edge_node.ingest import Context

ROUTE = "/v1/personalize"
CONTENT_TYPE = (b"content-type", b"application/json")
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


class PersonalizeFirst(Litestar):
    """The edge's app: ``GET /v1/personalize`` answered here when it can be, the rest by Litestar."""

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"] == ROUTE and scope["method"] == "GET" \
                and await _answered(self.state, scope, send):
            return
        await super().__call__(scope, receive, send)


async def _answered(state, scope, send) -> bool:
    node = state.get("node")
    if node is None or not state.get("fast_path"):
        return False
    query = parse(scope["query_string"])
    if query is None:
        return False
    started = time.perf_counter()
    worker = arrive(node)
    try:
        caller = admit(node, scope)  # a refusal is kept in the scope: the gate raises the same
        context = Context(region=query.region, device=query.device, daypart=query.daypart, referrer=query.referrer,
                          tz_offset_minutes=query.tz_offset_minutes)
        body = _encode(personalize_for(node, caller, query.user_id, context))
    except Exception:  # noqa: BLE001 (a refusal, a domain error or a fault: the route raises the same and answers it)
        return False
    headers = [CONTENT_TYPE, (b"content-length", str(len(body)).encode()), *cors_headers(node, scope)]
    if worker is not None:
        headers.append((WORKER_HEADER, worker))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
    node.metrics.observe_request("GET", ROUTE, 200, time.perf_counter() - started)
    return True
