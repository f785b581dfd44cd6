"""The playbook end to end, with real processes: an operator seeds a tenant's topics and adds a
rule on the packaging topic; packaging complaints in one cohort switch `sustainability_note` on
there and nowhere else (a cohort that praises its packaging, or complains about delivery, does
not get it); the trigger's activation reaches the tenant's webhook, signed; the merged topic
signals show in `topics trends` once windows close."""

import json
import subprocess
import time

import pytest

from control_plane.webhooks import SIGNATURE, verify
from tests.e2e.cluster import CLI, cp_env, edge_env, eventually, operator, operator_args
from tests.e2e.http import call
from tests.receiver import Receiver

pytestmark = pytest.mark.e2e

EU = {"region": "eu", "device": "mobile", "daypart": "evening"}
US = {"region": "us", "device": "web", "daypart": "evening"}
APAC = {"region": "apac", "device": "web", "daypart": "evening"}
COMPLAINTS = ["The serum is lovely but the box arrived crushed and full of plastic.",
              "Way too much plastic packaging, the box was damaged."]
PRAISE = ["The packaging was beautiful and fully recyclable.", "Lovely box, nicely packed and no plastic at all."]
LATE = ["The delivery took two weeks and the courier lost it.", "Shipping was painfully slow."]


def speak(edge: str, user: str, context: dict, lines: list[str]) -> list[dict]:
    call(edge, "PUT", f"/v1/users/{user}/consent", {"purposes": {"sentiment": True, "cohort_analytics": True},
                                                    "policy_version": "v1"})
    status, report = call(edge, "POST", f"/v1/users/{user}/events", {"context": context, "events": [
        {"type": "review", "item_id": f"i{i}", "category": "Beauty", "text": t} for i, t in enumerate(lines)]})
    assert status == 200 and report["texts_scored"] == len(lines), report
    return [r["sentiment"] for r in report["results"]]


def actions(edge: str, context: dict) -> list[dict]:
    query = "&".join(f"{k}={v}" for k, v in context.items())
    return call(edge, "GET", f"/v1/personalize?{query}")[1]["actions"]


def topics_of(edge: str, text: str) -> dict:
    status, answer = call(edge, "POST", "/v1/sentiment", {"texts": [text]})
    assert status == 200, answer
    return {a["topic"]: a["label"] for a in answer["results"][0].get("aspects", [])}


def test_packaging_complaints_in_one_cohort_switch_on_the_note_there_only_and_notify(spawn, bundle_dir, tmp_path):
    receiver = Receiver()
    try:
        _, cp = spawn("control-plane", "serve", env=cp_env(CP_COHORT_MIN_SIZE="3", CP_WEBHOOK_ALLOW_PRIVATE="true",
                                                              CP_COHORT_WINDOW_MINUTES="0.1"))
        _, edge = spawn("edge-node", "serve", "--model-dir", str(bundle_dir), env=edge_env(
            cp, "edge-p", tmp_path, EDGE_COHORT_WINDOW_MINUTES="0.1", EDGE_COHORT_MIN_SIZE="3"))
        seeded = operator(cp, "topics", "seed")
        assert {"delivery", "packaging", "price-value"} <= set(seeded["added"])
        hook = operator(cp, "webhooks", "set", "--url", receiver.url)
        operator(cp, "rules", "add", "packaging-complaints", "--topic", "packaging", "--signal", "negative_share",
                 "--cohort", "*/*/*", "--threshold", "0.5", "--clear", "0.4", "--min-size", "3",
                 "--action", "sustainability_note")
        assert eventually(lambda: topics_of(edge, COMPLAINTS[0]), what="the topic set to reach the edge") \
            .get("packaging") == "negative"

        for user in ("a1", "a2", "a3"):
            speak(edge, f"eu-{user}", EU, COMPLAINTS)
            sentiments = speak(edge, f"us-{user}", US, PRAISE)  # its packaging is praised: no complaint
            assert all(any(a["topic"] == "packaging" for a in s.get("aspects", [])) for s in sentiments), sentiments
            speak(edge, f"apac-{user}", APAC, LATE)  # unhappy, but about delivery
        (action,) = eventually(lambda: actions(edge, EU), what="the rule to fire in the complaining cohort")
        assert action["action"] == "sustainability_note"
        assert action["reason"].startswith("cohort eu/mobile/evening: negative share of topic packaging 1.00 > 0.5")
        assert actions(edge, US) == [] and actions(edge, APAC) == []

        delivered = eventually(lambda: [json.loads(b) for _, b in receiver.received], timeout=30,
                               what="the activation at the tenant's webhook")
        (event,) = [e for e in delivered if e["type"] == "trigger.activated"]
        assert (event["data"]["rule"], event["data"]["cohort"], event["data"]["topic"]) == (
            "packaging-complaints", "eu/mobile/evening", "packaging")
        headers, body = receiver.received[0]
        assert verify(hook["secret"], headers[SIGNATURE], body, time.time())

        def packaging_trend():
            trends = operator(cp, "topics", "trends", "--topic", "packaging")["trends"]
            return trends and trends[0]["windows"] and trends[0]
        trend = eventually(packaging_trend, timeout=45, what="merged packaging mentions once the window closed")
        merged = trend["windows"][-1]
        assert merged["texts"] >= 6 and merged["negative"] >= 3  # complaints and praise, merged over cohorts
        assert trend["note"].startswith("too few mentions")  # one window: nothing to judge a rise against
        table = subprocess.run([CLI, *operator_args(cp), "topics", "trends"], capture_output=True, text=True,
                               timeout=60, check=True).stdout  # for people: the rule, a row per topic, why not judged
        assert table.startswith("rule: one-sided two-proportion z-test") and "dev/packaging: too few mentions" in table
        refused = subprocess.run([CLI, *operator_args(cp), "topics", "add", "Bad Name"], capture_output=True,
                                 text=True, timeout=60)
        assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
        assert "INVALID_ARGUMENT: topic name 'Bad Name' must be" in refused.stderr
    finally:
        receiver.close()
