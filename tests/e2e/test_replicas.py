"""Two control-plane replicas sharing PostgreSQL: a request filed on one reaches edges
connected to the other, and a model pushed to one is served through the other."""

import pytest

from tests.e2e.cluster import cp_env, edge_env, eventually, has_vector, operator, profile, serving, variant
from tests.e2e.http import call

pytestmark = pytest.mark.e2e


def test_replicas_share_the_privacy_log_and_the_registry(spawn, bundle_dir, tmp_path, postgres):
    shared = cp_env(CP_DATABASE_URL=postgres.new_database())
    _, cp1 = spawn("control-plane", "serve", env=shared)
    _, cp2 = spawn("control-plane", "serve", env=shared)
    _, edge_a = spawn("edge-node", "serve", "--model-dir", str(bundle_dir), env=edge_env(cp1, "edge-a", tmp_path))
    _, edge_b = spawn("edge-node", "serve", "--model-dir", str(bundle_dir), env=edge_env(cp2, "edge-b", tmp_path))
    for cp in (cp1, cp2):  # both replicas see both nodes
        eventually(lambda cp=cp: sum(n["state"] == "connected" for n in operator(cp, "nodes")["nodes"]) == 2,
                   what="both nodes connected, seen from each replica")

    for edge in (edge_a, edge_b):
        profile(edge, "wen", "Pretty good")
    request = operator(cp1, "privacy", "delete", "wen")
    done = eventually(lambda: (s := operator(cp2, "privacy", "status", request["request_id"]))["state"] == "completed"
                      and s, what="receipts from edges on both replicas")
    assert {r["node_id"] for r in done["receipts"]} == {"edge-a", "edge-b"}
    assert not has_vector(edge_a, "wen") and not has_vector(edge_b, "wen")

    operator(cp1, "models", "push", str(variant(bundle_dir, tmp_path, "7.0.0")))
    operator(cp2, "models", "rollout", "sentiedge-sentiment", "7.0.0")
    eventually(lambda: serving(edge_a) == "7.0.0" and serving(edge_b) == "7.0.0", what="7.0.0 through both replicas")
    assert call(edge_b, "POST", "/v1/sentiment", {"texts": ["ok"]})[1]["results"][0]["version"] == "7.0.0"


def test_a_replica_wakes_the_others_instead_of_waiting_for_their_heartbeat(spawn, bundle_dir, tmp_path,
                                                                           postgres):
    import time

    # Heartbeats a minute apart: only a notification through PostgreSQL can be this fast.
    shared = cp_env(CP_DATABASE_URL=postgres.new_database(), CP_HEARTBEAT_INTERVAL_S="60",
                    CP_STALE_AFTER_S="180")
    _, cp1 = spawn("control-plane", "serve", env=shared)
    _, cp2 = spawn("control-plane", "serve", env=shared)
    _, edge_b = spawn("edge-node", "serve", "--model-dir", str(bundle_dir), env=edge_env(cp2, "edge-b", tmp_path))
    eventually(lambda: any(n["state"] == "connected" for n in operator(cp2, "nodes")["nodes"]), what="edge-b")
    profile(edge_b, "ola", "Lovely")
    started = time.monotonic()
    request = operator(cp1, "privacy", "delete", "ola")  # filed on the replica edge-b is not connected to
    eventually(lambda: not has_vector(edge_b, "ola"), timeout=20, what="the deletion through the other replica")
    assert time.monotonic() - started < 20
    done = eventually(lambda: (s := operator(cp1, "privacy", "status", request["request_id"]))["state"] == "completed"
                      and s, timeout=20, what="edge-b's receipt, seen from the first replica")
    assert [r["node_id"] for r in done["receipts"]] == ["edge-b"]
