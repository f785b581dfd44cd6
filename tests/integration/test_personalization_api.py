"""The personalization API through the real app, model and disk store."""

import datetime as dt

import pytest
from litestar.testing import TestClient

from edge_node.config import load_settings
from edge_node.http.app import create_app
from tests.credentials import edge_app

ALL_PURPOSES = {"sentiment": True, "personalization": True, "cohort_analytics": True}
CTX = {"region": "eu", "device": "mobile", "daypart": "evening"}
CANDIDATES = [
    {"id": "skin-1", "category": "Beauty/Skincare", "popularity": 10},
    {"id": "skin-2", "category": "Beauty/Skincare", "popularity": 3},
    {"id": "makeup-1", "category": "Beauty/Makeup", "popularity": 40},
    {"id": "garden-1", "category": "Garden", "popularity": 100},
    {"id": "book-1", "category": "Books", "popularity": 20},
    {"id": "toy-1", "category": "Toys", "popularity": 30},
]


@pytest.fixture
def client(model, tmp_path):
    # The mechanics (reasons, priors, the diversity limit) pinned with a blend where personal and
    # cohort signals outweigh popularity and 3 per category; the shipped defaults are the replay
    # benchmark's (docs/ranking.md) and the e2e tests run with them. This edge gets no neighbour
    # table, so popularity's weight is the one without a table (EDGE_WEIGHT_POPULARITY_NO_TABLE).
    settings = load_settings({"EDGE_DATA_DIR": str(tmp_path / "edge"), "EDGE_COHORT_MIN_SIZE": "3",
                              "EDGE_WEIGHT_POPULARITY": "0.3", "EDGE_WEIGHT_POPULARITY_NO_TABLE": "0.3",
                              "EDGE_MAX_PER_CATEGORY": "3",
                              "EDGE_MAX_EVENTS_PER_REQUEST": "5", "EDGE_MAX_CANDIDATES_PER_REQUEST": "10",
                              "EDGE_MAX_BODY_BYTES": "20000", "EDGE_EXPLORATION_SLOTS": "0",
                              "EDGE_COHORT_PRIOR_REFRESH_S": "0"})
    app = create_app(settings, model=model)
    with TestClient(app) as c:
        c.headers.update(edge_app(settings.data_path).server())
        yield c


def grant(client, user, purposes=None):
    r = client.put(f"/v1/users/{user}/consent",
                   json={"purposes": purposes or ALL_PURPOSES, "policy_version": "2026-11"})
    assert r.status_code == 200, r.text
    return r.json()


def events(client, user, items, context=CTX):
    r = client.post(f"/v1/users/{user}/events", json={"events": items, "context": context})
    assert r.status_code == 200, r.text
    return r.json()


def rank(client, user=None, context=CTX, **extra):
    r = client.post("/v1/rank", json={"user_id": user, "context": context, "candidates": CANDIDATES, **extra})
    assert r.status_code == 200, r.text
    return r.json()


LOVES_SKINCARE = [
    {"type": "review", "item_id": "skin-9", "category": "Beauty/Skincare",
     "text": "I absolutely love this serum, my skin has never looked better!"},
    {"type": "rating", "item_id": "skin-9", "category": "Beauty/Skincare", "value": 5},
    {"type": "purchase", "item_id": "skin-9", "category": "Beauty/Skincare"},
]


def test_consent_is_default_deny_and_events_without_it_are_dropped_and_counted(client):
    consent = client.get("/v1/users/alice/consent").json()
    assert {p: v["granted"] for p, v in consent["purposes"].items()} == {
        "sentiment": False, "personalization": False, "cohort_analytics": False}
    assert all(v["timestamp"] is None and v["policy_version"] is None for v in consent["purposes"].values())
    report = events(client, "alice", LOVES_SKINCARE)
    assert report["accepted"] == 0 and report["dropped"] == 3
    assert report["dropped_reasons"] == {"no_consent_personalization_or_cohort_analytics": 3}
    assert client.get("/v1/users/alice/vector").status_code == 404


def test_text_is_not_analysed_without_sentiment_consent(client):
    grant(client, "dan", {"personalization": True})
    report = events(client, "dan", LOVES_SKINCARE[:1])
    assert report["accepted"] == 1 and report["texts_scored"] == 0 and report["texts_ignored"] == 1
    assert report["results"][0]["text_ignored"] == "no_consent_sentiment"
    assert "sentiment" not in report["results"][0]


