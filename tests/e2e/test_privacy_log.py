"""The privacy log stays small and exact: entries every edge applied are compacted (the proof
stays, a new edge starts after them), and a privacy request retried with its idempotency key
is filed once, also when the control plane was down when the command started."""

import subprocess
import time

import pytest

from tests.e2e.cluster import CLI, cp_env, edge_env, eventually, has_vector, operator, operator_args, profile
from tests.e2e.http import call

pytestmark = pytest.mark.e2e


def test_compaction_keeps_the_proof_and_new_edges_start_after_it(spawn, bundle_dir, tmp_path):
    _, cp = spawn("control-plane", "serve", env=cp_env(CP_PRIVACY_COMPACT_AFTER_S="0", CP_MAINTENANCE_INTERVAL_S="0.5"))
    old_edge = spawn("edge-node", "serve", "--model-dir", str(bundle_dir), env=edge_env(cp, "edge-old", tmp_path))[1]
    eventually(lambda: operator(cp, "nodes")["nodes"], what="edge-old to connect")
    requests = [operator(cp, "privacy", "delete", f"gone-{i}@example.com")["request_id"] for i in range(30)]
    eventually(lambda: all(operator(cp, "privacy", "status", r)["state"] == "completed" for r in requests[-3:]),
               what="receipts")
    # Compacted: every entry keeps its request id, state and receipt, but no longer names a subject.
    status = eventually(lambda: (s := operator(cp, "privacy", "status", requests[0]))
                        and not s.get("subject") and s, what="compaction")
    assert status["state"] == "completed" and [r["node_id"] for r in status["receipts"]] == ["edge-old"]
    # A new edge starts after the compacted prefix: in sync at once, nothing replayed to it.
    new_edge = spawn("edge-node", "serve", "--model-dir", str(bundle_dir),
                     env=edge_env(cp, "edge-new", tmp_path))[1]
    nodes = eventually(lambda: (n := {x["node_id"]: x for x in operator(cp, "nodes")["nodes"]})
                       and "edge-new" in n and int(n["edge-new"].get("privacy_cursor", 0)) >= 30 and n,
                       what="edge-new in sync")
    assert int(nodes["edge-new"].get("cursor_lag", 0)) == 0
    upstream = (tmp_path / "upstream-edge-new.jsonl").read_text()
    assert '"privacy"' not in upstream or upstream.count("seq") < 30  # no receipts for the compacted 30
    # Later requests still reach both edges in order.
    for edge in (old_edge, new_edge):
        profile(edge, "later@example.com", "fine")
    rid = operator(cp, "privacy", "delete", "later@example.com")["request_id"]
    eventually(lambda: operator(cp, "privacy", "status", rid)["state"] == "completed", what="later deletion")
    assert not has_vector(old_edge, "later@example.com") and not has_vector(new_edge, "later@example.com")
    assert call(new_edge, "GET", "/readyz")[1]["serving_personal"]


def test_a_retried_request_is_filed_once(spawn, tmp_path):
    proc, cp = spawn("control-plane", "serve", env=cp_env())
    first = operator(cp, "privacy", "delete", "bob@example.com", "--idempotency-key", "ticket-4711")
    again = operator(cp, "privacy", "delete", "bob@example.com", "--idempotency-key", "ticket-4711")
    assert first["request_id"] == again["request_id"]
    listed = [r for r in operator(cp, "privacy", "list")["requests"] if r["request_id"] == first["request_id"]]
    assert len(listed) == 1 and len(operator(cp, "privacy", "list")["requests"]) == 1
    reused = subprocess.run([CLI, *operator_args(cp), "privacy", "delete", "eve@example.com",
                             "--idempotency-key", "ticket-4711"], capture_output=True, text=True, timeout=60)
    assert reused.returncode != 0 and "already used for another request" in reused.stderr
    # The command starts while the control plane is down, and retries with the same key until it is back.
    proc.terminate()
    late = subprocess.Popen([CLI, *operator_args(cp), "--json", "privacy", "delete", "carol@example.com"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    proc.restart()
    out, err = late.communicate(timeout=90)
    assert late.returncode == 0, err
    assert "retrying" in err and "same idempotency key" in err
    carol = [r for r in operator(cp, "privacy", "list")["requests"] if r["kind"] == "PRIVACY_KIND_DELETE_USER"]
    assert len(carol) == 2  # bob's and carol's: each filed exactly once
