"""Learned segments through the real app and store: responses name the user's segment, rules
and experiments target segments, and consent decides who counts in the sums that leave."""

import pytest
from litestar.testing import TestClient

from edge_node.config import load_settings
from edge_node.http.app import create_app
from edge_node.personalization import profiles
from edge_node.personalization.experiments import Arm, Experiment
from edge_node.records import SegmentMember
from sentiedge_core.rules import Rule
from sentiedge_core.segments import Segment, SegmentSet
from tests.credentials import dev_user, edge_app

ALL = {"sentiment": True, "personalization": True, "cohort_analytics": True}
DIM = 32


def segments(version: int = 2) -> SegmentSet:
    return SegmentSet(version=version, k=2, dimension=DIM, segments=[
        Segment(id="s1", label="books + travel", centroid=profiles.category_vector("books", DIM).tolist()),
        Segment(id="s2", label="beauty/skincare", centroid=profiles.category_vector("beauty/skincare", DIM).tolist())])


@pytest.fixture
def edge(model, tmp_path):
    settings = load_settings({"EDGE_DATA_DIR": str(tmp_path / "edge"), "EDGE_COHORT_MIN_SIZE": "1",
                              "EDGE_RATE_LIMIT_PER_ADDRESS": "0"})
    app = create_app(settings, model=model)
    with TestClient(app) as client:
        client.headers.update(edge_app(settings.data_path).server())
        node = app.state.node
        node.fleet.apply_segments(segments())
        yield client, node


def shop(client, user, category, purposes=ALL, times=3):
    assert client.put(f"/v1/users/{user}/consent", json={"purposes": purposes, "policy_version": "v1"}
                      ).status_code == 200
    r = client.post(f"/v1/users/{user}/events", json={"events": [
        {"type": "purchase", "item_id": f"i{n}", "category": category} for n in range(times)]})
    assert r.status_code == 200 and r.json()["accepted"] == times, r.text


def member(node, user):
    subject = node.privacy.subject_of(dev_user(user))
    return node.store.get(f"segm|{node.segments.window_of(node.now())}|{subject}", SegmentMember)


def test_responses_name_the_users_segment(edge):
    client, node = edge
    shop(client, "reader", "Books")
    shop(client, "glow", "Beauty/Skincare")
    assert client.get("/v1/personalize", params={"user_id": "reader"}).json()["segment"] == \
        {"id": "s1", "label": "books + travel"}
    ranked = client.post("/v1/rank", json={"user_id": "glow", "candidates": [
        {"id": "a", "category": "Beauty/Skincare", "popularity": 1}]}).json()
    assert ranked["segment"] == {"id": "s2", "label": "beauty/skincare"}
    # No profile of their own: no segment (a cohort's prior is not a person).
    assert client.get("/v1/personalize", params={"region": "eu"}).json()["segment"] is None
    assert client.get("/v1/personalize", params={"user_id": "stranger"}).json()["segment"] is None
    # A new set is used at once (decisions cached before it are not served).
    node.fleet.apply_segments(SegmentSet(version=3, k=2, dimension=DIM, segments=[
        Segment(id="s1", label="beauty", centroid=profiles.category_vector("beauty/skincare", DIM).tolist()),
        Segment(id="s2", label="books", centroid=profiles.category_vector("books", DIM).tolist())]))
    assert client.get("/v1/personalize", params={"user_id": "reader"}).json()["segment"] == \
        {"id": "s2", "label": "books"}


def test_only_users_with_both_purposes_count_in_the_sums_and_leaving_takes_them_out(edge):
    client, node = edge
    shop(client, "private", "Books", purposes={"personalization": True})
    assert member(node, "private") is None, "no cohort_analytics: never in what leaves the node"
    assert client.get("/v1/personalize", params={"user_id": "private"}).json()["segment"]["id"] == "s1"

    shop(client, "open", "Books")
    assert member(node, "open").index == 0
    r = client.put("/v1/users/open/consent", json={"purposes": {**ALL, "cohort_analytics": False},
                                                   "policy_version": "v1"})
    assert r.status_code == 200
    assert member(node, "open") is None

    shop(client, "leaver", "Books")
    r = client.put("/v1/users/leaver/consent", json={"purposes": {**ALL, "personalization": False},
                                                     "policy_version": "v1"})
    assert r.status_code == 200 and member(node, "leaver") is None

    shop(client, "gone", "Books")
    r = client.delete("/v1/users/gone")
    assert r.status_code == 200 and "segment_membership" in r.json()["erased"], r.text
    assert member(node, "gone") is None


def test_rules_and_experiments_can_target_a_segment(edge):
    client, node = edge
    shop(client, "reader", "Books")
    shop(client, "glow", "Beauty/Skincare")
    node.fleet.apply_rules([Rule(name="busy-readers", cohort="*/*/*", signal="event_volume", op=">", threshold=0,
                                 clear=0, window_minutes=60, min_size=1, action="reading_club", segment="s1")], 1)
    node.fleet.apply_experiments([
        Experiment(name="glow-offer", salt="x", segment="s2", arms=[Arm(name="a", weight=1), Arm(name="b", weight=1)]),
        Experiment(name="everyone", salt="y", arms=[Arm(name="a", weight=1), Arm(name="b", weight=1)])], 1)

    reader = client.get("/v1/personalize", params={"user_id": "reader"}).json()
    glow = client.get("/v1/personalize", params={"user_id": "glow"}).json()
    assert [a["action"] for a in reader["actions"]] == ["reading_club"] and glow["actions"] == []
    assert [e["experiment"] for e in reader["experiments"]] == ["everyone"]
    assert [e["experiment"] for e in glow["experiments"]] == ["glow-offer", "everyone"]

    event = {"experiment": "glow-offer", "kind": "exposure"}
    assert client.post("/v1/experiments/events", json={**event, "user_id": "glow"}).status_code == 200
    refused = client.post("/v1/experiments/events", json={**event, "user_id": "reader"})
    assert refused.status_code == 409 and refused.json()["error"] == "not_in_segment", refused.text

    # A holdout that targets a segment holds out only that segment's users.
    quiet = Experiment(name="quiet", salt="z", segment="s2",
                       arms=[Arm(name="on", weight=0), Arm(name="off", weight=1, holdout=True)])
    node.fleet.apply_experiments([quiet], 2)
    held = client.get("/v1/personalize", params={"user_id": "glow"}).json()
    assert held["source"] == "global" and "holdout arm of experiment quiet" in held["reason"]
    assert client.get("/v1/personalize", params={"user_id": "reader"}).json()["source"] == "user"