def test_events_build_a_vector_and_rankings_change_with_reasons(client):
    before = rank(client, "alice")
    assert before["source"] == "global"
    grant(client, "alice")
    report = events(client, "alice", LOVES_SKINCARE + [
        {"type": "review", "item_id": "g-2", "category": "Garden", "text": "Broke after two days. Terrible, avoid."}])
    assert report["accepted"] == 4 and report["texts_scored"] == 2
    labels = [r["sentiment"]["label"] for r in report["results"] if "sentiment" in r]
    assert labels == ["positive", "negative"]

    vector = client.get("/v1/users/alice/vector").json()
    assert vector["dimension"] == 32 and len(vector["vector"]) == 32
    assert vector["affinities"][0]["category"] == "Beauty/Skincare"  # as the client spelled it
    assert {a["category"]: a["score"] for a in vector["affinities"]}["Garden"] < 0
    assert vector["cohort"] == "eu/mobile/evening" and vector["events"] == 4
    assert vector["sentiment"]["window_minutes"] == 30

    after = rank(client, "alice")
    assert after["source"] == "user"
    order = [i["id"] for i in after["items"]]
    assert order[:2] == ["skin-1", "skin-2"] and order[-1] == "garden-1"
    reasons = {i["id"]: i["reason"] for i in after["items"]}
    assert reasons["skin-1"] == "because you rated Beauty/Skincare positively today"
    assert reasons["garden-1"].startswith("ranked lower because you reviewed Garden negatively")
    # Lifted by its sibling: the reason names the item's own category at the level the evidence
    # is (Beauty), never the sibling's (a Makeup item was once explained by "Skincare").
    assert reasons["makeup-1"] == "because you rated Beauty positively today"

    personalized = client.get("/v1/personalize", params={"user_id": "alice", **CTX}).json()
    assert personalized["source"] == "user"
    assert personalized["vector"] == pytest.approx(vector["vector"], abs=1e-4)  # decays a little between calls


def test_withdrawing_personalization_stops_using_the_user(client):
    grant(client, "bob")
    events(client, "bob", LOVES_SKINCARE)
    assert rank(client, "bob")["source"] == "user"
    r = client.put("/v1/users/bob/consent", json={"purposes": {"personalization": False}, "policy_version": "2026-11"})
    body = r.json()
    assert body["withdrawn"] == ["personalization"] and body["erased"] == ["profile", "recent_reasons"]
    assert body["request_id"].startswith("req-")
    assert client.get("/v1/users/bob/vector").status_code == 404
    ranked = rank(client, "bob")
    assert ranked["source"] != "user" and "no personalization consent" in ranked["reason"]
    assert all(not i["reason"].startswith("because you") for i in ranked["items"])
    # Events now only count in cohorts (still consented), never rebuild the profile.
    events(client, "bob", LOVES_SKINCARE[:1])
    assert client.get("/v1/users/bob/vector").status_code == 404


def test_deletion_erases_and_drops_late_events(client):
    grant(client, "carol")
    events(client, "carol", LOVES_SKINCARE)
    r = client.delete("/v1/users/carol")
    assert r.status_code == 200
    body = r.json()
    assert body["request_id"].startswith("req-") and "profile" in body["erased"] and "consent" in body["erased"]
    assert client.get("/v1/users/carol/vector").status_code == 404
    assert rank(client, "carol")["source"] != "user"
    late = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).isoformat()
    report = events(client, "carol", [{**LOVES_SKINCARE[2], "timestamp": late}])
    assert report["dropped_reasons"] == {"user_deleted": 1}
    # Consent is back to nothing granted after a deletion.
    assert not any(p["granted"] for p in client.get("/v1/users/carol/consent").json()["purposes"].values())


def test_cold_start_gets_the_cohort_prior_once_the_cohort_is_big_enough(client):
    assert client.get("/v1/personalize", params=CTX).json()["source"] == "global"
    for user in ("c1", "c2", "c3"):
        grant(client, user, {"cohort_analytics": True, "sentiment": True})
        events(client, user, [{"type": "purchase", "item_id": "b", "category": "Books"}] * 2)
    cold = client.get("/v1/personalize", params={"user_id": "newcomer", **CTX}).json()
    assert cold["source"] == "cohort" and cold["cohort"] == "eu/mobile/evening"
    assert cold["affinities"][0]["category"] == "books"
    ranked = rank(client, None)
    assert ranked["source"] == "cohort" and ranked["items"][0]["id"] == "book-1"
    assert "people like you (eu/mobile/evening)" in ranked["items"][0]["reason"]
    other = client.get("/v1/personalize", params={"region": "us", "device": "tv", "daypart": "night"}).json()
    assert other["source"] == "global" and other["affinities"][0]["category"] == "books"


