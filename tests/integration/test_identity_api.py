"""Identity through the real app and store: an anonymous visitor logs in (POST
/v1/users/{id}/aliases), as the user, the app's backend and an attacker would try it."""

import datetime as dt

import pytest
from litestar.testing import TestClient

from edge_node.config import load_settings
from edge_node.http.app import create_app
from edge_node.personalization.cooccurrence import Basket
from tests.credentials import dev_user, edge_app

ALL = {"sentiment": True, "personalization": True, "cohort_analytics": True}
CTX = {"region": "eu", "device": "mobile", "daypart": "evening"}
SKINCARE = [{"type": "review", "item_id": "s1", "category": "Beauty/Skincare",
             "text": "I absolutely love this serum, my skin has never looked better!"},
            {"type": "purchase", "item_id": "s1", "category": "Beauty/Skincare"}]
BOOKS = [{"type": "purchase", "item_id": "b1", "category": "Books"}]


@pytest.fixture
def edge(model, tmp_path):
    settings = load_settings({"EDGE_DATA_DIR": str(tmp_path / "edge"), "EDGE_COHORT_MIN_SIZE": "1",
                              "EDGE_MAX_ALIASES_PER_USER": "2", "EDGE_RATE_LIMIT_PER_ADDRESS": "0"})
    app = create_app(settings, model=model)
    with TestClient(app) as client:
        yield client, app.state.node, edge_app(settings.data_path)


def as_user(client, dev, method, path, user, body=None):
    return client.request(method, path, json=body, headers=dev.user(user))


def visit(client, dev, user, events, purposes=ALL):
    assert as_user(client, dev, "PUT", f"/v1/users/{user}/consent", user,
                   {"purposes": purposes, "policy_version": "v1"}).status_code == 200
    r = as_user(client, dev, "POST", f"/v1/users/{user}/events", user, {"events": events, "context": CTX})
    assert r.status_code == 200 and r.json()["accepted"] == len(events), r.text


def link(client, dev, user, anonymous, *, token_for=None):
    body = {"anonymous_id": anonymous, "anonymous_token": dev.token(token_for or anonymous)}
    return as_user(client, dev, "POST", f"/v1/users/{user}/aliases", user, body)


def vector(client, dev, user):
    return as_user(client, dev, "GET", f"/v1/users/{user}/vector", user)


def test_a_visitor_who_logs_in_keeps_what_they_browsed_once(edge):
    client, node, dev = edge
    visit(client, dev, "anon-7f3a", SKINCARE)
    visit(client, dev, "alice", BOOKS)
    window = node.cohorts.window_of(node.now())
    assert node.cohorts.cells(window, "dev")["all"].users == 2

    r = link(client, dev, "alice", "anon-7f3a")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["already_linked"] is False and body["events"] == 2
    assert body["merged"] == ["profile", "cohort_contributions", "cooccurrence_contributions"]
    [basket] = node.store.keys(f"cob|{node.pairs.window_of(node.now())}|")  # one person, one basket
    assert set(node.store.get(basket, Basket).items) == {"s1", "b1"}

    alice = vector(client, dev, "alice").json()
    assert {a["category"] for a in alice["affinities"]} >= {"Beauty/Skincare", "Books"}
    assert alice["events"] == 3
    assert node.cohorts.cells(window, "dev")["all"].users == 1  # one person, counted once now

    # The anonymous id now reaches alice's records: its events land in her profile.
    visit(client, dev, "anon-7f3a", BOOKS)
    assert vector(client, dev, "alice").json()["events"] == 4
    assert vector(client, dev, "anon-7f3a").json()["events"] == 4

    again = link(client, dev, "alice", "anon-7f3a").json()
    assert again["already_linked"] is True and again["merged"] == []
    assert again["linked_at"] == body["linked_at"]
    assert vector(client, dev, "alice").json()["events"] == 4  # merged once, not twice
    metrics = client.get("/metrics").text
    assert 'sentiedge_identity_links_total{result="linked"} 1.0' in metrics
    assert 'sentiedge_identity_links_total{result="already_linked"} 1.0' in metrics


def test_the_backend_links_with_a_server_key_and_the_rule_is_the_same(edge):
    client, _, dev = edge
    visit(client, dev, "anon-1", SKINCARE)
    visit(client, dev, "bob", BOOKS)
    r = client.post("/v1/users/bob/aliases", json={"anonymous_id": "anon-1"}, headers=dev.server())
    assert r.status_code == 200 and r.json()["merged"][0] == "profile"
    assert vector(client, dev, "bob").json()["events"] == 3


def test_an_attacker_cannot_absorb_someone_elses_anonymous_profile(edge):
    client, _, dev = edge
    visit(client, dev, "anon-victim", SKINCARE)
    visit(client, dev, "mallory", BOOKS)

    no_proof = as_user(client, dev, "POST", "/v1/users/mallory/aliases", "mallory", {"anonymous_id": "anon-victim"})
    assert no_proof.status_code == 403 and no_proof.json()["error"] == "anonymous_token_required"
    own_token = link(client, dev, "mallory", "anon-victim", token_for="anon-mallory")
    assert own_token.status_code == 403 and own_token.json()["error"] == "wrong_user"
    forged = as_user(client, dev, "POST", "/v1/users/mallory/aliases", "mallory",
                     {"anonymous_id": "anon-victim", "anonymous_token": "eyJhbGciOiJub25lIn0.e30."})
    assert forged.status_code == 401
    for_someone_else = client.post("/v1/users/alice/aliases", json={"anonymous_id": "anon-victim"},
                                   headers=dev.user("mallory"))
    assert for_someone_else.status_code == 403 and for_someone_else.json()["error"] == "wrong_user"
    anonymous = client.post("/v1/users/mallory/aliases", json={"anonymous_id": "anon-victim"},
                            headers=dev.anonymous())
    assert anonymous.status_code == 401
    # Nothing moved: the victim's profile is theirs, mallory's hers.
    assert vector(client, dev, "anon-victim").json()["events"] == 2
    assert vector(client, dev, "mallory").json()["events"] == 1


