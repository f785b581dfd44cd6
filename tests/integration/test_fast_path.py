"""The fast path for GET /v1/personalize lives inside the app (the innermost middleware): it
answers exactly as the Litestar route does, sees the same gate and metrics, and hands
everything it does not accept to the route."""

import pytest
from litestar.testing import TestClient

from edge_node.config import load_settings
from edge_node.http.app import create_app
from tests.credentials import edge_app


@pytest.fixture
def app(model, tmp_path):
    app = create_app(load_settings({"EDGE_DATA_DIR": str(tmp_path), "EDGE_DECISION_CACHE_MS": "0"}), model=model)
    with TestClient(app) as client:
        client.headers.update(edge_app(tmp_path).server())
        client.put("/v1/users/ann/consent", json={"purposes": {"personalization": True}, "policy_version": "v"})
        client.post("/v1/users/ann/events",
                    json={"events": [{"type": "purchase", "item_id": "a", "category": "Books"}]})
        yield app, client


def both(app, client, url: str, **kw):
    """(answer with the fast path, answer of the framework route alone, fast-path answers counted)."""
    node = app.state.node
    before = node.metrics.render().decode()
    app.state.fast_path = True
    fast = client.get(url, **kw)
    app.state.fast_path = False
    slow = client.get(url, **kw)
    app.state.fast_path = True
    return fast, slow, before


def same_answer(fast, slow) -> None:
    """Equal answers; the vector to float32 rounding, since a user's affinities decay between the two calls."""
    a, b = fast.json(), slow.json()
    assert (fast.status_code, {k: v for k, v in a.items() if k != "vector"}) == \
        (slow.status_code, {k: v for k, v in b.items() if k != "vector"})
    assert ("vector" in a) == ("vector" in b)
    if "vector" in a:
        assert a["vector"] == pytest.approx(b["vector"], rel=1e-6, abs=1e-7)


@pytest.mark.parametrize("query", ["user_id=ann&region=eu&device=mobile", "region=eu", "",
                                   "user_id=nobody&daypart=night&tz_offset_minutes=60", "region=a&region=b",
                                   "tz_offset_minutes=1_0", "tz_offset_minutes=%20%2B60", "tz_offset_minutes=+60",
                                   "tz_offset_minutes=%D9%A6%D9%A0", "tz_offset_minutes=-60", "daypart=teatime",
                                   "user_id=" + "u" * 200, "tz_offset_minutes=soon", "colour=red"])
def test_same_answers_as_the_framework_route(app, query):
    app, client = app
    fast, slow, _ = both(app, client, "/v1/personalize?" + query)
    same_answer(fast, slow)


def test_what_the_route_refuses_the_fast_path_refuses_too(app):
    """It once answered 200 where the route said 400 (a lenient int parse)."""
    app, client = app
    for query in ("tz_offset_minutes=1_0", "tz_offset_minutes=%20%2B60", "tz_offset_minutes=%D9%A6%D9%A0"):
        r = client.get("/v1/personalize?" + query)
        assert r.status_code == 400 and r.json()["field"] == "tz_offset_minutes", (query, r.text)


def test_same_checks_as_the_route_for_every_credential(app, tmp_path):
    app, client = app
    dev = edge_app(tmp_path)
    cases = [({}, 401, "missing_client_key"), ({"x-client-key": "ck_forged"}, 401, "unknown_client_key"),
             (dev.anonymous(), 401, "user_token_required"), (dev.user("bob"), 403, "wrong_user"),
             (dev.user("ann", ttl=-120), 401, "token_expired"), (dev.user("ann"), 200, None)]
    for headers, status, code in cases:
        sent = {"authorization": "", **headers} if headers else {"x-client-key": "", "authorization": ""}
        fast, slow, _ = both(app, client, "/v1/personalize?user_id=ann", headers=sent)
        assert fast.status_code == slow.status_code == status, (headers, fast.text, slow.text)
        same_answer(fast, slow)
        if code:
            assert fast.json()["error"] == code


def test_the_gate_and_the_metrics_apply_to_the_fast_path(app, tmp_path):
    app, client = app
    origin = "http://localhost:8080"
    r = client.get("/v1/personalize?region=eu", headers={"origin": origin})
    assert r.status_code == 200
    allowed = r.headers.get("access-control-allow-origin")
    app.state.fast_path = False
    assert client.get("/v1/personalize?region=eu", headers={"origin": origin}).headers.get(
        "access-control-allow-origin") == allowed  # CORS headers: the gate's, either way
    app.state.fast_path = True
    text = client.get("/metrics").text
    assert 'sentiedge_http_request_duration_seconds_count{method="GET",route="/v1/personalize",status="200"}' in text


def test_the_happy_path_is_answered_by_the_fast_path(app, monkeypatch):
    from edge_node.http import fast_path

    app, client = app
    answered = []
    encode = fast_path._encode
    monkeypatch.setattr(fast_path, "_encode", lambda decision: answered.append(1) or encode(decision))
    assert client.get("/v1/personalize?user_id=ann&region=eu").status_code == 200
    assert client.get("/v1/personalize?tz_offset_minutes=1_0").status_code == 400
    assert answered == [1]  # the first by the fast path, the refused one by the route


def test_a_refused_request_is_refused_once(model, tmp_path):
    """The fast path admits before the framework's gate; a refusal it meets is the gate's too,
    not decided again: it spends one unit of the address's budget and is counted once."""
    settings = load_settings({"EDGE_DATA_DIR": str(tmp_path), "EDGE_RATE_LIMIT_PER_ADDRESS": "1"})  # burst 2
    with TestClient(create_app(settings, model=model)) as client:
        forged = {"x-client-key": "ck_forged"}
        statuses = [client.get("/v1/personalize?region=eu", headers=forged).status_code for _ in range(3)]
        assert statuses == [401, 401, 429]
        text = client.get("/metrics").text
        assert 'sentiedge_auth_refusals_total{reason="unknown_client_key"} 2.0' in text
