"""A control plane and three edges on loopback: privacy requests reach every edge, with
receipts as proof; an edge that was down catches up; nothing private goes upstream."""

import time

import pytest

from tests.e2e.cluster import cp_env, edge_env, eventually, has_vector, metric, operator, profile
from tests.e2e.http import call

pytestmark = pytest.mark.e2e

def test_privacy_reaches_every_edge_with_receipts_and_catches_up(spawn, bundle_dir, tmp_path):
    from tests.e2e.conftest import free_port

    metrics_port = free_port()
    _, cp = spawn("control-plane", "serve", env=cp_env(CP_METRICS_PORT=str(metrics_port)))
    edges = {}
    for node_id in ("edge-a", "edge-b", "edge-c"):
        edges[node_id] = spawn("edge-node", "serve", "--model-dir", str(bundle_dir),
                               env=edge_env(cp, node_id, tmp_path))
    urls = {n: base for n, (_, base) in edges.items()}
    eventually(lambda: sum(n["state"] == "connected" for n in operator(cp, "nodes")["nodes"]) == 3, what="3 nodes")

    secret_texts = ["Zoe's private note: the blue kettle leaks", "Yan wrote: my order never came"]
    for edge in urls.values():
        profile(edge, "zoe@example.com", secret_texts[0])
        profile(edge, "yan@example.com", secret_texts[1])
    assert all(has_vector(e, "zoe@example.com") for e in urls.values())

    # One edge is down when the operator deletes the user.
    edges["edge-c"][0].terminate()
    request = operator(cp, "privacy", "delete", "zoe@example.com")
    rid = request["request_id"]
    status = eventually(lambda: (s := operator(cp, "privacy", "status", rid))["state"] == "in_progress"
                        and len(s["receipts"]) == 2 and s, what="receipts from the running edges")
    assert status["missing"] == ["edge-c"]
    assert {r["node_id"] for r in status["receipts"]} == {"edge-a", "edge-b"}
    assert not has_vector(urls["edge-a"], "zoe@example.com") and not has_vector(urls["edge-b"], "zoe@example.com")

    edges["edge-c"][0].restart()
    eventually(lambda: operator(cp, "privacy", "status", rid)["state"] == "completed", what="completion")
    assert not has_vector(urls["edge-c"], "zoe@example.com")
    assert has_vector(urls["edge-c"], "yan@example.com")

    # A deletion made at one edge is filed upstream and reaches the others.
    status, body = call(urls["edge-a"], "DELETE", "/v1/users/yan@example.com")
    assert status == 200
    eventually(lambda: not has_vector(urls["edge-b"], "yan@example.com")
               and not has_vector(urls["edge-c"], "yan@example.com"), what="edge-filed deletion to spread")
    filed = eventually(lambda: (s := operator(cp, "privacy", "status", body["request_id"]))["state"] == "completed"
                       and s, what="edge-filed request completed")
    assert filed["origin_node"] == "edge-a"

    # Withdrawal made by an operator: the profile goes, consent shows the withdrawal.
    profile(urls["edge-b"], "kim", "fine")
    revoke = operator(cp, "privacy", "revoke", "kim", "--purpose", "personalization")
    eventually(lambda: operator(cp, "privacy", "status", revoke["request_id"])["state"] == "completed",
               what="revocation receipts")
    assert not has_vector(urls["edge-b"], "kim")
    consent = call(urls["edge-b"], "GET", "/v1/users/kim/consent")[1]
    assert not consent["purposes"]["personalization"]["granted"] and consent["purposes"]["sentiment"]["granted"]
    # An operator's request carries no policy version: the user's own stays on the withdrawn purpose.
    assert consent["purposes"]["personalization"]["policy_version"] == "v1"

    # A withdrawal made at one edge reaches the others with the policy version the user chose there.
    for edge in (urls["edge-a"], urls["edge-c"]):
        profile(edge, "lee", "fine")
    status, change = call(urls["edge-a"], "PUT", "/v1/users/lee/consent",
                          {"purposes": {"personalization": False}, "policy_version": "2026-12"})
    assert status == 200
    withdrawn = eventually(lambda: not (c := call(urls["edge-c"], "GET", "/v1/users/lee/consent")[1])["purposes"][
        "personalization"]["granted"] and c, what="the edge-filed withdrawal at edge-c")
    assert withdrawn["purposes"]["personalization"]["policy_version"] == "2026-12"
    assert withdrawn["purposes"]["sentiment"] == {**withdrawn["purposes"]["sentiment"], "granted": True,
                                                  "policy_version": "v1"}
    assert not has_vector(urls["edge-c"], "lee")
    eventually(lambda: operator(cp, "privacy", "status", change["request_id"])["state"] == "completed",
               what="the edge-filed withdrawal completed")

    nodes = {n["node_id"]: n for n in operator(cp, "nodes")["nodes"]}
    assert all(int(n["cursor_lag"]) == 0 for n in nodes.values())

    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics") as r:
        metrics = r.read().decode()
    assert 'sentiedge_cp_node_state{node="edge-a",state="connected"} 1.0' in metrics
    assert 'sentiedge_cp_node_cursor_lag{node="edge-c"} 0.0' in metrics
    assert "sentiedge_cp_privacy_completion_seconds_count 4.0" in metrics
    assert 'sentiedge_cp_node_model_info{name="sentiedge-sentiment",node="edge-b"' in metrics

    # Only aggregates, receipts and health went upstream: no text, no raw user id.
    sent = "".join((tmp_path / f"upstream-{n}.jsonl").read_text() for n in urls)
    assert '"hello"' in sent and '"ack"' in sent and '"heartbeat"' in sent and '"filing"' in sent
    for forbidden in [*secret_texts, "zoe@example.com", "yan@example.com", "kettle", '"kim"']:
        assert forbidden not in sent, forbidden


