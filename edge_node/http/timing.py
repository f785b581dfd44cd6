"""Request latency per route template and status, into the node's histogram; under
``--workers N`` a worker first applies what the leader applied, and every answer names the
worker that gave it (``x-sentiedge-worker``). The middleware of every framework route; the
personalize fast path (edge_node.http.fast_path) calls the same two steps itself."""

from __future__ import annotations

import time

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from edge_node.http.status import status_of

WORKER_HEADER = b"x-sentiedge-worker"


def arrive(node) -> bytes | None:
    """Before answering: a follower worker catches up with the leader; its header value, if any."""
    if node is None or node.follower is None:
        return None
    node.follower.catch_up()  # what the leader applied, this worker applies before answering
    return str(node.role.index).encode()


def timing(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        method = scope["method"]
        worker = arrive(scope["litestar_app"].state.get("node"))

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if worker is not None:
                    message = {**message, "headers": [*message.get("headers", []), (WORKER_HEADER, worker)]}
            await send(message)

        try:
            await app(scope, receive, send_wrapper)
        except Exception as exc:  # raised past this layer (the gate's refusals): the handler answers it
            status = status_of(exc)
            raise
        finally:
            node = scope["litestar_app"].state.get("node")
            if node is not None:
                node.metrics.observe_request(method, scope.get("path_template", "?"), status,
                                             time.perf_counter() - started)

    return middleware
