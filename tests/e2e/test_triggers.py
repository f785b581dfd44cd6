"""Cohort sentiment triggers end to end: a rule added at the control plane reaches the
edge, negative texts in one cohort turn its action on there and not elsewhere, and it
clears when the mood does; the edge reports both to the control plane."""

import subprocess

import pytest

from tests.e2e.cluster import CLI, cp_env, edge_env, eventually, metric, operator, operator_args
from tests.e2e.http import call

pytestmark = pytest.mark.e2e

EU = {"region": "eu", "device": "mobile", "daypart": "evening"}
US = {"region": "us", "device": "web", "daypart": "evening"}
SAD = ["This is awful, it broke immediately.", "Terrible quality, I want a refund.", "Worst purchase ever."]


def speak(edge: str, user: str, context: dict, lines: list[str]) -> None:
    call(edge, "PUT", f"/v1/users/{user}/consent", {"purposes": {"sentiment": True, "cohort_analytics": True},
                                                    "policy_version": "v1"})
    status, report = call(edge, "POST", f"/v1/users/{user}/events", {"context": context, "events": [
        {"type": "review", "item_id": f"i{i}", "category": "Garden", "text": t} for i, t in enumerate(lines)]})
    assert status == 200 and report["texts_scored"] == len(lines), report


def actions(edge: str, context: dict) -> list[dict]:
    query = "&".join(f"{k}={v}" for k, v in context.items())
    return call(edge, "GET", f"/v1/personalize?{query}")[1]["actions"]


def test_negative_cohort_gets_the_action_others_do_not_and_it_clears(spawn, bundle_dir, tmp_path):
    _, cp = spawn("control-plane", "serve", env=cp_env())
    _, edge = spawn("edge-node", "serve", "--model-dir", str(bundle_dir), env=edge_env(cp, "edge-t", tmp_path))
    added = operator(cp, "rules", "add", "sad-eu", "--cohort", "eu/mobile/*", "--signal", "negative_share",
                     "--op", ">", "--threshold", "0.5", "--clear", "0.4", "--min-size", "3",
                     "--action", "sustainability_note")
    assert added["clear"] == 0.4
    assert operator(cp, "rules", "list")["rules"][0]["name"] == "sad-eu"
    eventually(lambda: call(edge, "GET", "/readyz")[1]["sync"] == "connected", what="edge connected")

    for user in ("a1", "a2", "a3"):
        speak(edge, user, EU, SAD)
        speak(edge, f"us-{user}", US, SAD)  # just as negative, but no rule covers this cohort
    (action,) = eventually(lambda: actions(edge, EU), what="the rule to reach the edge and fire")
    assert action["action"] == "sustainability_note"
    assert action["reason"].startswith("cohort eu/mobile/evening: negative share 1.00 > 0.5 over 30 min")
    assert actions(edge, US) == []
    ranked = call(edge, "POST", "/v1/rank", {"context": EU, "candidates": [{"id": "x", "category": "Garden"}]})[1]
    assert [a["action"] for a in ranked["actions"]] == ["sustainability_note"]

    happy = ["Wonderful, I love it!", "Absolutely fantastic quality.", "Best purchase this year, great value."]
    for user in ("b1", "b2", "b3", "b4", "b5"):
        speak(edge, user, EU, happy)  # 9 negative of 24 texts: 0.375 < 0.4
    eventually(lambda: actions(edge, EU) == [], what="the action to clear")

    assert metric(edge, 'sentiedge_trigger_activations_total{rule="sad-eu"}') == 1.0
    assert metric(edge, "sentiedge_trigger_signal_to_action_seconds_count") == 1.0
    history = eventually(lambda: (h := operator(cp, "rules", "history")["entries"])
                         and {e["event"] for e in h} >= {"added", "activated", "cleared"} and h,
                         what="activation and clearing reported upstream")
    assert {e["node_id"] for e in history if e["event"] in ("activated", "cleared")} == {"edge-t"}
    operator(cp, "rules", "remove", "sad-eu")
    assert operator(cp, "rules", "list").get("rules", []) == []


