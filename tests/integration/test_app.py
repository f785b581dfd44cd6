import datetime as dt
import json
import urllib.parse

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from edge_node.config import load_settings
from edge_node.http.app import create_app
from tests.credentials import edge_app


@pytest.fixture(scope="module")
def client(model, tmp_path_factory):
    app = create_app(load_settings({"EDGE_MAX_TEXTS_PER_REQUEST": "8", "EDGE_MAX_TEXT_CHARS": "5000",
                                    "EDGE_DATA_DIR": str(tmp_path_factory.mktemp("edge"))}), model=model)
    with TestClient(app) as c:
        c.headers.update(edge_app(app.state.settings.data_path).server())
        yield c


def test_health_and_readiness_name_the_model(client, model):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready == {"status": "ready", "model": model.name, "version": model.version, "sync": "standalone",
                     "serving_personal": True}


def test_scores_many_texts_in_order_with_full_results(client, model):
    texts = ["An absolute joy, I loved every minute.", "Dreadful. A waste of two hours.", "Fine."]
    r = client.post("/v1/sentiment", json={"texts": texts})
    assert r.status_code == 200
    results = r.json()["results"]
    assert [x["label"] for x in results[:2]] == ["positive", "negative"]
    for x in results:
        assert -1 <= x["score"] <= 1 and 0.5 <= x["confidence"] <= 1
        assert x["stage"] in {"fast", "transformer"}
        assert (x["model"], x["version"]) == (model.name, model.version)
        assert (x["score"] >= 0) == (x["label"] == "positive")


def test_a_blank_text_is_answered_per_item_and_the_rest_are_scored(client):
    texts = [f"review {i}: great product, works well" for i in range(6)]
    texts.insert(5, "   ")
    r = client.post("/v1/sentiment", json={"texts": texts})
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["results"]) == 7 and body["results"][5] is None
    assert all(x["label"] == "positive" for i, x in enumerate(body["results"]) if i != 5)
    assert body["errors"] == [{"index": 5, "error": "empty_text", "message": "texts[5] is empty or only whitespace: "
                                                                               "not scored"}]
    clean = client.post("/v1/sentiment", json={"texts": ["fine"]}).json()
    assert "errors" not in clean or clean["errors"] == []


@pytest.mark.parametrize("body, status, field", [
    ({"texts": []}, 400, "texts"),
    ({"texts": ["  ", "\n"]}, 400, "texts"),  # nothing to score at all
    ({"texts": ["x"] * 9}, 413, "texts"),
    ({"texts": ["x" * 5001]}, 413, "texts[0]"),
    ({"texts": [3]}, 400, "texts[0]"),
    ({"texts": "not a list"}, 400, "texts"),
    ({}, 400, None),
])
def test_bad_requests_get_a_4xx_naming_the_field(client, body, status, field):
    r = client.post("/v1/sentiment", json=body)
    assert r.status_code == status, r.text
    err = r.json()
    assert err["error"] in {"invalid_input", "limit_exceeded"} and err["message"]
    if field:
        assert err["field"] == field


def test_malformed_json_and_invalid_utf8_are_400(client):
    json_type = {"content-type": "application/json"}
    assert client.post("/v1/sentiment", content=b"{bad", headers=json_type).status_code == 400
    bad_utf8 = b'{"texts": ["\xff\xfe"]}'
    assert client.post("/v1/sentiment", content=bad_utf8, headers=json_type).status_code == 400