def test_rank_limit_diversity_and_exploration(client):
    many = [{"id": f"s{i}", "category": "Skincare", "popularity": 100 - i} for i in range(6)]
    many += [{"id": "b", "category": "Books", "popularity": 3}, {"id": "t", "category": "Toys", "popularity": 2},
             {"id": "g", "category": "Garden", "popularity": 1}]
    r = client.post("/v1/rank", json={"candidates": many, "limit": 4, "exploration_slots": 1}).json()
    top = r["items"][:4]
    assert sum(i["category"] == "Skincare" for i in top) == 3  # the diversity limit
    explored = [i for i in top if i["exploration"]]
    assert len(explored) == 1 and explored[0]["id"] in {"t", "g"} and top[3] == explored[0]
    assert len(r["items"]) == 4 and "rest" not in r or r["rest"] == []  # limit items, as asked
    full = client.post("/v1/rank", json={"candidates": many, "limit": 4, "exploration_slots": 1,
                                         "include_rest": True}).json()
    assert full["items"] == r["items"] and len(full["rest"]) == 5
    assert [i["rank"] for i in full["items"] + full["rest"]] == list(range(1, 10))


def test_rank_diversity_counts_parent_categories_at_the_configured_depth(client):
    beauty = [{"id": f"b{i}", "category": f"Beauty/{leaf}", "popularity": 100 - i}
              for i, leaf in enumerate(["Skincare", "Makeup", "Hair", "Nails", "Fragrance", "Tools", "Skincare"])]
    other = [{"id": f"o{i}", "category": c, "popularity": 10 - i} for i, c in enumerate(["Books", "Toys", "Garden"])]
    body = {"candidates": beauty + other, "limit": 6, "exploration_slots": 0}
    top = client.post("/v1/rank", json=body).json()["items"]
    assert len(top) == 6 and sum(i["category"].startswith("Beauty/") for i in top) == 3  # one parent, one limit
    leafwise = client.post("/v1/rank", json={**body, "diversity_depth": 0}).json()["items"]
    assert all(i["category"].startswith("Beauty/") for i in leafwise)  # per leaf, no limit bites
    bad = client.post("/v1/rank", json={**body, "diversity_depth": -1})
    assert bad.status_code == 400 and bad.json()["field"] == "diversity_depth"


def test_categories_keep_the_clients_spelling_and_compare_case_insensitively(client):
    grant(client, "casey")
    events(client, "casey", [{"type": "purchase", "item_id": "x1", "category": "Beauty/Skincare"},
                             {"type": "view", "item_id": "x2", "category": "beauty/SKINCARE"},
                             {"type": "purchase", "item_id": "x3", "category": "Beauty/Skincare"}])
    chosen = client.get("/v1/personalize", params={"user_id": "casey"}).json()
    assert [a["category"] for a in chosen["affinities"]] == ["Beauty/Skincare"]  # one category, as spelled last
    ranked = client.post("/v1/rank", json={"user_id": "casey", "candidates": [
        {"id": "m", "category": "Beauty/Makeup"}, {"id": "s", "category": "BEAUTY/skincare"}]}).json()["items"]
    assert ranked[0]["id"] == "s" and ranked[0]["category"] == "BEAUTY/skincare"  # matched whatever the case
    # The Makeup item is lifted through its parent: the reason names that parent, in the client's
    # spelling (it used to name the sibling, "Skincare", which is not what the item is).
    assert ranked[1]["reason"] == "because you bought Beauty today", ranked[1]["reason"]


def test_metrics_cover_routes_batches_model_and_signals(client, model):
    grant(client, "m")
    events(client, "m", LOVES_SKINCARE)
    rank(client, "m")
    text = client.get("/metrics").text
    assert 'sentiedge_http_request_duration_seconds_count{method="POST",route="/v1/rank",status="200"}' in text
    assert 'sentiedge_inference_batch_size_count{stage="fast"}' in text
    assert f'sentiedge_model_info{{name="{model.name}",version="{model.version}"}} 1.0' in text
    assert "sentiedge_signal_to_action_seconds_count 1.0" in text
    assert 'sentiedge_predictions_total{label="positive"' in text
    assert "sentiedge_low_confidence_predictions_total" in text


def test_openapi_describes_the_whole_api(client):
    paths = client.get("/schema/openapi.json").json()["paths"]
    for path in ("/v1/sentiment", "/v1/users/{user_id}/consent", "/v1/users/{user_id}/events",
                 "/v1/users/{user_id}/vector", "/v1/users/{user_id}", "/v1/personalize", "/v1/rank",
                 "/healthz", "/readyz", "/metrics"):
        assert path in paths, path
    assert set(paths["/v1/users/{user_id}/consent"]) >= {"get", "put"}


EVENT = {"type": "view", "item_id": "i", "category": "c"}


