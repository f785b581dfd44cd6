"""The two hot routes, ``GET /v1/personalize`` and ``POST /v1/sentiment``, answered before the
framework's router, parameter model and response machinery.

:class:`HotPathsFirst` is the edge's Litestar app; its ASGI entry point answers the happy path
of those routes itself and hands everything else to the framework. It applies what the app's
middleware applies to any route, with the same functions: the gate's admission (client key,
token or server key, rate limits, the browser origin; :func:`edge_node.http.access.admit`) and
its CORS headers, and the timing middleware's follower catch-up, worker header and request
metrics (edge_node.http.timing). Anything it does not accept, any refusal and any domain error
is handed to the documented Litestar route, which answers it (400 with the field, 401, 403,
413, 429, 503, ...). A refusal or a failure is not decided twice: the gate re-raises the one
admission found, the sentiment route the failure its use met.

* personalize: the query is parsed into one msgspec Struct with the same conversion the
  framework applies (so ``tz_offset_minutes=1_0``, ``+60`` or non-ASCII digits are refused there
  as well); the domain call is the route's own: :func:`edge_node.http.decisions.personalize_for`.
* sentiment: a JSON body (``Content-Type: application/json``) within the body limit is read and
  decoded straight into the route's request Struct; a body the route must answer (another media
  type, over the limit, malformed, missing ``texts``, ...) is handed over with the bytes already
  read. The use is the route's own: :func:`edge_node.http.sentiment.score_texts`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from litestar import Litestar
from litestar._parsers import parse_query_string  # the framework's own parser: the route's semantics

from edge_node.http.access import admit, cors_headers, header
from edge_node.http.decisions import personalize_for
from edge_node.http.schemas import SentimentRequest
from edge_node.http.sentiment import score_texts
from edge_node.http.timing import WORKER_HEADER, arrive
from edge_node.ingest import Context

ROUTE = "/v1/personalize"
SENTIMENT = "/v1/sentiment"
CONTENT_TYPE = (b"content-type", b"application/json")
_encode = msgspec.json.Encoder().encode


def _decode_sentiment(body: bytes) -> SentimentRequest:
    """As the route decodes it (the whole document first, then the Struct), so a body the route
    refuses — invalid UTF-8 or a number out of range in a field it does not read — is refused
    here too rather than scored (a typed decoder would skip those fields unchecked)."""
    return msgspec.convert(msgspec.json.decode(body), SentimentRequest, strict=False)

Receive = Callable[[], Awaitable[Any]]


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


class HotPathsFirst(Litestar):
    """The edge's app: the happy paths of ``GET /v1/personalize`` and ``POST /v1/sentiment``
    answered here when they can be, the rest by Litestar."""

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            path, method = scope["path"], scope["method"]
            if path == ROUTE and method == "GET" and await _personalized(self.state, scope, send):
                return
            if path == SENTIMENT and method == "POST":
                left = await _scored(self.state, scope, receive, send)
                if left is None:
                    return
                receive = left
        await super().__call__(scope, receive, send)


def _node(state):
    node = state.get("node")
    return node if node is not None and state.get("fast_path") else None


async def _personalized(state, scope, send) -> bool:
    node = _node(state)
    if node is None:
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
    await _reply(node, scope, send, body, worker, started)
    return True


async def _scored(state, scope, receive: Receive, send) -> Receive | None:
    """None once answered; else the request's ``receive`` for the route (the bytes read so far first)."""
    node = _node(state)
    if node is None or not (header(scope, b"content-type") or "").startswith("application/json"):
        return receive
    started = time.perf_counter()
    body, read = await _read_body(scope, receive, node.settings.max_body_bytes)
    if body is None:
        return _replay(read, receive)
    try:
        texts = _decode_sentiment(body).texts
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):  # the route's errors say what is wrong
        return _replay(read, receive)
    worker = arrive(node)
    try:
        caller = admit(node, scope)
        answer = _encode(await score_texts(node, caller, texts, scope))  # a failure is kept: the route raises it
    except Exception:  # noqa: BLE001 (as above)
        return _replay(read, receive)
    await _reply(node, scope, send, answer, worker, started)
    return None


async def _read_body(scope, receive: Receive, limit: int) -> tuple[bytes | None, list]:
    """(the whole body, the messages read), or (None, ...) where the route must answer: a
    declared or actual size over ``limit``, a malformed length, a client gone."""
    declared = header(scope, b"content-length")
    if declared is not None and not (declared.isascii() and declared.isdigit() and int(declared) <= limit):
        return None, []
    read: list = []
    size = 0
    while True:
        message = await receive()
        read.append(message)
        if message["type"] != "http.request":
            return None, read
        size += len(message.get("body", b""))
        if size > limit:
            return None, read
        if not message.get("more_body", False):
            break
    return (read[0].get("body", b"") if len(read) == 1 else b"".join(m.get("body", b"") for m in read)), read


def _replay(read: list, receive: Receive) -> Receive:
    """``receive`` as the route sees it: the messages already read, then the rest."""
    if not read:
        return receive
    pending = list(read)

    async def again():
        return pending.pop(0) if pending else await receive()

    return again


async def _reply(node, scope, send, body: bytes, worker: bytes | None, started: float) -> None:
    """200 with a JSON body, the gate's CORS headers and the worker's header; the request counted."""
    headers = [CONTENT_TYPE, (b"content-length", str(len(body)).encode()), *cors_headers(node, scope)]
    if worker is not None:
        headers.append((WORKER_HEADER, worker))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
    node.metrics.observe_request(scope["method"], scope["path"], 200, time.perf_counter() - started)
