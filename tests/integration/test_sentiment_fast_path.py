"""The front path for POST /v1/sentiment (edge_node/http/fast_path.py) answers byte for byte as
the Litestar route does, sees the same gate and metrics, decides a refusal once, and hands every
body it does not accept to the route, which words the error (the route alone: EDGE_FAST_PATH off)."""

import pytest
from litestar.testing import TestClient

from edge_node.config import load_settings
from edge_node.http.app import create_app
from sentiedge_core.topics import TopicSet, starter
from tests.credentials import edge_app, two_tenant_apps_file

JSON = {"content-type": "application/json"}
ORIGIN = "http://localhost:8080"  # the development app's browser origin


@pytest.fixture(scope="module")
def served(model, tmp_path_factory):
    dev = tmp_path_factory.mktemp("sentiment-fast")
    settings = load_settings({"EDGE_DATA_DIR": str(dev), "EDGE_MAX_BODY_BYTES": "4000",
                              "EDGE_MAX_TEXTS_PER_REQUEST": "3", "EDGE_MAX_TEXT_CHARS": "300",
                              "EDGE_RATE_LIMIT_PER_ADDRESS": "0", "EDGE_LABEL_SAMPLE_RATE": "0"})
    app = create_app(settings, model=model)
    with TestClient(app) as client:
        app.state.node.topic_book.set(TopicSet(tenant="dev", version=1, topics=starter()))  # results with aspects
        yield app, client, edge_app(dev)


def both(app, client, body: bytes, headers: dict):
    """(the answer with the front path, the route's alone, the front path's answers counted)."""
    answered = app.state.node.metrics.render().decode()
    app.state.fast_path = True
    fast = client.post("/v1/sentiment", content=body, headers=headers)
    app.state.fast_path = False
    slow = client.post("/v1/sentiment", content=body, headers=headers)
    app.state.fast_path = True
    return fast, slow, answered


def same(fast, slow) -> None:
    assert (fast.status_code, fast.content) == (slow.status_code, slow.content)
    assert dict(fast.headers) == dict(slow.headers)


BODIES = [
    b'{"texts": ["I loved every minute of it."]}',
    b'{"texts": ["The serum is lovely but the box was crushed.", "Not bad at all.", "meh"]}',
    '{"texts": ["Das ist ein sehr schlechter Film, ich habe ihn gehasst.", "très bien 👍"]}'.encode(),
    b'{"texts": ["   ", "great"]}', b'{"texts": ["", " "]}', b'{"texts": []}', b'{"texts": ["a", "b", "c", "d"]}',
    b'{"texts": ["' + b"x" * 301 + b'"]}', b'{"texts": ["' + b"y" * 5000 + b'"]}',
    b'{"texts": ["ok"], "texts": ["twice: the last counts"]}', b'{"texts": ["ok"], "colour": "red"}',
    b'{"texts": [1]}', b'{"texts": "abc"}', b'{"texts": null}', b"{}", b"[]", b"null", b"", b'{"texts": ["a"',
    b"\xff\xfe", b'{"texts": ["\\ud800"]}', b"[" * 5000 + b"]" * 5000, b'{"texts": ["a"]} trailing',
    # what the route refuses in a field it does not read: invalid or overlong UTF-8, a number out of range
    b'{"texts": ["ok"], "x": "\xff"}', b'{"texts": ["ok"], "x": [{"y": ["\xc3\x28"]}]}',
    b'{"\xff": 1, "texts": ["ok"]}', b'{"texts": ["ok"], "x": "\xc0\xaf"}', b'{"texts": ["ok"], "x": 1e999}',
    b'{"texts": ["ok"], "x": ' + b"9" * 5000 + b"}",
]


@pytest.mark.parametrize("body", BODIES, ids=range(len(BODIES)))
def test_same_answers_as_the_framework_route(served, body):
    app, client, dev = served
    fast, slow, _ = both(app, client, body, {**dev.anonymous(), **JSON})
    same(fast, slow)


@pytest.mark.parametrize("media", ["application/json; charset=utf-8", "text/plain", "application/x-msgpack", None])
def test_other_media_types_answer_as_the_route_does(served, media):
    app, client, dev = served
    headers = dev.anonymous() | ({"content-type": media} if media else {})
    fast, slow, _ = both(app, client, b'{"texts": ["Great value for the money."]}', headers)
    same(fast, slow)


def test_same_checks_for_every_credential_and_origin(served):
    app, client, dev = served
    body = b'{"texts": ["Great value."]}'
    cases = [({}, 401, "missing_client_key"), ({"x-client-key": "ck_forged"}, 401, "unknown_client_key"),
             ({"x-client-key": dev.client_key, "authorization": "Bearer sk_forged"}, 401, None),
             (dev.server(), 200, None), (dev.user("ann"), 200, None), (dev.anonymous(), 200, None),
             ({**dev.anonymous(), "origin": ORIGIN}, 200, None),
             ({**dev.anonymous(), "origin": "https://evil.example"}, 403, "origin_not_allowed")]
    for headers, status, code in cases:
        fast, slow, _ = both(app, client, body, {**headers, **JSON})
        assert fast.status_code == status, (headers, fast.text)
        same(fast, slow)
        if code:
            assert fast.json()["error"] == code
    allowed = client.post("/v1/sentiment", content=body, headers={**dev.anonymous(), **JSON, "origin": ORIGIN})
    assert allowed.headers["access-control-allow-origin"] == ORIGIN


