"""Simulated traffic with a planted lift goes through the edge's HTTP API; its aggregates
go to the control plane's store, and the report recovers the lift."""

import numpy as np
import pytest
from litestar.testing import TestClient

from control_plane.experiments import ExperimentBook
from control_plane.store import Store
from edge_node.config import load_settings
from edge_node.http.app import create_app
from edge_node.personalization.experiments import Arm, Experiment
from tests.credentials import dev_user, edge_app

EXPERIMENT = Experiment(name="ranking-v2", salt="s1", arms=[
    Arm(name="control", weight=40), Arm(name="treatment", weight=40), Arm(name="holdout", weight=20, holdout=True)])
RATES = {"control": 0.10, "treatment": 0.14, "holdout": 0.10}


@pytest.fixture
def edge(model, tmp_path):
    settings = load_settings({"EDGE_DATA_DIR": str(tmp_path / "edge"), "EDGE_COHORT_MIN_SIZE": "20"})
    app = create_app(settings, model=model)
    with TestClient(app) as client:
        client.headers.update(edge_app(settings.data_path).server())
        app.state.node.experiments.set([EXPERIMENT], 1)
        yield client, app.state.node


def test_a_planted_lift_is_recovered_through_edge_and_control_plane(edge, tmp_path):
    client, node = edge
    rng = np.random.default_rng(2026)
    contexts = [{"region": "eu", "device": "mobile", "daypart": "evening"},
                {"region": "us", "device": "web", "daypart": "evening"}]
    arms = {}
    for i in range(6000):
        body = {"experiment": "ranking-v2", "kind": "exposure", "user_id": f"user-{i}", "context": contexts[i % 2]}
        arm = client.post("/v1/experiments/events", json=body).json()["arm"]
        arms[arm] = arms.get(arm, 0) + 1
        if rng.random() < RATES[arm]:
            assert client.post("/v1/experiments/events", json={**body, "kind": "conversion", "value": 20.0}
                               ).status_code == 200
    assert set(arms) == set(RATES) and 0.17 < arms["holdout"] / 6000 < 0.23

    now_window = int(node.now() // node.experiments.window_s * node.experiments.window_s)
    rows = node.experiments.export(now_window)
    assert rows and all(cell.exposures >= 20 for *_, cell in rows)  # only cells over the minimum size leave

    store = Store(tmp_path / "cp")
    book = ExperimentBook(store)
    book.add(EXPERIMENT, 1.0)
    assert {t for _, _, t, _, _ in rows} == {"dev"}  # counted per tenant: the development app's
    store.put_experiment_counts("edge-1", [(now_window, e, a, c, cell.exposures, cell.clicks, cell.conversions,
                                            cell.value, t) for e, a, t, c, cell in rows])
    _, results = book.report("ranking-v2")
    overall = {r.arm: r for r in results if r.cohort == "all"}
    treatment, control = overall["treatment"], overall["control"]
    assert treatment.ci_low < 0.04 < treatment.ci_high and treatment.p_value < 0.05 and treatment.lift > 0.1
    assert control.ci_low < 0 < control.ci_high and control.p_value > 0.01
    assert overall["holdout"].is_holdout and treatment.value == pytest.approx(20.0 * treatment.conversions)
    per_cohort = {(r.arm, r.cohort) for r in results}
    assert ("treatment", "eu/mobile/evening") in per_cohort and ("holdout", "us/web/evening") in per_cohort

    # A small sample gets the answer with a warning, not a conclusion.
    small = Experiment(name="tiny", salt="t", arms=EXPERIMENT.arms)
    book.add(small, 2.0)
    store.put_experiment_counts("edge-1", [(now_window, "tiny", "treatment", "all-users", 30, 0, 6, 0.0),
                                           (now_window, "tiny", "holdout", "all-users", 30, 0, 2, 0.0)])
    tiny = {r.arm: r for r in book.report("tiny")[1] if r.cohort == "all"}
    assert "too small to conclude" in tiny["treatment"].warning
    store.close()


def test_holdout_users_get_no_personalization_and_responses_name_the_arm(edge):
    client, node = edge
    # Arms are drawn for the user as the edge names it: scoped to the app's tenant.
    holdout_user = next(f"u{i}" for i in range(1000) if node.experiments.held_out(dev_user(f"u{i}")))
    other_user = next(f"u{i}" for i in range(1000) if not node.experiments.held_out(dev_user(f"u{i}")))
    for user in (holdout_user, other_user):
        client.put(f"/v1/users/{user}/consent", json={"purposes": {"personalization": True}, "policy_version": "v"})
        client.post(f"/v1/users/{user}/events", json={"events": [{"type": "purchase", "item_id": "a",
                                                                  "category": "Books"}]})
    held = client.get("/v1/personalize", params={"user_id": holdout_user}).json()
    assert held["source"] == "global" and "holdout arm of experiment ranking-v2" in held["reason"]
    assert held["experiments"] == [{"experiment": "ranking-v2", "arm": "holdout", "holdout": True}]
    assert client.get("/v1/personalize", params={"user_id": other_user}).json()["source"] == "user"
    ranked = client.post("/v1/rank", json={"user_id": holdout_user, "candidates": [
        {"id": "b", "category": "Books", "popularity": 1}, {"id": "t", "category": "Toys", "popularity": 9}]}).json()
    assert [i["id"] for i in ranked["items"]] == ["t", "b"]  # popularity only
    bad = client.post("/v1/experiments/events", json={"experiment": "nope", "kind": "exposure"})
    assert bad.status_code == 400 and bad.json()["field"] == "experiment"


def test_an_experiment_for_one_tenant_takes_only_that_tenants_units(edge):
    """The development app is tenant "dev": an experiment for another tenant does not exist for
    its users or its anonymous traffic, and its holdout holds none of them out."""
    client, node = edge
    other = Experiment(name="other-brand", salt="o", tenant="other", arms=[
        Arm(name="a", weight=50), Arm(name="hold", weight=50, holdout=True)])
    mine = Experiment(name="dev-only", salt="d", tenant="dev", arms=[
        Arm(name="a", weight=50), Arm(name="hold", weight=50, holdout=True)])
    node.experiments.set([other, mine], 2)
    for params in ({"user_id": "u1"}, {"region": "eu"}):
        named = {e["experiment"] for e in client.get("/v1/personalize", params=params).json()["experiments"]}
        assert named == {"dev-only"}
    refused = client.post("/v1/experiments/events", json={"experiment": "other-brand", "kind": "exposure",
                                                          "user_id": "u1"})
    assert refused.status_code == 400 and refused.json()["field"] == "experiment"
    assert not any(node.experiments.held_out(dev_user(f"u{i}"), None, "dev") == "other-brand" for i in range(50))
    counted = client.post("/v1/experiments/events", json={"experiment": "dev-only", "kind": "exposure",
                                                          "user_id": "u1"})
    assert counted.status_code == 200
    window = int(node.now() // node.experiments.window_s * node.experiments.window_s)
    node.experiments.min_size = 1
    assert [(name, tenant) for name, _, tenant, _, _ in node.experiments.export(window)] == [("dev-only", "dev")]
