"""A fast path for ``GET /v1/personalize``, the hottest route, in front of the Litestar app.

Same domain calls, same validation, same JSON, same metrics as the Litestar handler (which
stays the documented route and handles every request this path does not): it skips the
framework's parameter model and response machinery for the happy path only. It admits the
caller with the same gate (client key, token or server key, rate limits) and authorizes the
user exactly as the route does. Anything unusual — a refused credential, a bad parameter, a
node not ready, a duplicate key, a browser origin — is passed to the Litestar app, which
answers it exactly as before.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qsl

import msgspec

from edge_node.errors import EdgeError
from edge_node.http_access import admit, header
from edge_node.http_decisions import personalize_for
from edge_node.ingest import Context

ROUTE = "/v1/personalize"
PARAMS = {"user_id", "region", "device", "daypart", "referrer", "tz_offset_minutes"}
HEADERS = [(b"content-type", b"application/json")]
_encode = msgspec.json.Encoder().encode


class FastPersonalize:
    def __init__(self, app) -> None:
        self.app = app  # the Litestar app: everything else, and every request this path declines

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] != ROUTE or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        body = self._answer(scope)
        if body is None:
            await self.app(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [*HEADERS, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
        node = self.app.state.get("node")
        node.metrics.observe_request("GET", ROUTE, 200, time.perf_counter() - started)

    def _answer(self, scope) -> bytes | None:
        node = self.app.state.get("node")
        if node is None or header(scope, b"origin") is not None:
            return None  # browsers' CORS: the framework's gate adds the headers
        try:
            caller = admit(node, scope)  # the same gate as every route: refused requests go to the app
            pairs = parse_qsl(scope["query_string"].decode("utf-8"), keep_blank_values=True, strict_parsing=False)
            params = dict(pairs)
            if len(params) != len(pairs) or not params.keys() <= PARAMS:
                return None  # repeated or unknown parameters: the framework decides
            context = Context(region=params.get("region"), device=params.get("device"),
                              daypart=params.get("daypart"), referrer=params.get("referrer"),
                              tz_offset_minutes=int(params.get("tz_offset_minutes", 0)))
            decision = personalize_for(node, caller, params.get("user_id"), context)
        except (EdgeError, ValueError, UnicodeDecodeError):
            return None
        return _encode(decision)