def test_links_are_refused_with_a_reason(edge):
    client, _, dev = edge
    visit(client, dev, "anon-a", SKINCARE)
    visit(client, dev, "anon-b", BOOKS)
    visit(client, dev, "anon-c", BOOKS)
    visit(client, dev, "carol", BOOKS)
    visit(client, dev, "dave", BOOKS)
    assert as_user(client, dev, "PUT", "/v1/users/erin/consent", "erin",
                   {"purposes": {"sentiment": True}, "policy_version": "v1"}).status_code == 200

    r = link(client, dev, "erin", "anon-a")
    assert r.status_code == 409 and r.json()["error"] == "consent_required" and "personalization" in r.json()["message"]
    assert link(client, dev, "carol", "anon-a").status_code == 200
    r = link(client, dev, "dave", "anon-a")
    assert r.status_code == 409 and r.json()["error"] == "already_linked"
    r = link(client, dev, "anon-a", "anon-b")
    assert r.status_code == 409 and r.json()["error"] == "user_is_alias"
    r = link(client, dev, "dave", "carol")
    assert r.status_code == 409 and r.json()["error"] == "not_anonymous"
    r = link(client, dev, "carol", "carol")
    assert r.status_code == 400 and r.json()["field"] == "anonymous_id"
    assert link(client, dev, "carol", "anon-b").status_code == 200
    r = link(client, dev, "carol", "anon-c")  # EDGE_MAX_ALIASES_PER_USER=2
    assert r.status_code == 413 and "EDGE_MAX_ALIASES_PER_USER" in r.json()["message"]
    r = as_user(client, dev, "POST", "/v1/users/carol/aliases", "carol", {"anonymous_id": "a\x00b",
                                                                           "anonymous_token": "x"})
    assert r.status_code == 400 and r.json()["field"] == "anonymous_id"
    r = as_user(client, dev, "POST", "/v1/users/carol/aliases", "carol", {"anonymous": "anon-c"})
    assert r.status_code == 400


def test_deleting_the_user_erases_every_alias_and_late_events_stay_out(edge):
    client, node, dev = edge
    visit(client, dev, "anon-x", SKINCARE)
    visit(client, dev, "frank", BOOKS)
    assert link(client, dev, "frank", "anon-x").status_code == 200
    anonymous = node.privacy.pseudonymize(dev_user("anon-x"))

    r = as_user(client, dev, "DELETE", "/v1/users/frank", "frank")
    assert r.status_code == 200 and "aliases" in r.json()["erased"]
    assert vector(client, dev, "frank").status_code == 404
    assert vector(client, dev, "anon-x").status_code == 404
    assert node.store.alias(anonymous) is None and node.store.profile(anonymous) is None
    assert node.store.suppression(anonymous) is not None
    window = node.cohorts.window_of(node.now())
    assert node.cohorts.cells(window, "dev")["all"].users == 0
    # The anonymous id starts afresh only with a new grant, and an event of its stamped
    # before the deletion stays out even then.
    before = dt.datetime.fromtimestamp(node.now() - 60, dt.UTC).isoformat()
    visit(client, dev, "anon-x", BOOKS)
    late = as_user(client, dev, "POST", "/v1/users/anon-x/events", "anon-x",
                   {"events": [{**BOOKS[0], "timestamp": before}]})
    assert late.status_code == 200 and late.json()["accepted"] == 0
    assert late.json()["dropped_reasons"] == {"user_deleted": 1}
    assert vector(client, dev, "anon-x").json()["events"] == 1
    assert vector(client, dev, "frank").status_code == 404


def test_withdrawing_personalization_cascades_to_the_alias(edge):
    client, node, dev = edge
    visit(client, dev, "anon-y", SKINCARE)
    visit(client, dev, "gina", BOOKS)
    assert link(client, dev, "gina", "anon-y").status_code == 200
    r = as_user(client, dev, "PUT", "/v1/users/gina/consent", "gina",
                {"purposes": {"personalization": False}, "policy_version": "v2"})
    assert r.status_code == 200 and r.json()["withdrawn"] == ["personalization"]
    assert vector(client, dev, "gina").status_code == 404
    anonymous = node.privacy.pseudonymize(dev_user("anon-y"))
    assert not node.store.consent(anonymous).allows("personalization")
    # The anonymous id cannot bring the profile back: its events follow gina's consent.
    visit_events = as_user(client, dev, "POST", "/v1/users/anon-y/events", "anon-y", {"events": BOOKS})
    assert visit_events.json()["accepted"] == 1  # kept for cohorts (still consented), not for a profile
    assert vector(client, dev, "anon-y").status_code == 404
