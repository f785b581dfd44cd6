"""Two workers of one node in one test process: two real apps on one data directory, with the
roles ``edge-node serve --workers 2`` gives them (the process side — supervisor, sockets,
restarts, SIGTERM — is tests/e2e/test_workers.py). What one worker writes or is told, the
other answers with."""

import multiprocessing
import time

import pytest
from litestar.testing import TestClient

from edge_node.config import load_settings
from edge_node.errors import StoreError
from edge_node.fleet_state import FleetState
from edge_node.http.app import create_app
from edge_node.node_state import NodeState
from edge_node.personalization.experiments import Arm, Experiment
from edge_node.role import Role
from edge_node.store import EdgeStore, lock_directory
from edge_node.workers import worker_count
from sentiedge_core.cooccurrence import NeighbourTable
from sentiedge_core.rules import Rule
from sentiedge_core.topics import Topic, TopicSet
from tests.credentials import edge_app

ALL = {"sentiment": True, "personalization": True, "cohort_analytics": True}


@pytest.fixture
def workers(model, tmp_path):
    settings = load_settings({"EDGE_DATA_DIR": str(tmp_path / "edge"), "EDGE_COHORT_MIN_SIZE": "1",
                              "EDGE_RATE_LIMIT_PER_ADDRESS": "0"})
    shared = multiprocessing.get_context("spawn").Array("q", 2, lock=False)  # as the supervisor makes it
    leader = create_app(settings, model=model, role=Role(0, 2), shared=shared)
    follower = create_app(settings, model=model, role=Role(1, 2), shared=shared)
    with TestClient(leader) as one, TestClient(follower) as two:
        headers = edge_app(settings.data_path).server()
        one.headers.update(headers)
        two.headers.update(headers)
        yield one, two, leader.state.node, follower.state.node


def test_what_one_worker_writes_the_other_reads_at_once(workers):
    one, two, *_ = workers
    for i in range(5):
        user = f"u{i}"
        assert one.put(f"/v1/users/{user}/consent", json={"purposes": ALL, "policy_version": "v1"}).status_code == 200
        r = two.post(f"/v1/users/{user}/events", json={"events": [{"type": "purchase", "item_id": "b",
                                                                   "category": "Books"}]})
        assert r.status_code == 200 and r.json()["accepted"] == 1
        assert one.get("/v1/personalize", params={"user_id": user}).json()["source"] == "user"
        assert two.get("/v1/personalize", params={"user_id": user}).json()["source"] == "user"
        # Withdrawn through one: the other's reused decision is not served (no per-process cache).
        assert two.put(f"/v1/users/{user}/consent", json={"purposes": {"personalization": False},
                                                          "policy_version": "v1"}).status_code == 200
        assert one.get("/v1/personalize", params={"user_id": user}).json()["source"] != "user"
        assert one.delete(f"/v1/users/{user}").status_code == 200
        assert two.get(f"/v1/users/{user}/vector").status_code == 404
    assert one.get("/readyz").headers["x-sentiedge-worker"] == "0"
    assert two.get("/readyz").json()["worker"] == 1


def test_what_the_leader_is_told_the_follower_applies_before_its_next_answer(workers):
    one, two, leader, follower = workers
    leader.fleet.apply_experiments([Experiment(name="exp", salt="s", arms=[Arm(name="a", weight=1),
                                                                     Arm(name="h", weight=1, holdout=True)])], 3)
    leader.fleet.apply_rules([Rule(name="busy", cohort="*/*/*", signal="event_volume", op=">", threshold=0, clear=0,
                             window_minutes=60, min_size=1, action="banner")], 4)
    # No poll needed: the shared number moved, so the follower catches up before answering.
    answer = two.get("/v1/personalize", params={"region": "eu"}).json()
    assert [e["experiment"] for e in answer["experiments"]] == ["exp"]
    assert follower.triggers.version == 4 and [r.name for r in follower.triggers.rules] == ["busy"]


def test_topic_sets_the_leader_is_streamed_reach_the_followers_aspects_and_a_dropped_tenant_loses_them(workers):
    one, two, leader, follower = workers
    tenant = next(iter(leader.access.apps.apps)).tenant_id
    packaging = Topic(name="packaging", examples=("the box arrived crushed",), keywords=("packaging", "box"))
    leader.fleet.apply_topics([TopicSet(tenant=tenant, version=2, topics=(packaging,))], 2)
    text = {"texts": ["Nice cream, but the box arrived crushed."]}
    for client in (one, two):  # the follower catches up before it answers
        aspects = client.post("/v1/sentiment", json=text).json()["results"][0]["aspects"]
        assert [a["topic"] for a in aspects] == ["packaging"]
    leader.fleet.apply_topics([], 3)  # the tenant's topics were all removed on the control plane
    for client in (one, two):
        assert "aspects" not in client.post("/v1/sentiment", json=text).json()["results"][0]
    assert follower.topic_book.get(tenant) is None


