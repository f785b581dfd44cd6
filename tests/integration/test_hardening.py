"""Hostile input through the real app, model and disk store: what one caller can make the
edge hold (profiles, cohort cells, the decision cache) is bounded, and odd bodies get a 4xx."""

import contextlib
import json
import time

import pytest
from litestar.testing import TestClient

from edge_node.config import load_settings
from edge_node.http.app import create_app
from edge_node.personalization.cohorts import ALL
from tests.credentials import dev_user, edge_app

ALL_PURPOSES = {"sentiment": True, "personalization": True, "cohort_analytics": True}


@pytest.fixture
def client(model, tmp_path):
    settings = load_settings({"EDGE_DATA_DIR": str(tmp_path / "edge"), "EDGE_COHORT_MIN_SIZE": "1",
                              "EDGE_MAX_CATEGORIES_PER_PROFILE": "50", "EDGE_MAX_CATEGORIES_PER_COHORT": "80",
                              "EDGE_MAX_COHORTS_PER_WINDOW": "5", "EDGE_DECISION_CACHE_MB": "4",
                              "EDGE_COHORT_PRIOR_REFRESH_S": "0", "EDGE_RATE_LIMIT_PER_ADDRESS": "0"})
    with TestClient(create_app(settings, model=model)) as c:
        c.headers.update(edge_app(settings.data_path).server())
        yield c


def node(client):
    return client.app.state.node


def grant(client, user):
    assert client.put(f"/v1/users/{user}/consent",
                      json={"purposes": ALL_PURPOSES, "policy_version": "v1"}).status_code == 200


def post(client, user, events, context=None):
    r = client.post(f"/v1/users/{user}/events", json={"events": events, "context": context or {"region": "eu"}})
    assert r.status_code == 200, r.text
    return r.json()


def test_a_profile_keeps_its_strongest_categories_and_no_more(client):
    grant(client, "spammer")
    post(client, "spammer", [{"type": "purchase", "item_id": "s", "category": "Beauty/Skincare"}] * 20)
    for start in range(0, 300, 100):
        post(client, "spammer", [{"type": "view", "item_id": f"i{n}", "category": f"junk/{n}"}
                                 for n in range(start, start + 100)])
    n = node(client)
    profile = n.store.profile(n.privacy.pseudonymize(dev_user("spammer")))
    assert len(profile.affinities) == 50
    assert "beauty/skincare" in profile.affinities  # the strongest stays; the weak junk made room
    # Past the cap the junk paths fold into their parent ("junk"), which holds all their weight;
    # the strongest real category is still there, next to it.
    top = [a["category"] for a in client.get("/v1/users/spammer/vector").json()["affinities"][:2]]
    assert "Beauty/Skincare" in top and "junk" in top
    # The cohort cells it fed are bounded too, in every per-category field.
    window = n.cohorts.window_of(n.now())
    for key, cell in n.cohorts.cells(window, "dev").items():
        assert len(cell.categories) <= 80 and len(cell.topic_events) <= 80, key
        assert "beauty/skincare" in cell.categories


def test_a_withdrawal_after_capping_leaves_the_cells_empty(client):
    grant(client, "u")
    for start in range(0, 200, 100):
        post(client, "u", [{"type": "like", "item_id": f"i{n}", "category": f"c/{n}"}
                           for n in range(start, start + 100)])
    r = client.put("/v1/users/u/consent", json={"purposes": {"cohort_analytics": False}, "policy_version": "v1"})
    assert r.status_code == 200
    n = node(client)
    for key, cell in n.cohorts.cells(n.cohorts.window_of(n.now()), "dev").items():
        assert cell.users == 0 and all(abs(w) < 1e-6 for w in cell.categories.values()), key
        assert not cell.topic_events and all(abs(v) < 1e-6 for v in cell.topic_sentiment.values())


