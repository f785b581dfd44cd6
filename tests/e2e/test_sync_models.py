"""Model rollout through the control plane to three edges, and control-plane crashes."""

import json
import subprocess

import pytest

from tests.e2e.cluster import CLI, cp_env, edge_env, eventually, metric, operator, operator_args, serving, variant
from tests.e2e.http import call

pytestmark = pytest.mark.e2e

# Sticky hash order for "sentiedge-sentiment": pop-ams 26, pop-fra 52, pop-lhr 95, so a share of
# one node (ceil(33% of 3) = 1) picks pop-ams.
EDGES = ("pop-ams", "pop-fra", "pop-lhr")


def test_push_rollout_percent_park_rollback_and_control_plane_crashes(spawn, bundle_dir, tmp_path):
    cp_proc, cp = spawn("control-plane", "serve", env=cp_env())
    urls, procs = {}, {}
    for node_id in EDGES:
        env = edge_env(cp, node_id, tmp_path)
        if node_id == "pop-lhr":
            env["EDGE_MAX_BUNDLE_BYTES"] = "28500000"  # the padded bundle below does not fit
        procs[node_id], urls[node_id] = spawn("edge-node", "serve", "--model-dir", str(bundle_dir), env=env)
    eventually(lambda: sum(n["state"] == "connected" for n in operator(cp, "nodes")["nodes"]) == 3, what="3 nodes")
    bundled = serving(urls["pop-ams"])

    # Before any rollout, status shows what every node serves (its bundled model).
    before = operator(cp, "models", "status", "sentiedge-sentiment")
    assert {s["node_id"]: s["serving"]["version"] for s in before["node_states"]} == dict.fromkeys(EDGES, bundled)
    table = subprocess.run([CLI, *operator_args(cp), "models", "status", "sentiedge-sentiment"],
                           capture_output=True, text=True, check=True).stdout
    assert "no rollout yet" in table and table.count(bundled) == 3

    # Push → rollout to all: every edge serves it. Rollback right away returns to the bundled model.
    pushed = operator(cp, "models", "push", str(variant(bundle_dir, tmp_path, "2.0.0")))
    assert pushed["model"]["version"] == "2.0.0"
    operator(cp, "models", "rollout", "sentiedge-sentiment", "2.0.0")
    eventually(lambda: all(serving(u) == "2.0.0" for u in urls.values()), what="2.0.0 everywhere")
    back = operator(cp, "models", "rollback", "sentiedge-sentiment")
    assert back["current_bundled"] and back["previous"]["version"] == "2.0.0"
    eventually(lambda: all(serving(u) == bundled for u in urls.values()), what=f"back to the bundled {bundled}")
    procs["pop-fra"].terminate()  # a restart keeps serving the bundled model, not the last assignment
    procs["pop-fra"].restart()
    procs["pop-fra"].wait_healthy()
    assert serving(urls["pop-fra"]) == bundled
    operator(cp, "models", "rollback", "sentiedge-sentiment")  # and forward again
    eventually(lambda: all(serving(u) == "2.0.0" for u in urls.values()), what="2.0.0 everywhere again")
    status, scored = call(urls["pop-fra"], "POST", "/v1/sentiment", {"texts": ["Loved it."]})
    assert scored["results"][0]["version"] == "2.0.0"

    # 33% of three nodes is one: exactly the sticky pick moves, the CLI names it; the others stay.
    operator(cp, "models", "push", str(variant(bundle_dir, tmp_path, "3.0.0", padding=2_000_000)))
    out = subprocess.run([CLI, *operator_args(cp), "models", "rollout", "sentiedge-sentiment", "3.0.0",
                          "--percent", "33"], capture_output=True, text=True, check=True).stdout
    assert "(pop-ams)" in out, out
    eventually(lambda: serving(urls["pop-ams"]) == "3.0.0", what="pop-ams on 3.0.0")
    assert serving(urls["pop-fra"]) == "2.0.0" and serving(urls["pop-lhr"]) == "2.0.0"

    # The start-up log names the bundle it loaded: after a restart, the assigned 3.0.0 from the data dir.
    procs["pop-ams"].terminate()
    procs["pop-ams"].restart()
    procs["pop-ams"].wait_healthy()
    started = [line for line in procs["pop-ams"].tail(200).splitlines() if "serving model" in line][-1]
    assert "3.0.0" in started and str(bundle_dir) not in started, started

    # A node nobody knows is refused, unless the operator says it will join.
    out = subprocess.run([CLI, *operator_args(cp), "models", "rollout", "sentiedge-sentiment", "3.0.0",
                          "--nodes", "pop-xyz"], capture_output=True, text=True)
    assert out.returncode == 1 and "unknown node(s) pop-xyz" in out.stderr and "--allow-unknown" in out.stderr

    # Everyone: pop-lhr cannot take it (bundle over its limit), NACKs, is parked, keeps serving.
    operator(cp, "models", "rollout", "sentiedge-sentiment", "3.0.0")
    eventually(lambda: serving(urls["pop-fra"]) == "3.0.0", what="pop-fra on 3.0.0")
    states = eventually(lambda: (s := {n["node_id"]: n for n in operator(
        cp, "models", "status", "sentiedge-sentiment")["node_states"]})["pop-lhr"]["state"] == "parked" and s,
        what="pop-lhr parked")
    assert "EDGE_MAX_BUNDLE_BYTES" in states["pop-lhr"]["error"]
    assert states["pop-ams"]["state"] == states["pop-fra"]["state"] == "serving"
    assert serving(urls["pop-lhr"]) == "2.0.0"
    assert call(urls["pop-lhr"], "POST", "/v1/sentiment", {"texts": ["Fine."]})[0] == 200

    # Rollback: everyone returns to 2.0.0 (already on disk: no download).
    operator(cp, "models", "rollback", "sentiedge-sentiment")
    eventually(lambda: all(serving(u) == "2.0.0" for u in urls.values()), what="rollback to 2.0.0")

    # A corrupt bundle is refused at push, with the reason.
    corrupt = variant(bundle_dir, tmp_path, "9.9.9")
    (corrupt / "fast.onnx").write_bytes(b"garbage")
    out = subprocess.run([CLI, *operator_args(cp), "models", "push", str(corrupt)], capture_output=True, text=True)
    assert out.returncode == 1 and "INVALID_ARGUMENT" in out.stderr and "fast.onnx" in out.stderr
    assert "9.9.9" not in json.dumps(operator(cp, "models", "list"))

    # kill -9 the control plane mid-rollout, restart it: the edges resume and converge.
    operator(cp, "models", "rollout", "sentiedge-sentiment", "3.0.0", "--nodes", "pop-ams,pop-fra")
    cp_proc.kill()
    cp_proc.restart()
    eventually(lambda: serving(urls["pop-ams"]) == "3.0.0" and serving(urls["pop-fra"]) == "3.0.0",
               what="rollout after a control-plane crash")
    assert serving(urls["pop-lhr"]) == "2.0.0"

    # ... and mid-revocation: the request survives, completes, and is applied exactly once per edge.
    for url in urls.values():
        call(url, "PUT", "/v1/users/ana/consent", {"purposes": {"personalization": True}, "policy_version": "v"})
    before = {n: metric(u, 'sentiedge_privacy_actions_total{kind="consent_withdrawn_remote"}') for n, u in urls.items()}
    revoke = operator(cp, "privacy", "revoke", "ana", "--purpose", "personalization")
    cp_proc.kill()
    cp_proc.restart()
    eventually(lambda: operator(cp, "privacy", "status", revoke["request_id"])["state"] == "completed",
               what="revocation after a control-plane crash")
    for node_id, url in urls.items():
        assert not call(url, "GET", "/v1/users/ana/consent")[1]["purposes"]["personalization"]["granted"]
        after = metric(url, 'sentiedge_privacy_actions_total{kind="consent_withdrawn_remote"}')
        assert after - before[node_id] == 1, node_id