def test_oversized_body_is_413_and_names_the_setting(client):
    r = client.post("/v1/sentiment", content=b'{"texts": ["' + b"a" * (2 << 20) + b'"]}',
                    headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert r.json()["error"] == "limit_exceeded" and "EDGE_MAX_BODY_BYTES" in r.json()["message"]


def test_unknown_routes_and_methods_say_so(client):
    r = client.get("/v1/nowhere")
    assert r.status_code == 404 and r.json()["error"] == "not_found" and "/v1/nowhere" in r.json()["message"]
    r = client.delete("/v1/sentiment")
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"
    assert "DELETE" in r.json()["message"] and "POST" in r.headers.get("allow", "")


def test_openapi_describes_the_sentiment_endpoint(client):
    schema = client.get("/schema/openapi.json").json()
    assert "/v1/sentiment" in schema["paths"] and "/readyz" in schema["paths"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(json_values, st.fixed_dictionaries({"texts": st.lists(st.text(max_size=300), max_size=10)})))
def test_no_input_produces_a_server_error(client, body):
    r = client.post("/v1/sentiment", content=json.dumps(body), headers={"content-type": "application/json"})
    assert r.status_code < 500, r.text


ids = st.text(min_size=0, max_size=20)
maybe = lambda strategy: st.one_of(st.none(), strategy, json_values)  # noqa: E731
events = st.fixed_dictionaries({
    "type": maybe(st.sampled_from(["view", "click", "purchase", "review", "rating", "x"])),
    "item_id": maybe(ids), "category": maybe(ids), "text": maybe(st.text(max_size=200)),
    "value": maybe(st.floats(allow_nan=False)), "timestamp": maybe(st.datetimes(timezones=st.just(dt.UTC)).map(str)),
})
context = st.fixed_dictionaries({"region": maybe(ids), "device": maybe(ids),
                                 "daypart": maybe(st.sampled_from(["morning", "evening", "lunch"])),
                                 "tz_offset_minutes": maybe(st.integers())})
candidates = st.fixed_dictionaries({"id": maybe(ids), "category": maybe(ids),
                                    "popularity": maybe(st.floats(allow_nan=False)),
                                    "features": maybe(st.dictionaries(st.text(max_size=5),
                                                                      st.floats(allow_nan=False)))})
requests = st.one_of(
    st.tuples(st.just("PUT"), st.just("consent"), st.fixed_dictionaries({
        "purposes": maybe(st.dictionaries(st.sampled_from(["sentiment", "personalization", "cohort_analytics", "ads"]),
                                          maybe(st.booleans()))),
        "policy_version": maybe(st.text(max_size=5))})),
    st.tuples(st.just("POST"), st.just("events"), st.fixed_dictionaries({
        "events": maybe(st.lists(events, max_size=4)), "context": maybe(context)})),
    st.tuples(st.just("POST"), st.just("rank"), st.fixed_dictionaries({
        "candidates": maybe(st.lists(candidates, max_size=4)), "user_id": maybe(ids), "context": maybe(context),
        "limit": maybe(st.integers()), "exploration_slots": maybe(st.integers())})),
    st.tuples(st.just("GET"), st.just("personalize"), st.fixed_dictionaries({
        "user_id": ids, "region": ids, "daypart": st.sampled_from(["", "night", "noon"]),
        "tz_offset_minutes": st.integers().map(str)})),
    st.tuples(st.sampled_from(["GET", "DELETE"]), st.sampled_from(["vector", "consent", "user"]), st.none()),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(user=st.text(min_size=1, max_size=40).filter(lambda u: "/" not in u and "?" not in u and "#" not in u),
       request=requests)
def test_no_personalization_input_produces_a_server_error(client, user, request):
    method, target, body = request
    quoted = urllib.parse.quote(user, safe="")
    if target == "rank":
        r = client.post("/v1/rank", content=json.dumps(body), headers={"content-type": "application/json"})
    elif target == "personalize":
        r = client.get("/v1/personalize", params=body)
    else:
        url = f"/v1/users/{quoted}" + ("" if target == "user" else f"/{target}")
        r = client.request(method, url, content=None if body is None else json.dumps(body),
                           headers={"content-type": "application/json"})
    assert r.status_code < 500, r.text


def test_the_admin_port_is_not_ready_until_the_public_port_listens(model, tmp_path):
    """uvicorn binds the public socket after the app's startup; until it has, the admin port's
    /readyz (what an orchestrator probes) must not send traffic there."""
    import uvicorn

    from edge_node.http.app import create_admin_app

    app = create_app(load_settings({"EDGE_DATA_DIR": str(tmp_path), "EDGE_ADMIN_PORT": "9091"}), model=model)
    public = uvicorn.Server(uvicorn.Config(app))  # constructed, not yet serving: started is False
    app.state["public_server"] = public
    with TestClient(app), TestClient(create_admin_app(app)) as admin:
        r = admin.get("/readyz")
        assert r.status_code == 503 and "public port" in r.text
        public.started = True  # what uvicorn sets once its sockets listen
        assert admin.get("/readyz").status_code == 200


def test_metrics_count_escalated_texts_by_the_encoder_layers_they_ran(client, model):
    """Operators see how often the early exits answer: a falling share means the traffic got
    harder for the model (and dearer to serve)."""
    import re

    def counts() -> dict[str, float]:
        text = client.get("/metrics").text
        return {m.group(1): float(m.group(2))
                for m in re.finditer(r'sentiedge_transformer_texts_total\{layers="(\d+)"\} ([0-9.e+]+)', text)}

    before = counts()
    texts = ["not bad at all", "great value for money", "the app keeps crashing", "five stars",
             "the parcel came a day early", "never again", "worst hotel ever", "I loved it"]
    results = client.post("/v1/sentiment", json={"texts": texts}).json()["results"]
    escalated = sum(r["stage"] == "transformer" for r in results)
    after = counts()
    added = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    assert escalated > 0 and sum(added.values()) == escalated  # short texts always escalate (thin evidence)
    layers = {e.layer for e in model.manifest.stage("transformer").exits} | {model.transformer_stage.layers}
    assert {int(k) for k, v in added.items() if v} <= layers


def test_the_api_reference_page_needs_nothing_from_the_network(client):
    page = client.get("/schema")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "/v1/users/{user_id}/consent" in page.text and "X-Client-Key" in page.text
    assert "http://" not in page.text.replace("http://127.0.0.1", "") and "https://" not in page.text
    assert "<script" not in page.text
    spec = client.get("/schema/openapi.json")
    assert spec.status_code == 200 and "/v1/sentiment" in spec.json()["paths"]
