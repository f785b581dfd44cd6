"""Learned segments end to end: two real edges and a real control plane. Users shop on both
edges; the edges' seed clusters seed the centroids, later windows move them, every edge
assigns its users, the operator lists the segments with labels and sizes and targets a rule
and an experiment at one; upstream travel only sums (the wire audit)."""

import json
import subprocess

import pytest

from tests.e2e.cluster import CLI, cp_env, edge_env, eventually, operator, operator_args
from tests.e2e.http import call

pytestmark = pytest.mark.e2e

ALL = {"sentiment": True, "personalization": True, "cohort_analytics": True}
KINDS = {"reader": ["Books/Fiction", "Travel"], "glow": ["Beauty/Skincare", "Beauty/Makeup"]}


def shop(edge: str, user: str, categories: list[str]) -> None:
    status, report = call(edge, "POST", f"/v1/users/{user}/events", {"events": [
        {"type": "purchase", "item_id": f"{user}-{c}", "category": c} for c in categories]})
    assert status == 200 and report["accepted"] == len(categories), report


def segment(edge: str, user: str) -> dict | None:
    return call(edge, "GET", f"/v1/personalize?user_id={user}")[1]["segment"]


def test_segments_are_learned_across_edges_and_targeted(spawn, bundle_dir, tmp_path):
    _, cp = spawn("control-plane", "serve", env=cp_env(CP_SEGMENTS="2", CP_COHORT_MIN_SIZE="3",
                                                         CP_SEGMENT_ROUND_DELAY_S="1", CP_COHORT_WINDOW_MINUTES="0.05"))
    edges = [spawn("edge-node", "serve", "--model-dir", str(bundle_dir), env=edge_env(
        cp, node_id, tmp_path, EDGE_COHORT_WINDOW_MINUTES="0.05", EDGE_COHORT_MIN_SIZE="3"))[1]
        for node_id in ("edge-s1", "edge-s2")]
    for edge in edges:
        eventually(lambda edge=edge: call(edge, "GET", "/readyz")[1]["sync"] == "connected", what="connected")
    early = subprocess.run([CLI, *operator_args(cp), "segments"], capture_output=True, text=True, check=True).stdout
    assert "no segments yet (k=2)" in early, early  # and why: the edges' seed clusters come with closed windows

    users = [(edges[i % 2], f"{kind}-{i}", kind) for kind in KINDS for i in range(8)]  # four of each kind per edge
    for edge, user, _ in users:
        assert call(edge, "PUT", f"/v1/users/{user}/consent", {"purposes": ALL, "policy_version": "v1"})[0] == 200

    def shopping_until_seeded():
        for edge, user, kind in users:
            shop(edge, user, KINDS[kind])
        return operator(cp, "segments").get("segments")

    seeded = eventually(shopping_until_seeded, timeout=60, what="the edges' seed clusters to seed the segments")
    labels = {g["id"]: g["label"] for g in seeded}
    assert sorted(labels.values()) == ["beauty/makeup + beauty/skincare", "books/fiction + travel"] or \
        sorted(set(labels.values())) == sorted(labels.values()), labels
    by_kind = {}
    for edge, user, kind in users:  # every edge assigns its own users, the same way for the same interests
        found = eventually(lambda edge=edge, user=user: segment(edge, user), what="the segments to reach the edge")
        by_kind.setdefault(kind, set()).add(found["id"])
    assert all(len(ids) == 1 for ids in by_kind.values()) and by_kind["reader"] != by_kind["glow"], by_kind
    (reader_segment,), (glow_segment,) = by_kind["reader"], by_kind["glow"]
    assert "books/fiction" in labels[reader_segment] and "beauty" in labels[glow_segment]

    # Later windows are rounds: the segments move with the members' sums and count them.
    version = int(operator(cp, "segments")["version"])

    def shopping_until_a_round():
        for edge, user, kind in users:
            shop(edge, user, KINDS[kind][:1])
        now = operator(cp, "segments")
        return int(now["version"]) > version and any(int(g.get("last_users", 0)) for g in now["segments"]) and now

    moved = eventually(shopping_until_a_round, timeout=60, what="a mini-batch round")
    sizes = {g["id"]: int(g.get("last_users", 0)) for g in moved["segments"]}
    assert sum(sizes.values()) <= len(users) and max(sizes.values()) >= 3, sizes
    table = subprocess.run([CLI, *operator_args(cp), "segments"], capture_output=True, text=True, check=True).stdout
    assert reader_segment in table and "books/fiction" in table and "last round" in table, table

    # Rules and experiments target one segment.
    operator(cp, "rules", "add", "readers-busy", "--cohort", "*/*/*", "--signal", "event_volume", "--threshold", "0",
             "--clear", "0", "--min-size", "1", "--action", "reading_club", "--segment", reader_segment)
    operator(cp, "experiments", "add", "glow-offer", "--arm", "a=50", "--arm", "hold=50:holdout",
             "--segment", glow_segment)
    edge = edges[0]
    reader, glow = "reader-0", "glow-0"
    decision = eventually(lambda: (d := call(edge, "GET", f"/v1/personalize?user_id={reader}")[1])["actions"] and d,
                          what="the segment rule to reach the edge and fire")
    assert [a["action"] for a in decision["actions"]] == ["reading_club"] and decision["experiments"] == []
    glow_decision = eventually(lambda: (d := call(edge, "GET", f"/v1/personalize?user_id={glow}")[1])["experiments"]
                               and d, what="the segment experiment to reach the edge")
    assert glow_decision["actions"] == [] and glow_decision["experiments"][0]["experiment"] == "glow-offer"
    status, body = call(edge, "POST", "/v1/experiments/events", {"experiment": "glow-offer", "kind": "exposure",
                                                                 "user_id": reader})
    assert status == 409 and body["error"] == "not_in_segment"
    bad = subprocess.run([CLI, *operator_args(cp), "rules", "add", "x", "--cohort", "*/*/*", "--signal",
                          "event_volume", "--threshold", "1", "--action", "y", "--segment", "books"],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "not a segment id" in bad.stderr

    # Upstream: segment sums only. No user id, no category a single user sent alone, no per-user vector.
    sent = [json.loads(line) for edge_id in ("edge-s1", "edge-s2")
            for line in (tmp_path / f"upstream-{edge_id}.jsonl").read_text().splitlines()]
    sums = [s for m in sent for s in m.get("heartbeat", {}).get("segments", [])]
    assert sums and all(int(s["users"]) >= 3 for s in sums)
    assert any(s.get("seed") for s in sums) and any(not s.get("seed") for s in sums)
    wire = json.dumps(sent)
    assert not any(user in wire for _, user, _ in users)
