"""One node, several processes (``edge-node serve --workers 2``) against a real control plane:
both workers answer, what one writes the other reads at once (consent, events, deletion),
what the control plane streams reaches every worker (experiments, a model), one Sync stream
serves the node, a killed worker comes back, and SIGTERM stops them all cleanly."""

import os
import signal
import time
from pathlib import Path

import pytest

from tests.e2e.cluster import cp_env, edge_env, eventually, metric, operator, serving, variant
from tests.e2e.http import call, call_with_headers

pytestmark = pytest.mark.e2e

ALL = {"sentiment": True, "personalization": True, "cohort_analytics": True}


def children(pid: int) -> list[int]:
    """The supervisor's worker processes (not multiprocessing's resource tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"spawn_main" in cmdline:
                found.append(int(entry.name))
    return found


def workers_seen(edge: str, tries: int = 60) -> set[str]:
    return {call_with_headers(edge, "GET", "/readyz")[2].get("x-sentiedge-worker") for _ in range(tries)}


def test_two_workers_serve_one_node(spawn, bundle_dir, tmp_path):
    _, cp = spawn("control-plane", "serve", env=cp_env())
    supervisor, edge = spawn("edge-node", "serve", "--model-dir", str(bundle_dir),
                             env=edge_env(cp, "edge-w", tmp_path, EDGE_WORKERS="2"))
    assert len(children(supervisor.proc.pid)) == 2
    eventually(lambda: workers_seen(edge, 20) == {"0", "1"}, what="both workers to answer")
    eventually(lambda: all(call(edge, "GET", "/readyz")[1]["sync"] == "connected" for _ in range(10)),
               what="every worker to report the leader's stream")
    nodes = operator(cp, "nodes")["nodes"]
    assert [n["node_id"] for n in nodes] == ["edge-w"], "one node, one stream, however many workers"

    # Written through one worker, read through any: nothing is cached per process.
    for i in range(20):
        user = f"w{i}"
        assert call(edge, "PUT", f"/v1/users/{user}/consent", {"purposes": ALL, "policy_version": "v1"})[0] == 200
        status, report = call(edge, "POST", f"/v1/users/{user}/events", {"events": [
            {"type": "purchase", "item_id": "b", "category": "Books"}]})
        assert status == 200 and report["accepted"] == 1, report
        assert call(edge, "GET", f"/v1/users/{user}/vector")[0] == 200
        assert call(edge, "GET", f"/v1/personalize?user_id={user}")[1]["source"] == "user"
    for i in range(20):
        assert call(edge, "DELETE", f"/v1/users/w{i}")[0] == 200
        assert call(edge, "GET", f"/v1/users/w{i}/vector")[0] == 404
        assert call(edge, "GET", f"/v1/personalize?user_id=w{i}")[1]["source"] != "user"

    # An operator's deletion reaches the node once (one receipt) and every worker honours it.
    assert call(edge, "PUT", "/v1/users/ann/consent", {"purposes": ALL, "policy_version": "v1"})[0] == 200
    call(edge, "POST", "/v1/users/ann/events", {"events": [{"type": "purchase", "item_id": "b", "category": "Books"}]})
    request = operator(cp, "privacy", "delete", "ann")
    eventually(lambda: operator(cp, "privacy", "status", request["request_id"])["state"] == "completed",
               what="the node's receipt")
    assert all(call(edge, "GET", "/v1/users/ann/vector")[0] == 404 for _ in range(10))

    # What the control plane streams reaches every worker: an experiment, then a model.
    operator(cp, "experiments", "add", "w-test", "--arm", "a=50", "--arm", "hold=50:holdout")

    def every_worker_has_the_experiment() -> bool:
        seen = {}
        for _ in range(30):
            status, body, headers = call_with_headers(edge, "GET", "/v1/personalize?region=eu")
            seen[headers.get("x-sentiedge-worker")] = [e["experiment"] for e in body["experiments"]]
        return set(seen) == {"0", "1"} and all(v == ["w-test"] for v in seen.values())

    eventually(every_worker_has_the_experiment, what="the experiment on both workers")
    v2 = variant(bundle_dir, tmp_path, "9.9.9")
    operator(cp, "models", "push", str(v2))
    operator(cp, "models", "rollout", "sentiedge-sentiment", "9.9.9")
    eventually(lambda: all(serving(edge) == "9.9.9" for _ in range(20)), timeout=60,
               what="the new model on every worker")
    assert {call(edge, "POST", "/v1/sentiment", {"texts": ["great"]})[1]["results"][0]["version"]
            for _ in range(10)} == {"9.9.9"}

    # Metrics from any worker count every worker's requests.
    before = metric(edge, 'sentiedge_decisions_total{source="global"}')
    for _ in range(40):
        call(edge, "GET", "/v1/personalize?region=us")
    assert metric(edge, 'sentiedge_decisions_total{source="global"}') >= before + 40

    # A worker that dies is started again; the node keeps answering meanwhile.
    victim = max(children(supervisor.proc.pid))
    os.kill(victim, signal.SIGKILL)
    assert call(edge, "GET", "/readyz")[0] == 200
    eventually(lambda: victim not in children(supervisor.proc.pid) and len(children(supervisor.proc.pid)) == 2,
               what="the worker to be started again")
    eventually(lambda: workers_seen(edge, 20) == {"0", "1"}, timeout=60, what="the restarted worker to answer")

    # SIGTERM: every worker drains and the node exits 0.
    workers = children(supervisor.proc.pid)
    assert supervisor.terminate() == 0
    time.sleep(0.5)
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()], "no worker outlives the node"
