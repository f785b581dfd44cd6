"""The README's walk-through against a real ``edge-node serve``: consent, events, rankings
with reasons, then withdrawal and deletion; and a SIGKILL in the middle of writes."""

import os
import signal
import threading
import urllib.request

import pytest

from edge_node.records import CohortCell, Member
from edge_node.store import EdgeStore
from tests.e2e.http import call

pytestmark = pytest.mark.e2e

CTX = {"region": "eu", "device": "mobile", "daypart": "evening"}
CANDIDATES = [{"id": "serum", "category": "Skincare", "popularity": 5},
              {"id": "lipstick", "category": "Makeup", "popularity": 60},
              {"id": "spade", "category": "Garden", "popularity": 90},
              {"id": "novel", "category": "Books", "popularity": 30}]


def rank(base, user):
    status, body = call(base, "POST", "/v1/rank", {"user_id": user, "context": CTX, "candidates": CANDIDATES})
    assert status == 200, body
    return body


def test_consent_events_rankings_withdrawal_and_deletion(spawn, bundle_dir):
    _, base = spawn("edge-node", "serve", "--model-dir", str(bundle_dir), "--exploration-slots", "0")
    cold = rank(base, "ann")
    assert cold["source"] == "global" and [i["id"] for i in cold["items"]][0] == "spade"

    status, body = call(base, "PUT", "/v1/users/ann/consent", {
        "purposes": {"sentiment": True, "personalization": True, "cohort_analytics": True}, "policy_version": "v1"})
    assert status == 200 and body["purposes"]["personalization"]["granted"]
    status, report = call(base, "POST", "/v1/users/ann/events", {"context": CTX, "events": [
        {"type": "review", "item_id": "serum", "category": "Skincare", "text": "This serum is wonderful, I love it!"},
        {"type": "rating", "item_id": "serum", "category": "Skincare", "value": 5},
        {"type": "review", "item_id": "spade", "category": "Garden",
         "text": "Snapped the first time I used it. Awful."},
    ]})
    assert status == 200 and report["accepted"] == 3 and report["texts_scored"] == 2

    ranked = rank(base, "ann")
    assert ranked["source"] == "user"
    assert [i["id"] for i in ranked["items"]][0] == "serum" and ranked["items"][-1]["id"] == "spade"
    assert ranked["items"][0]["reason"] == "because you rated Skincare positively today"
    assert "Garden negatively" in ranked["items"][-1]["reason"]

    status, body = call(base, "PUT", "/v1/users/ann/consent", {"purposes": {"personalization": False},
                                                               "policy_version": "v1"})
    assert status == 200 and body["erased"] == ["profile", "recent_reasons"]
    assert rank(base, "ann")["source"] != "user"
    assert call(base, "GET", "/v1/users/ann/vector")[0] == 404

    call(base, "PUT", "/v1/users/ann/consent", {"purposes": {"personalization": True}, "policy_version": "v1"})
    call(base, "POST", "/v1/users/ann/events", {"context": CTX, "events": [
        {"type": "purchase", "item_id": "novel", "category": "Books"}]})
    assert rank(base, "ann")["source"] == "user"
    status, body = call(base, "DELETE", "/v1/users/ann")
    assert status == 200 and body["request_id"]
    assert rank(base, "ann")["source"] != "user"
    with urllib.request.urlopen(base + "/metrics") as r:
        text = r.read().decode()
    assert 'sentiedge_privacy_actions_total{kind="deleted"} 1.0' in text


def test_sigkill_mid_writes_keeps_every_acknowledged_write_and_a_consistent_store(spawn, bundle_dir, tmp_path):
    data_dir = tmp_path / "edge-data"
    env = {"EDGE_DATA_DIR": str(data_dir)}
    proc, base = spawn("edge-node", "serve", "--model-dir", str(bundle_dir), env=env)
    acknowledged: dict[str, int] = {}  # user → events acknowledged
    stop = threading.Event()

    def writer(worker: int) -> None:
        n = 0
        while not stop.is_set():
            user = f"w{worker}-{n}"
            try:
                status, _ = call(base, "PUT", f"/v1/users/{user}/consent", {
                    "purposes": {"personalization": True, "cohort_analytics": True}, "policy_version": "v1"}, timeout=5)
                if status != 200:
                    return
                acknowledged[user] = 0
                status, _ = call(base, "POST", f"/v1/users/{user}/events", {"context": CTX, "events": [
                    {"type": "purchase", "item_id": f"i{n}", "category": "Books"},
                    {"type": "view", "item_id": f"j{n}", "category": "Garden"}]}, timeout=5)
                if status != 200:
                    return
                acknowledged[user] = 2
            except OSError:
                return
            n += 1

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    while len(acknowledged) < 120:
        threading.Event().wait(0.05)
    os.kill(proc.proc.pid, signal.SIGKILL)
    proc.proc.wait()
    stop.set()
    for t in threads:
        t.join()

    # The store as the killed process left it: every cohort cell agrees with its members.
    store = EdgeStore(data_dir, retention_s=86400)
    members = [k for k in store._cache.iterkeys() if isinstance(k, str) and k.startswith("member|")]
    cells: dict[str, list[Member]] = {}
    for key in members:
        _, window, cohort, _subject = key.split("|")
        cells.setdefault(f"cohort|{window}|{cohort}", []).append(store.get(key, Member))
    assert cells
    for cell_key, ms in cells.items():
        cell = store.get(cell_key, CohortCell)
        assert cell.users == len(ms) and cell.events == sum(m.events for m in ms), cell_key
    store.close()

    _, base = spawn("edge-node", "serve", "--model-dir", str(bundle_dir), env=env)
    for user, events in acknowledged.items():
        status, consent = call(base, "GET", f"/v1/users/{user}/consent")
        assert consent["purposes"]["personalization"]["granted"], user
        if events:
            status, vector = call(base, "GET", f"/v1/users/{user}/vector")
            assert status == 200 and vector["events"] == events, user