def test_every_tenants_neighbour_table_the_leader_is_streamed_reaches_the_follower(workers):
    """Tables arrive one tenant at a time; the follower must hold each, not only the last one."""
    one, two, leader, follower = workers
    leader.fleet.apply_neighbours(NeighbourTable(tenant="shop", version=3, items={"serum-1": [("serum-2", 0.8)]}))
    leader.fleet.apply_neighbours(NeighbourTable(tenant="clinic", version=5, items={"a": [("b", 0.5)]}))
    two.get("/readyz")  # the follower catches up before it answers
    assert follower.neighbours.version("shop") == 3 and follower.neighbours.version("clinic") == 5
    assert follower.neighbours.of("shop") == {"serum-1": [("serum-2", 0.8)]}


def test_a_trigger_transition_is_reported_once_by_the_node(workers):
    one, two, leader, follower = workers
    rule = Rule(name="busy", cohort="*/*/*", signal="event_volume", op=">", threshold=0, clear=0,
                window_minutes=60, min_size=1, action="banner")
    leader.fleet.apply_rules([rule], 1)
    assert one.put("/v1/users/a/consent", json={"purposes": ALL, "policy_version": "v1"}).status_code == 200
    assert one.post("/v1/users/a/events", json={"events": [{"type": "view", "item_id": "x", "category": "Books"}],
                                                "context": {"region": "eu"}}).status_code == 200
    ctx = {"region": "eu"}
    for client in (one, two):  # both workers see the same shared cells and turn the action on
        assert [a["action"] for a in client.get("/v1/personalize", params=ctx).json()["actions"]] == ["banner"]
    leader.fleet.pending_triggers()
    follower.fleet.pending_triggers()  # each worker queues its transitions in the store for the leader's heartbeat
    queued = leader.state.pending_triggers
    assert [(t["rule"], t["active"]) for t in queued] == [("busy", True)], queued


def test_drift_counts_are_the_whole_nodes(workers):
    one, two, leader, follower = workers
    texts = ["I love it", "Terrible, broke at once", "Great value", "Awful service"]
    assert two.post("/v1/sentiment", json={"texts": texts}).status_code == 200
    assert one.post("/v1/sentiment", json={"texts": texts[:2]}).status_code == 200
    deadline = time.monotonic() + 10
    while sum(leader.health.drift_counts(time.time())[0]) < 6 and time.monotonic() < deadline:
        time.sleep(0.1)  # each worker shares its counts every FOLLOW_S
    assert sum(leader.health.drift_counts(time.time())[0]) == 6
    assert sum(leader.health.model_outputs()["label_counts"]) == 6


def test_exposure_figures_are_the_whole_nodes(workers):
    one, two, leader, follower = workers
    candidates = [{"id": f"i{n}", "category": f"c{n}", "popularity": n} for n in range(4)]
    assert one.post("/v1/rank", json={"candidates": candidates[:2], "limit": 1, "exploration_slots": 0}).status_code \
        == 200
    assert two.post("/v1/rank", json={"candidates": candidates[2:], "limit": 1, "exploration_slots": 0}).status_code \
        == 200
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        figures = leader.health.exposure_figures(time.time()).get("dev")
        if figures is not None and figures.catalogue == 4:
            break
        time.sleep(0.2)  # each worker shares its counts every few seconds
    assert (figures.catalogue, figures.exposed, figures.share) == (4, 2, 0.5)


def test_one_node_per_data_directory_its_workers_share_it(tmp_path):
    assert worker_count(3) == 3 and worker_count(0) >= 1
    fd = lock_directory(tmp_path / "d")
    with pytest.raises(StoreError, match="in use by another process"):
        EdgeStore(tmp_path / "d", retention_s=60)
    shared = EdgeStore(tmp_path / "d", retention_s=60, lock=False, hot_records=0)  # a worker: the supervisor locks
    shared.set_value("x", 1)
    other = EdgeStore(tmp_path / "d", retention_s=60, lock=False, hot_records=0)
    assert other.value("x") == 1
    fleet, mirror = FleetState(NodeState(shared)), FleetState(NodeState(other))
    assert mirror.changed() == []
    assert fleet.publish("rules", {"version": 1, "rules": []}) == 1
    assert mirror.changed() == [("rules", {"version": 1, "rules": []})] and mirror.changed() == []
    mirror.forget("rules")  # applying it failed in that worker: it comes back on the next poll
    assert mirror.changed() == [("rules", {"version": 1, "rules": []})]
    shared.close()
    other.close()
    import os

    os.close(fd)