def test_experiments_reach_the_edge_and_report_from_the_control_plane(spawn, bundle_dir, tmp_path):
    _, cp = spawn("control-plane", "serve", env=cp_env(CP_COHORT_WINDOW_MINUTES="0.05"))
    _, edge = spawn("edge-node", "serve", "--model-dir", str(bundle_dir), env=edge_env(
        cp, "edge-x", tmp_path, EDGE_COHORT_WINDOW_MINUTES="0.05", EDGE_COHORT_MIN_SIZE="1"))
    added = operator(cp, "experiments", "add", "ranking-v2", "--arm", "control=50", "--arm", "holdout=50:holdout")
    assert [a["name"] for a in added["arms"]] == ["control", "holdout"]
    early = subprocess.run([CLI, *operator_args(cp), "experiments", "report", "ranking-v2"],
                           capture_output=True, text=True, check=True).stdout
    assert "no figures yet" in early and "EDGE_COHORT_WINDOW_MINUTES" in early, early  # why, and when
    arms = eventually(lambda: call(edge, "GET", "/v1/personalize?user_id=u1")[1]["experiments"],
                      what="the experiment to reach the edge")
    assert arms[0]["experiment"] == "ranking-v2"
    for i in range(40):
        body = {"experiment": "ranking-v2", "kind": "exposure", "user_id": f"user-{i}"}
        assert call(edge, "POST", "/v1/experiments/events", body)[0] == 200
    report = eventually(lambda: (r := operator(cp, "experiments", "report", "ranking-v2")).get("results") and r,
                        what="aggregates to reach the control plane")
    overall = {r["arm"]: r for r in report["results"] if r["cohort"] == "all"}
    assert int(overall["control"]["exposures"]) + int(overall["holdout"]["exposures"]) == 40
    assert "too small" in overall["control"]["warning"]


def test_rules_act_on_cohorts_merged_across_edges(spawn, bundle_dir, tmp_path):
    _, cp = spawn("control-plane", "serve", env=cp_env(CP_COHORT_MIN_SIZE="2", CP_COHORT_WINDOW_MINUTES="0.05"))
    edges = [spawn("edge-node", "serve", "--model-dir", str(bundle_dir), env=edge_env(
        cp, node_id, tmp_path, EDGE_COHORT_WINDOW_MINUTES="0.05", EDGE_COHORT_MIN_SIZE="1"))[1]
        for node_id in ("edge-m1", "edge-m2")]
    operator(cp, "rules", "add", "sad-eu", "--cohort", "eu/*/*", "--signal", "negative_share", "--threshold", "0.5",
             "--clear", "0.4", "--min-size", "4", "--window", "5", "--action", "calm_tone")
    # Restricted to one category: its per-category counts must survive the merge (they once read 0).
    operator(cp, "rules", "add", "sad-garden", "--cohort", "eu/*/*", "--signal", "negative_share", "--category",
             "garden", "--threshold", "0.5", "--clear", "0.4", "--min-size", "4", "--window", "5",
             "--action", "garden_care")
    for edge in edges:
        eventually(lambda edge=edge: call(edge, "GET", "/readyz")[1]["sync"] == "connected", what="connected")
    for e, edge in enumerate(edges):  # two unhappy users per edge: under the rule's minimum size on either edge
        for u in range(2):
            speak(edge, f"e{e}-u{u}", EU, SAD)
    assert all(actions(edge, EU) == [] for edge in edges)
    for edge in edges:  # once the windows close and merge: four users, both rules fire on both edges
        fired = eventually(lambda edge=edge: len(actions(edge, EU)) == 2 and actions(edge, EU), timeout=45,
                           what="the merged cohort to fire, for the whole cohort and for its garden category")
        assert sorted(a["action"] for a in fired) == ["calm_tone", "garden_care"], fired