@pytest.mark.parametrize("method, url, body, status, field", [
    ("put", "/v1/users/u/consent", {"purposes": {"ads": True}, "policy_version": "v"}, 400, "purposes.ads"),
    ("put", "/v1/users/u/consent", {"purposes": {}, "policy_version": "v"}, 400, "purposes"),
    ("put", "/v1/users/u/consent", {"purposes": {"sentiment": "yes"}, "policy_version": "v"}, 400, "purposes[...]"),
    ("put", "/v1/users/u/consent", {"purposes": {"sentiment": True}, "policy_version": " "}, 400, "policy_version"),
    ("post", "/v1/users/u/events", {"events": []}, 400, "events"),
    ("post", "/v1/users/u/events", {"events": [EVENT] * 6}, 413, "events"),
    ("post", "/v1/users/u/events", {"events": [{**EVENT, "type": "teleport"}]}, 400, "events[0].type"),
    ("post", "/v1/users/u/events", {"events": [EVENT, {**EVENT, "category": ""}]}, 400, "events[1].category"),
    ("post", "/v1/users/u/events", {"events": [{**EVENT, "type": "rating"}]}, 400, "events[0].value"),
    ("post", "/v1/users/u/events", {"events": [{**EVENT, "timestamp": "2099-01-01T00:00:00Z"}]}, 400,
     "events[0].timestamp"),
    ("post", "/v1/users/u/events", {"events": [{**EVENT, "timestamp": "2026-01-01T00:00:00"}]}, 400,
     "events[0].timestamp"),
    ("post", "/v1/users/u/events", {"events": [{**EVENT, "text": "x" * 20001}]}, 413, None),
    ("post", "/v1/users/u/events", {"events": [EVENT], "context": {"daypart": "brunch"}}, 400, "context.daypart"),
    ("post", "/v1/users/" + "u" * 129 + "/events", {"events": [EVENT]}, 400, "user_id"),
    ("post", "/v1/users/%01bad/events", {"events": [EVENT]}, 400, "user_id"),
    ("post", "/v1/rank", {"candidates": []}, 400, "candidates"),
    ("post", "/v1/rank", {"candidates": [{"id": "a", "category": "c"}] * 11}, 413, "candidates"),
    ("post", "/v1/rank", {"candidates": [{"id": "a", "category": "c"}, {"id": "a", "category": "c"}]}, 400,
     "candidates[1].id"),
    ("post", "/v1/rank", {"candidates": [{"id": "a", "category": "c", "popularity": -1}]}, 400,
     "candidates[0].popularity"),
    ("post", "/v1/rank", {"candidates": [{"id": "a", "category": "c"}], "limit": 0}, 400, "limit"),
    ("get", "/v1/personalize?daypart=teatime", None, 400, "context.daypart"),
])
def test_bad_input_gets_a_4xx_naming_the_field(client, method, url, body, status, field):
    r = client.request(method.upper(), url, json=body)
    assert r.status_code == status, r.text
    err = r.json()
    assert err["error"] in {"invalid_input", "limit_exceeded"} and err["message"]
    if field is not None:
        assert err["field"] == field, err


def test_invalid_utf8_and_malformed_json_are_400(client):
    r = client.post("/v1/users/u/events", content=b'{"events": [{"type": "view", "item_id": "\xff"}]}',
                    headers={"content-type": "application/json"})
    assert r.status_code == 400 and "UTF-8" in r.json()["message"]
    r = client.post("/v1/rank", content=b'{"candidates": [', headers={"content-type": "application/json"})
    assert r.status_code == 400


def test_bodies_over_the_limit_are_413(client):
    r = client.post("/v1/rank", json={"candidates": [{"id": "a", "category": "c" * 30000}]})
    assert r.status_code == 413


def metric_value(text: str, name: str) -> float:
    import re

    found = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def test_exposure_and_exploration_click_through_are_watched_per_tenant(client):
    grant(client, "ann")
    events(client, "ann", LOVES_SKINCARE)
    first = rank(client, "ann", limit=3, exploration_slots=1)["items"]
    explored = [i for i in first if i["exploration"]]
    assert len(explored) == 1
    shown = {i["id"] for i in first + rank(client, "ann", limit=3, exploration_slots=1)["items"]}
    events(client, "ann", [{"type": "click", "item_id": explored[0]["id"], "category": explored[0]["category"]}])
    text = client.get("/metrics").text
    tenant = '{tenant="dev"}'
    assert metric_value(text, 'sentiedge_rank_shown_total{slot="exploration",tenant="dev"}') == 2
    assert metric_value(text, 'sentiedge_rank_shown_total{slot="ranked",tenant="dev"}') == 4
    assert metric_value(text, f"sentiedge_exploration_clicks_total{tenant}") == 1
    assert metric_value(text, f"sentiedge_exposure_catalogue_items{tenant}") == len(CANDIDATES)
    shown |= {i["id"] for i in rank(client, "ann", limit=3, exploration_slots=1)["items"]}
    text = client.get("/metrics").text
    assert metric_value(text, f"sentiedge_exposure_catalogue_share{tenant}") == len(shown) / len(CANDIDATES)
    assert 0 < metric_value(text, f"sentiedge_exposure_gini{tenant}") < 1
