"""Trust end to end: keys and tokens across two edges, revocation reaching every edge, node
enrollment without TLS, and cohort windows that survive a stream dropped before its receipt."""

import subprocess
import time

from tests.credentials import DevApp
from tests.e2e.cluster import CLI, cp_env, edge_env, eventually, operator
from tests.e2e.http import call
from tests.e2e.proxy import FaultyProxy

ALL = {"sentiment": True, "personalization": True, "cohort_analytics": True}
EVENT = {"type": "purchase", "item_id": "i1", "category": "Beauty/Skincare"}


def test_a_users_token_works_across_two_edges_and_a_revoked_app_stops_everywhere(spawn, bundle_dir, tmp_path):
    _, cp = spawn("control-plane", "serve", env=cp_env())
    app = DevApp(next(tmp_path.glob("cp-*/dev-app.json")))
    edges = [spawn("edge-node", "serve", "--model-dir", str(bundle_dir), env=edge_env(cp, n, tmp_path))[1]
             for n in ("edge-a", "edge-b")]
    a, b = edges
    # Consent given with the app's consent platform rides in the token: it holds at both edges.
    token = app.user("carol", consent=ALL)
    assert call(a, "POST", "/v1/users/carol/events", {"events": [EVENT]}, headers=token)[1]["accepted"] == 1
    status, body = call(b, "POST", "/v1/users/carol/events", {"events": [EVENT]}, headers=token)
    assert status == 200 and body["accepted"] == 1
    assert call(b, "GET", "/v1/users/carol/vector", headers=token)[0] == 200
    for edge in edges:  # an outsider, another user and a forged token get nothing at either edge
        assert call(edge, "GET", "/v1/users/carol/vector", headers={})[0] == 401
        assert call(edge, "GET", "/v1/users/carol/vector", headers=app.user("mallory"))[0] == 403
        assert call(edge, "DELETE", "/v1/users/carol", headers=app.anonymous())[0] == 401
    # The operator revokes the app: every connected edge refuses its keys within seconds.
    started = time.monotonic()
    operator(cp, "apps", "revoke", "dev")
    for edge in edges:
        eventually(lambda edge=edge: call(edge, "GET", "/v1/personalize", headers=app.anonymous())[0] == 401,
                   timeout=15, what=f"revocation at {edge}")
    elapsed = time.monotonic() - started
    assert call(a, "GET", "/v1/users/carol/vector", headers=token)[1]["error"] == "unknown_client_key"
    print(f"app revocation reached both edges in {elapsed:.2f} s")


def test_without_tls_an_edge_needs_an_enrollment_and_windows_survive_a_dropped_stream(spawn, bundle_dir, tmp_path):
    _, cp = spawn("control-plane", "serve", env={"CP_PSEUDONYM_KEY": "k" * 32, "CP_ADMIN_TOKENS": "ops:e2e-token-123",
                                                 "CP_REQUIRE_NODE_CREDENTIALS": "true", "CP_COHORT_MIN_SIZE": "1",
                                                 "CP_HEARTBEAT_INTERVAL_S": "0.5", "CP_COHORT_WINDOW_MINUTES": "0.05"})
    ops = [CLI, "--target", cp, "--token", "e2e-token-123", "--json"]

    def cli(*args):
        out = subprocess.run([*ops, *args], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        import json
        return json.loads(out.stdout)

    base_env = {"EDGE_NODE_ID": "edge-p", "EDGE_PSEUDONYM_KEY": "k" * 32, "EDGE_SYNC_BACKOFF_MAX_S": "1",
                "EDGE_COHORT_WINDOW_MINUTES": "0.05", "EDGE_COHORT_MIN_SIZE": "1"}
    # No credential: the stream is refused, the edge keeps serving standalone decisions.
    _, unenrolled = spawn("edge-node", "serve", "--model-dir", str(bundle_dir),
                          env={**base_env, "EDGE_CONTROL_PLANE": cp, "EDGE_NODE_ID": "edge-x"}, syncs=False)
    time.sleep(2)
    assert call(unenrolled, "GET", "/readyz")[1]["sync"] == "disconnected"
    assert cli("nodes")["nodes"] == []  # it registered nothing
    token = cli("nodes", "--enroll", "edge-p")["enrollment_token"]
    proxy = FaultyProxy(cp)
    try:
        _, edge = spawn("edge-node", "serve", "--model-dir", str(bundle_dir),
                        env={**base_env, "EDGE_CONTROL_PLANE": proxy.address, "EDGE_ENROLLMENT_TOKEN": token})
        eventually(lambda: call(edge, "GET", "/readyz")[1]["sync"] == "connected", what="enrolled edge connected")
        assert [(n["node_id"], n["credential"]) for n in cli("nodes")["nodes"]] == [("edge-p", "secret")]
        # The network now swallows everything: heartbeats carrying closed windows never arrive.
        proxy.blackhole = True
        for user in ("u1", "u2", "u3"):
            assert call(edge, "PUT", f"/v1/users/{user}/consent", {"purposes": ALL, "policy_version": "v1"})[0] == 200
            assert call(edge, "POST", f"/v1/users/{user}/events", {"events": [EVENT], "context": {"region": "eu"}}
                        )[1]["accepted"] == 1
        time.sleep(8)  # two 3-second windows close; their heartbeats go into the void
        assert cli("cohorts").get("cohorts", []) == []
        proxy.cut()  # the stream drops; the edge reconnects and sends what was never receipted

        def merged():
            cells = [c for c in cli("cohorts").get("cohorts", []) if c["cohort"].startswith("eu/")]
            return cells if cells else None

        eventually(lambda: sum(c["users"] for c in merged() or []) == 3, timeout=30,
                   what="every window resent after the drop")
        time.sleep(3)  # more heartbeats: each resend replaced, nothing counted twice
        assert sum(c["users"] for c in merged()) == 3
    finally:
        proxy.close()
