"""A burst of deletions at one edge drains to the ledger and every edge's receipt: filings the
control plane refuses for its rate limit are sent again on the same stream (no reconnect), and
neither a kill -9 of the edge nor one of the control plane in the middle loses any."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.cluster import cp_env, edge_env, eventually, metric, operator
from tests.e2e.http import call

pytestmark = pytest.mark.e2e

# Tighter than the defaults (a burst of 1,000 at once), so a burst of deletions outruns the
# bucket and the refused filings must be sent again for the outbox to drain.
TIGHT = {"CP_FILINGS_BURST_PER_NODE": "150", "CP_FILINGS_PER_NODE_PER_S": "100"}


def delete_users(edge: str, prefix: str, n: int) -> list[str]:
    """``n`` deletions at ``edge`` (answered 200 each); their request ids."""
    def one(i: int) -> str:
        status, body = call(edge, "DELETE", f"/v1/users/{prefix}-{i}")
        assert status == 200, body
        return body["request_id"]

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, range(n)))


def all_completed(cp: str, request_ids: list[str], nodes: set[str]) -> bool:
    listed = {r["request_id"]: r for r in operator(cp, "privacy", "list", "--limit", "1000")["requests"]}
    return all(rid in listed and listed[rid]["state"] == "completed"
               and {r["node_id"] for r in listed[rid]["receipts"]} >= nodes for rid in request_ids)


def drained(edge: str) -> bool:
    return metric(edge, "sentiedge_privacy_outbox_pending") == 0 and call(edge, "GET", "/readyz")[1][
        "privacy_backlog_s"] == 0


def test_a_burst_of_deletions_drains_on_the_same_stream(spawn, bundle_dir, tmp_path):
    """1,000 deletions: they run in well under a minute on 2 shared cores."""
    _, cp = spawn("control-plane", "serve", env=cp_env(**TIGHT))
    edges = {n: spawn("edge-node", "serve", "--model-dir", str(bundle_dir), env=edge_env(cp, n, tmp_path))[1]
             for n in ("edge-a", "edge-b", "edge-c")}
    eventually(lambda: sum(n["state"] == "connected" for n in operator(cp, "nodes")["nodes"]) == 3, what="3 nodes")
    a = edges["edge-a"]
    assert metric(a, "sentiedge_sync_sessions_total") == 1

    request_ids = delete_users(a, "burst", 1000)
    eventually(lambda: drained(a), timeout=180, what="edge-a's outbox to drain")
    eventually(lambda: all_completed(cp, request_ids, set(edges)), timeout=120,
               what="every deletion in the ledger with every edge's receipt")
    # Some were refused for the rate and sent again, and all of it on the one stream.
    assert metric(a, "sentiedge_privacy_filings_resent_total") > 0
    assert metric(a, "sentiedge_sync_sessions_total") == 1
    head = max(int(r["seq"]) for r in operator(cp, "privacy", "list", "--limit", "1")["requests"])
    for edge in edges.values():
        assert metric(edge, "sentiedge_sync_privacy_cursor") >= head
        assert call(edge, "GET", "/readyz")[1]["privacy_backlog"] == "ok"


def test_kill_9_of_the_edge_or_the_control_plane_mid_drain_loses_nothing(spawn, bundle_dir, tmp_path):
    cp_proc, cp = spawn("control-plane", "serve", env=cp_env(**TIGHT))
    a_proc, a = spawn("edge-node", "serve", "--model-dir", str(bundle_dir), env=edge_env(cp, "edge-a", tmp_path))
    _, b = spawn("edge-node", "serve", "--model-dir", str(bundle_dir), env=edge_env(cp, "edge-b", tmp_path))
    eventually(lambda: sum(n["state"] == "connected" for n in operator(cp, "nodes")["nodes"]) == 2, what="2 nodes")

    # The edge dies with filings still waiting in its outbox (on disk): after a restart all arrive.
    first = delete_users(a, "edge-killed", 400)
    assert metric(a, "sentiedge_privacy_outbox_pending") > 0
    a_proc.kill()
    a_proc.restart()
    eventually(lambda: drained(a), timeout=180, what="edge-a's outbox to drain after its restart")
    eventually(lambda: all_completed(cp, first, {"edge-a", "edge-b"}), timeout=120, what="the first burst completed")

    # The control plane dies mid-drain: what it receipted is in its database, the rest is sent again.
    second = delete_users(a, "cp-killed", 400)
    assert metric(a, "sentiedge_privacy_outbox_pending") > 0
    cp_proc.kill()
    cp_proc.restart()
    eventually(lambda: drained(a), timeout=180, what="edge-a's outbox to drain after the control plane's restart")
    eventually(lambda: all_completed(cp, first + second, {"edge-a", "edge-b"}), timeout=120,
               what="both bursts completed")
    assert metric(b, "sentiedge_sync_privacy_cursor") >= max(
        int(r["seq"]) for r in operator(cp, "privacy", "list", "--limit", "1")["requests"])