def test_the_happy_path_is_answered_in_front_and_counted(served, monkeypatch):
    from edge_node.http import fast_path

    app, client, dev = served
    answered = []
    encode = fast_path._encode
    monkeypatch.setattr(fast_path, "_encode", lambda answer: answered.append(1) or encode(answer))
    headers = {**dev.anonymous(), **JSON}
    assert client.post("/v1/sentiment", content=b'{"texts": ["Lovely."]}', headers=headers).status_code == 200
    assert client.post("/v1/sentiment", content=b'{"texts": [1]}', headers=headers).status_code == 400
    assert client.post("/v1/sentiment", content=b'{"texts": []}', headers=headers).status_code == 400
    assert answered == [1]  # the first in front, the refused ones by the route
    text = client.get("/metrics").text
    assert 'sentiedge_http_request_duration_seconds_count{method="POST",route="/v1/sentiment",status="200"}' in text


def test_a_refusal_or_a_failure_is_met_once(model, tmp_path):
    """Admission and the route's own checks run in front; what they refuse is the route's answer
    too, counted once and spending the address's budget once."""
    apps_file = two_tenant_apps_file(tmp_path, ["events:write"])  # a server key without the sentiment scope
    settings = load_settings({"EDGE_DATA_DIR": str(tmp_path / "edge"), "EDGE_APPS_FILE": str(apps_file),
                              "EDGE_RATE_LIMIT_PER_ADDRESS": "1"})  # burst 2
    with TestClient(create_app(settings, model=model)) as client:
        body = b'{"texts": ["Great value."]}'
        forged = {"x-client-key": "ck_forged", **JSON}
        statuses = [client.post("/v1/sentiment", content=body, headers=forged).status_code for _ in range(3)]
        assert statuses == [401, 401, 429]
        text = client.get("/metrics").text
        assert 'sentiedge_auth_refusals_total{reason="unknown_client_key"} 2.0' in text
    settings = load_settings({"EDGE_DATA_DIR": str(tmp_path / "edge"), "EDGE_APPS_FILE": str(apps_file)})
    with TestClient(create_app(settings, model=model)) as client:
        backend = {"x-client-key": "ck_shop", "authorization": "Bearer sk_shop_backend", **JSON}
        r = client.post("/v1/sentiment", content=body, headers=backend)
        assert r.status_code == 403 and r.json()["error"] == "missing_scope", r.text
        assert ('sentiedge_http_request_duration_seconds_count{method="POST",route="/v1/sentiment",status="403"} 1.0'
                in client.get("/metrics").text)


def asgi_post(client, parts: list[bytes], headers: dict) -> tuple[int, list, bytes]:
    """POST /v1/sentiment straight into the app, its body in ``parts`` (one receive message each)."""
    app, sent = client.app, []
    messages = [{"type": "http.request", "body": part, "more_body": i < len(parts) - 1} for i, part in enumerate(parts)]

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/v1/sentiment", "raw_path": b"/v1/sentiment", "query_string": b"", "root_path": "",
             "headers": [(k.encode(), v.encode("latin-1")) for k, v in headers.items()],
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80), "state": {}}
    client.blocking_portal.call(app, scope, receive, send)
    return sent[0]["status"], sent[0]["headers"], b"".join(m.get("body", b"") for m in sent[1:])


@pytest.mark.parametrize("parts", [3, 17])
def test_a_body_in_several_messages_is_answered_in_front(served, monkeypatch, parts):
    """A body that arrives over several receive messages (a slow client, chunked encoding) is read
    whole and answered in front, as the route answers it; over the limit, the route answers 413."""
    from edge_node.http import fast_path

    app, client, dev = served
    answered = []
    encode = fast_path._encode
    monkeypatch.setattr(fast_path, "_encode", lambda answer: answered.append(1) or encode(answer))
    headers = {**dev.anonymous(), **JSON}
    for body, status in ((BODIES[1], 200), (BODIES[8], 413)):
        size = -(-len(body) // parts)
        split = [body[i:i + size] for i in range(0, len(body), size)]
        fast = asgi_post(client, split, headers)
        app.state.fast_path = False
        slow = asgi_post(client, split, headers)
        app.state.fast_path = True
        assert fast == slow and fast[0] == status
    assert answered == [1]


@pytest.mark.parametrize("length", ["²", "abc", "-1", " 5", "99999999"])
def test_a_declared_length_the_front_path_does_not_trust_is_the_route_s_to_answer(served, length):
    app, client, dev = served
    headers = {**dev.anonymous(), **JSON, "content-length": length}
    fast = asgi_post(client, [BODIES[0]], headers)
    app.state.fast_path = False
    slow = asgi_post(client, [BODIES[0]], headers)
    app.state.fast_path = True
    assert fast == slow
