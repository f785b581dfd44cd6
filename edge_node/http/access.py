"""HTTP side of access control: the gate in front of every ``/v1`` route, CORS per app, and
the one check every user-scoped handler (and the personalize fast path) calls.

The gate admits or refuses a request before any handler runs: client key, Authorization
(user token or server key), rate limits per address and per key, and the browser origin
against the app's list. Handlers then say *whose* data they touch with :func:`authorize_user`.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from edge_node.errors import EdgeError, Forbidden, NotReady, Unauthorized
from edge_node.node import EdgeNode
from sentiedge_core.access import Caller
from sentiedge_core.privacy import policy_version_problem

CALLER = "sentiedge.caller"
REFUSED = "sentiedge.refused"
# A page a browser opens by URL cannot send headers: it names its app in the query instead
# (client keys are public). Every other route takes the key from its header only.
KEY_IN_QUERY = ("/v1/preferences", "/v1/preferences/")
ALLOW_HEADERS = b"authorization, content-type, x-client-key"
ALLOW_METHODS = b"GET, POST, PUT, DELETE, OPTIONS"


def running(state) -> EdgeNode:
    """The node behind an app's state, or 503 while it starts or stops."""
    node: EdgeNode | None = state.get("node")
    if node is None:
        raise NotReady("model or store is not ready yet")
    return node


def header(scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def client_address(scope) -> str | None:
    client = scope.get("client")
    return client[0] if client else None


def admit(node, scope) -> Caller:
    """The caller of this request, admitted or refused once (the fast path and the gate share
    the result: a refused caller spends its rate-limit budget and is counted once)."""
    caller = scope.get(CALLER)
    if caller is None:
        refused = scope.get(REFUSED)
        if refused is not None:
            raise refused
        try:
            caller = _admit(node, scope)
        except EdgeError as exc:
            scope[REFUSED] = exc
            raise
        scope[CALLER] = caller
    return caller


def _admit(node, scope) -> Caller:
    client_key = header(scope, b"x-client-key")
    if client_key is None and scope["path"] in KEY_IN_QUERY:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"), max_num_fields=20)
        client_key = (query.get("client_key") or [None])[0]
    caller = node.access.admit(client_key, header(scope, b"authorization"), client_address(scope), node.now())
    origin = header(scope, b"origin")
    if origin is not None and not caller.app.allows_origin(origin) and not own_page_post(scope, origin):
        node.metrics.refusals.labels("origin_not_allowed").inc()
        raise Forbidden(f"origin {origin} is not one of app {caller.app.name!r}'s origins",
                        reason="origin_not_allowed")
    return caller


def own_page_post(scope, origin: str) -> bool:
    """A form of the edge's own page posting back to it (same host): its origin is the edge's,
    which the app's list of browser origins need not hold."""
    return scope["path"] in KEY_IN_QUERY and urlsplit(origin).netloc == (header(scope, b"host") or "")


def caller_of(request) -> Caller:
    caller = request.scope.get(CALLER)
    if caller is None:  # only reachable if a /v1 route were mounted outside the gate
        raise Forbidden("request was not admitted", reason="not_admitted")
    return caller


def authorize_user(node, caller: Caller, user_id: str, scope: str) -> str:
    """Refuse unless the caller may act for ``user_id``; honour consent carried in its token.
    Returns the user as the node's records name it: scoped to the caller's tenant, so another
    tenant's caller naming the same id reaches another person."""
    try:
        caller.act_for(user_id, scope)
    except EdgeError as exc:
        node.metrics.refusals.labels(exc.code).inc()
        raise
    if caller.consent is not None:
        problem = policy_version_problem(caller.consent.policy_version)
        if problem:  # the claim's other checks are the core's (sentiedge_core.access); this one is the edge's
            node.metrics.refusals.labels("invalid_token").inc()
            raise Unauthorized(f"the user token's consent claim: {problem}", reason="invalid_token")
    user = caller.tenant_user(user_id)
    if caller.consent is not None and node.access.first_use(caller.token):
        consent = caller.consent
        change = node.privacy.set_consent(user, dict(consent.purposes), consent.policy_version, consent.at,
                                          node.now())
        for _ in change.withdrawn:
            node.metrics.privacy_actions.labels("consent_withdrawn").inc()
    return user


def cors_headers(node, scope) -> list[tuple[bytes, bytes]]:
    """CORS response headers for a browser origin that some active app lists (else none)."""
    origin = header(scope, b"origin")
    if origin is None or not node.access.origin_known(origin):
        return []
    return [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin"),
            (b"access-control-expose-headers", b"retry-after")]


def gate(app):
    """ASGI middleware of the edge app: every ``/v1`` request is admitted here or refused
    (a refusal is raised, so the app's one error handler words it, CORS headers included)."""

    async def middleware(scope, receive, send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await app(scope, receive, send)
            return
        node = scope["litestar_app"].state.get("node")
        if node is None:  # starting or stopping: the handler answers 503
            await app(scope, receive, send)
            return
        cors = cors_headers(node, scope)
        if scope["method"] == "OPTIONS" and header(scope, b"origin") is not None \
                and header(scope, b"access-control-request-method"):
            if not cors:
                node.metrics.refusals.labels("origin_not_allowed").inc()
                raise Forbidden(f"origin {header(scope, b'origin')} is not registered for any app",
                                reason="origin_not_allowed")
            await send({"type": "http.response.start", "status": 204, "headers": [
                *cors, (b"access-control-allow-methods", ALLOW_METHODS),
                (b"access-control-allow-headers", ALLOW_HEADERS), (b"access-control-max-age", b"600")]})
            await send({"type": "http.response.body", "body": b""})
            return
        admit(node, scope)
        if not cors:
            await app(scope, receive, send)
            return

        async def send_with_cors(message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *cors]}
            await send(message)

        await app(scope, receive, send_with_cors)

    return middleware