def test_new_cohorts_past_the_window_limit_count_node_wide_only(client):
    for i in range(12):
        grant(client, f"u{i}")
        post(client, f"u{i}", [{"type": "click", "item_id": "x", "category": "books"}], {"region": f"r{i}"})
    n = node(client)
    cells = n.cohorts.cells(n.cohorts.window_of(n.now()), "dev")
    assert len(cells) == 5 + 1 and cells[ALL].users == 12
    # A user who fell back to "all" alone can still take it back out.
    client.put("/v1/users/u11/consent", json={"purposes": {"cohort_analytics": False}, "policy_version": "v1"})
    assert n.cohorts.cells(n.cohorts.window_of(n.now()), "dev")[ALL].users == 11


def test_context_fields_are_bounded_and_never_echoed_whole(client):
    r = client.get("/v1/personalize", params={"region": "r" * 60_000})  # near the URL limit of HTTP clients
    assert r.status_code == 400 and r.json()["field"] == "context.region", r.text
    assert len(r.content) < 2000
    r = client.post("/v1/users/u/events", content=json.dumps(
        {"events": [{"type": "view", "item_id": "x", "category": "c"}], "context": {"region": "r" * 5000}}))
    assert r.status_code == 400 and r.json()["field"] == "context.region" and "EDGE_MAX_ID_CHARS" in r.json()["message"]
    r = client.post("/v1/rank", json={"candidates": [{"id": "a", "category": "b"}],
                                      "context": {"device": "\x00evil"}})
    assert r.status_code == 400 and r.json()["field"] == "context.device"
    r = client.post("/v1/rank", json={"candidates": [{"id": "a", "category": "b"}], "context": {"daypart": "d" * 5000}})
    assert r.status_code == 400 and len(r.content) < 2000


def test_the_decision_cache_is_bounded_by_bytes(client):
    grant(client, "wide")
    for start in range(0, 50, 25):
        post(client, "wide", [{"type": "like", "item_id": f"i{n}", "category": f"c/{n}"}
                              for n in range(start, start + 25)])
    n = node(client)
    for region in range(300):
        assert client.get("/v1/personalize", params={"user_id": "wide", "region": f"r{region}"}).status_code == 200
    assert 0 < n.personalizer.cached_bytes <= 4 * (1 << 20)
    assert len(n.personalizer._cache) < 300  # the oldest went to stay within the budget


@pytest.mark.parametrize("method,path", [("POST", "/v1/sentiment"), ("POST", "/v1/users/u/events"),
                                         ("PUT", "/v1/users/u/consent"), ("POST", "/v1/rank"),
                                         ("POST", "/v1/labels"), ("POST", "/v1/experiments/events")])
