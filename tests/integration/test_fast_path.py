"""The fast path for GET /v1/personalize answers exactly as the Litestar route does, and
hands everything unusual to it."""

import asyncio
import json

import pytest
from litestar.testing import TestClient

from edge_node.app import create_app
from tests.credentials import edge_app
from edge_node.config import load_settings
from edge_node.fast_path import FastPersonalize


def call(asgi, query: bytes, path: str = "/v1/personalize", headers: dict | None = None):
    messages = []

    async def run():
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                 "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query, "root_path": "",
                 "headers": [(b"host", b"x"), *((k.encode(), v.encode()) for k, v in (headers or {}).items())], "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            messages.append(message)

        await asgi(scope, receive, send)

    asyncio.run(run())
    status = messages[0]["status"]
    body = b"".join(m.get("body", b"") for m in messages[1:])
    return status, json.loads(body)


@pytest.fixture
def app(model, tmp_path):
    app = create_app(load_settings({"EDGE_DATA_DIR": str(tmp_path), "EDGE_DECISION_CACHE_MS": "0"}), model=model)
    with TestClient(app) as client:
        client.headers.update(edge_app(tmp_path).server())
        client.put("/v1/users/ann/consent", json={"purposes": {"personalization": True}, "policy_version": "v"})
        client.post("/v1/users/ann/events", json={"events": [{"type": "purchase", "item_id": "a", "category": "Books"}]})
        yield app, client


@pytest.mark.parametrize("query", [b"user_id=ann&region=eu&device=mobile", b"region=eu", b"",
                                   b"user_id=nobody&daypart=night&tz_offset_minutes=60", b"region=a&region=b"])
def test_same_answers_as_the_framework_route(app, query):
    app, client = app
    fast = call(FastPersonalize(app), query, headers=dict(client.headers))
    slow = client.get("/v1/personalize?" + query.decode())
    assert fast == (slow.status_code, slow.json())


def test_same_checks_as_the_route_for_every_credential(app, tmp_path):
    app, client = app
    dev = edge_app(tmp_path)
    cases = [({}, 401, "missing_client_key"), ({"x-client-key": "ck_forged"}, 401, "unknown_client_key"),
             (dev.anonymous(), 401, "user_token_required"), (dev.user("bob"), 403, "wrong_user"),
             (dev.user("ann", ttl=-120), 401, "token_expired"), (dev.user("ann"), 200, None)]
    for headers, status, code in cases:
        fast = call(FastPersonalize(app), b"user_id=ann", headers=headers)
        slow = client.get("/v1/personalize?user_id=ann", headers={"authorization": "", **headers} if headers
                          else {"x-client-key": "", "authorization": ""})
        assert fast[0] == slow.status_code == status, (headers, fast, slow.text)
        assert fast[1] == slow.json()
        if code:
            assert fast[1]["error"] == code


@pytest.mark.parametrize("query, field", [(b"daypart=teatime", "context.daypart"), (b"user_id=" + b"u" * 200, "user_id"),
                                          (b"tz_offset_minutes=soon", None)])
def test_bad_requests_are_left_to_the_framework(app, query, field):
    app, _ = app
    status, body = call(FastPersonalize(app), query, headers=edge_app(app.state.settings.data_path).server())
    assert status == 400 and body["error"] == "invalid_input"
    if field:
        assert body["field"] == field


def test_other_routes_pass_through(app):
    app, _ = app
    status, body = call(FastPersonalize(app), b"", path="/readyz")
    assert status == 200 and body["status"] == "ready"