def test_offline_first_fail_closed_and_a_durable_outbox(spawn, bundle_dir, tmp_path):
    cp_proc, cp = spawn("control-plane", "serve", env=cp_env())
    edge_proc, edge = spawn("edge-node", "serve", "--model-dir", str(bundle_dir), env={
        **edge_env(cp, "edge-x", tmp_path), "EDGE_FAIL_CLOSED_AFTER_S": "3", "EDGE_PRIVACY_BACKLOG_MAX_S": "1"})
    eventually(lambda: call(edge, "GET", "/readyz")[1]["sync"] == "connected", what="edge connected")
    profile(edge, "uma", "Lovely")
    profile(edge, "vic", "Great")
    personalized = lambda user: call(edge, "GET", f"/v1/personalize?user_id={user}")[1]  # noqa: E731
    assert personalized("uma")["source"] == "user"

    synced = eventually(lambda: metric(edge, "sentiedge_sync_last_success_timestamp_seconds"), what="a sync time")
    assert abs(synced - time.time()) < 60 and metric(edge, "sentiedge_privacy_outbox_pending") == 0
    cp_proc.terminate()
    # Still serving, offline: a deletion made now waits in the outbox, and the metrics say so.
    status, body = call(edge, "DELETE", "/v1/users/vic")
    assert status == 200
    assert metric(edge, "sentiedge_privacy_outbox_pending") == 1
    edge_proc.terminate()
    edge_proc.restart()  # restarts with its model and data while the control plane is down
    assert call(edge, "GET", "/readyz")[1]["sync"] == "disconnected"
    assert metric(edge, "sentiedge_privacy_outbox_pending") == 1
    stalled = metric(edge, "sentiedge_sync_last_success_timestamp_seconds")
    assert 0 < stalled <= time.time()
    assert not has_vector(edge, "vic") and has_vector(edge, "uma")
    # Fail closed: after EDGE_FAIL_CLOSED_AFTER_S without a sync, no per-user vectors.
    eventually(lambda: call(edge, "GET", "/readyz")[1]["serving_personal"] is False, what="failing closed")
    closed = personalized("uma")
    assert closed["source"] != "user" and "catching up with the privacy log" in closed["reason"]
    # The deletion has waited past EDGE_PRIVACY_BACKLOG_MAX_S: reported, without failing readiness.
    status, ready = call(edge, "GET", "/readyz")
    assert status == 200 and ready["privacy_backlog"] == "stalled" and ready["privacy_backlog_s"] > 1, ready
    assert metric(edge, "sentiedge_privacy_outbox_oldest_seconds") > 1

    cp_proc.restart()
    eventually(lambda: call(edge, "GET", "/readyz")[1]["serving_personal"] is True, what="caught up again")
    assert personalized("uma")["source"] == "user"
    filed = eventually(lambda: (s := operator(cp, "privacy", "status", body["request_id"]))["state"] == "completed"
                       and s, what="the queued deletion filed and completed")
    assert filed["origin_node"] == "edge-x"
    eventually(lambda: metric(edge, "sentiedge_privacy_outbox_pending") == 0, what="the outbox drained")
    assert call(edge, "GET", "/readyz")[1]["privacy_backlog"] == "ok"
    assert metric(edge, "sentiedge_privacy_outbox_oldest_seconds") == 0
    assert metric(edge, "sentiedge_sync_last_success_timestamp_seconds") > stalled


def test_cohort_aggregates_merge_across_edges_and_come_back_as_priors(spawn, bundle_dir, tmp_path):
    _, cp = spawn("control-plane", "serve", env=cp_env(CP_COHORT_MIN_SIZE="2", CP_COHORT_WINDOW_MINUTES="0.05"))
    urls = []
    for node_id in ("edge-1", "edge-2"):
        urls.append(spawn("edge-node", "serve", "--model-dir", str(bundle_dir), env={
            **edge_env(cp, node_id, tmp_path), "EDGE_COHORT_WINDOW_MINUTES": "0.05", "EDGE_COHORT_MIN_SIZE": "1",
            "EDGE_COHORT_PRIOR_REFRESH_S": "0"})[1])
    context = {"region": "eu", "device": "tv", "daypart": "night"}
    for edge, user in zip(urls, ("p1", "p2"), strict=False):  # one user per edge: too small anywhere alone
        call(edge, "PUT", f"/v1/users/{user}/consent", {"purposes": {"cohort_analytics": True},
                                                        "policy_version": "v1"})
        status, _ = call(edge, "POST", f"/v1/users/{user}/events", {"context": context, "events": [
            {"type": "purchase", "item_id": "g", "category": "Garden"}]})
        assert status == 200
    merged = eventually(lambda: [c for c in operator(cp, "cohorts")["cohorts"] if c["cohort"] == "eu/tv/night"],
                        what="merged cohort")
    assert merged[0]["users"] == 2 and "Garden".lower() in merged[0]["categories"]
    assert not [c for c in operator(cp, "cohorts")["cohorts"] if c["users"] < 2]
    query = "/v1/personalize?region=eu&device=tv&daypart=night"
    cold = eventually(lambda: (d := call(urls[0], "GET", query)[1])["source"] == "cohort"
                      and "(2 user-windows)" in d["reason"] and d, what="merged prior at the edge")
    assert cold["affinities"][0]["category"] == "garden"