@pytest.mark.parametrize("depth", [1000, 5000])
def test_deeply_nested_json_is_a_400_on_every_json_route(client, method, path, depth):
    body = "[" * depth + "]" * depth
    r = client.request(method, path, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_input" and "nested" in r.json()["message"]
    nested = '{"texts": ' + "[" * depth + "]" * depth + "}"
    r = client.request(method, path, content=nested, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text


def metric(client, name):
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def test_a_full_privacy_outbox_refuses_new_deletions_and_changes_nothing(model, tmp_path):
    from edge_node.app_sources import write_development_file
    from tests.credentials import DevApp
    from tests.e2e.conftest import free_port

    apps = write_development_file(tmp_path / "apps.json", app_id="app_t", origins=[], client_key="ck_t", kid="k",
                                  server_key="sk_t")
    settings = load_settings({"EDGE_DATA_DIR": str(tmp_path / "edge"), "EDGE_PRIVACY_OUTBOX_MAX": "3",
                              "EDGE_APPS_FILE": str(apps),
                              "EDGE_CONTROL_PLANE": f"127.0.0.1:{free_port()}",  # nobody there: offline
                              "EDGE_RATE_LIMIT_PER_ADDRESS": "0"})
    with TestClient(create_app(settings, model=model)) as c:
        c.headers.update(DevApp(apps).server())
        for user in ("a", "b", "c", "d"):
            grant(c, user)
            post(c, user, [{"type": "purchase", "item_id": "x", "category": "books"}])
        for user in ("a", "b", "c"):
            assert c.delete(f"/v1/users/{user}").status_code == 200
        assert metric(c, "sentiedge_privacy_outbox_pending") == 3
        assert metric(c, "sentiedge_privacy_outbox_capacity") == 3
        r = c.delete("/v1/users/d")
        assert r.status_code == 503 and r.json()["error"] == "privacy_outbox_full"
        assert "EDGE_PRIVACY_OUTBOX_MAX" in r.json()["message"] and int(r.headers["retry-after"]) >= 1
        r = c.put("/v1/users/d/consent", json={"purposes": {"personalization": False}, "policy_version": "v1"})
        assert r.status_code == 503
        # Nothing of the refused requests happened: d still has consent and a vector.
        assert c.get("/v1/users/d/consent").json()["purposes"]["personalization"]["granted"]
        assert c.get("/v1/users/d/vector").status_code == 200


def test_a_standalone_edge_keeps_no_outbox(client):
    grant(client, "a")
    assert client.delete("/v1/users/a").status_code == 200
    assert metric(client, "sentiedge_privacy_outbox_pending") == 0 and node(client).store.outbox_pending() == 0


@contextlib.contextmanager
def budget_client(model, tmp_path, max_bytes: int):
    settings = load_settings({"EDGE_DATA_DIR": str(tmp_path / "edge"), "EDGE_STORE_MAX_BYTES": str(max_bytes),
                              "EDGE_RATE_LIMIT_PER_ADDRESS": "0", "EDGE_DISK_RESERVE_MB": "0"})
    with TestClient(create_app(settings, model=model)) as client:  # the app writes its dev app at start
        client.headers.update(edge_app(settings.data_path).server())
        yield client


def test_the_store_budget_evicts_cold_profiles_first_and_never_consent(model, tmp_path):
    with budget_client(model, tmp_path, 1_800_000) as c:
        n = node(c)
        users = [f"user-{i}" for i in range(600)]
        for i, user in enumerate(users):
            if i == 300:
                time.sleep(1.1)  # the budget evicts by the second a profile was last written
            assert c.put(f"/v1/users/{user}/consent", json={"purposes": {"personalization": True},
                                                             "policy_version": "v1"}).status_code == 200
            post(c, user, [{"type": "like", "item_id": "x", "category": f"c/{k}"} for k in range(20)])
            if i == 100:
                n.disk.check_disk()
        assert c.delete("/v1/users/user-5").status_code == 200
        n.disk.check_disk()
        assert n.store.used_bytes() <= 1_800_000 and not n.store.over_budget
        assert metric(c, 'sentiedge_store_evictions_total{kind="profile"}') > 0
        assert metric(c, "sentiedge_store_bytes") <= metric(c, "sentiedge_store_max_bytes") == 1_800_000
        # Every consent and the suppression survive; the most recent profiles do too.
        assert all(n.store.consent(n.privacy.pseudonymize(dev_user(u))).allows("personalization")
                   for u in users if u != "user-5")
        assert n.store.suppression(n.privacy.pseudonymize(dev_user("user-5"))) is not None
        assert c.get(f"/v1/users/{users[-1]}/vector").status_code == 200
        assert c.get("/v1/users/user-0/vector").status_code == 404  # the coldest went first


def test_past_the_budget_in_records_never_evicted_writes_are_refused_but_not_erasures(model, tmp_path):
    with budget_client(model, tmp_path, 150_000) as c:
        n = node(c)
        i = 0
        while n.store.used_bytes() <= 150_000:  # consent only: nothing here may be evicted
            grant(c, f"u{i}")
            i += 1
        n.disk.check_disk()
        assert n.store.over_budget
        r = c.put("/v1/users/new/consent", json={"purposes": ALL_PURPOSES, "policy_version": "v1"})
        assert r.status_code == 507 and "EDGE_STORE_MAX_BYTES" in r.json()["message"]
        assert c.delete("/v1/users/u1").status_code == 200
        r = c.put("/v1/users/u2/consent", json={"purposes": {"personalization": False}, "policy_version": "v1"})
        assert r.status_code == 200
        assert c.get("/readyz").status_code == 200  # reads are still served
        assert metric(c, 'sentiedge_writes_refused_total{reason="store_budget"}') >= 1
