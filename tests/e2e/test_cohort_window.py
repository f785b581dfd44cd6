"""An edge whose cohort window differs from the control plane's hears so at once, through real
gRPC between real processes: the Welcome names the mismatch, the edge logs it once (also across
a reconnect) and names it in /readyz while it goes on serving; its cells are refused and
counted, never silently taken. An edge of the same window hears nothing."""

import pytest

from tests.e2e.cluster import cp_env, edge_env, eventually, metric, operator
from tests.e2e.http import call
from tests.e2e.test_tenant_aggregates import EU
from tests.e2e.test_tenants import ALL, Client

pytestmark = pytest.mark.e2e

LOGGED = "the control plane refuses what this edge aggregates"


def test_an_edge_with_another_cohort_window_is_told_at_once_and_says_so(spawn, bundle_dir, tmp_path):
    from tests.e2e.conftest import free_port

    port = free_port()
    cp_proc, cp = spawn("control-plane", "serve", env=cp_env(CP_METRICS_PORT=str(port), CP_COHORT_MIN_SIZE="1"))
    cp_metrics = f"http://127.0.0.1:{port}"
    shop = Client(cp, "shop")
    short_proc, short = spawn("edge-node", "serve", "--model-dir", str(bundle_dir), env=edge_env(
        cp, "edge-short", tmp_path, EDGE_COHORT_WINDOW_MINUTES="0.05", EDGE_COHORT_MIN_SIZE="1"))
    _, same = spawn("edge-node", "serve", "--model-dir", str(bundle_dir), env=edge_env(cp, "edge-same", tmp_path))

    ready = eventually(lambda: (r := call(short, "GET", "/readyz"))[0] == 200 and r[1]["sync"] == "connected"
                       and r[1].get("warnings") and r[1], what="the mismatch in the short edge's /readyz")
    (warning,) = ready["warnings"]
    assert ready["status"] == "ready" and warning.startswith("cohort window mismatch: this edge aggregates 3-second")
    assert "CP_COHORT_WINDOW_MINUTES=30" in warning and "EDGE_COHORT_WINDOW_MINUTES=0.05" in warning, warning
    assert metric(short, "sentiedge_window_mismatch") == 1
    assert metric(cp_metrics, 'sentiedge_cp_node_window_mismatch{kind="cohort",node="edge-short"}') == 1
    # The edge of the control plane's window: no warning, no mismatch.
    same_ready = eventually(lambda: (r := call(same, "GET", "/readyz"))[1].get("sync") == "connected" and r[1],
                            what="the other edge connected")
    assert "warnings" not in same_ready and metric(same, "sentiedge_window_mismatch") == 0
    assert metric(cp_metrics, 'sentiedge_cp_node_window_mismatch{kind="cohort",node="edge-same"}') == 0
    # Its co-occurrence window is the control plane's (a day, both defaults): no mismatch there.
    assert metric(cp_metrics, 'sentiedge_cp_node_window_mismatch{kind="co-occurrence",node="edge-short"}') == 0

    # It still serves, and what it sends upstream is refused and counted, by node and reason.
    headers = shop.user("u1")
    assert call(short, "PUT", "/v1/users/u1/consent", {"purposes": ALL, "policy_version": "v1"},
                headers=headers)[0] == 200
    status, report = call(short, "POST", "/v1/users/u1/events", {"context": EU, "events": [
        {"type": "review", "item_id": "box", "category": "Packaging", "text": "The box arrived crushed."}]},
        headers=headers)
    assert status == 200 and report["accepted"] == 1, report
    eventually(lambda: metric(cp_metrics, 'sentiedge_cp_cohort_aggregates_refused_total{node="edge-short",'
                                          'reason="window_length"}') >= 1, timeout=45,
               what="the short edge's closed window refused on intake")
    assert operator(cp, "cohorts", "--tenant", "shop")["cohorts"] == []  # nothing of it was merged

    # A reconnect (the control plane restarts) is told again, and the edge does not log it again.
    cp_proc.terminate()
    cp_proc.restart()
    eventually(lambda: metric(cp_metrics, 'sentiedge_cp_node_window_mismatch{kind="cohort",node="edge-short"}') == 1,
               timeout=45, what="the short edge back on the restarted control plane")
    assert call(short, "GET", "/readyz")[1]["warnings"] == [warning]
    assert short_proc.tail(10_000).count(LOGGED) == 1
    assert "cohort window mismatch: this edge aggregates 3-second" in cp_proc.tail(10_000)
