"""The collaborative signal end to end, two real edges and a real control plane (mTLS): three
users at one edge buy a serum and a bath cream; once their window closes the pair leaves that
edge (k = 3), the control plane merges it into the shop's item-neighbour table and streams it,
and at the other edge a user who bought only the serum sees the cream lifted, "often chosen
with serum-1". Two users' pair never leaves the edge (the audit log of what went upstream
says so), and a pair of three users one of whom was deleted while the window was open does
not leave either."""

import datetime as dt
import json
import time

import pytest

from tests.e2e.cluster import cp_env, edge_env, eventually, metric
from tests.e2e.http import call
from tests.e2e.test_tenants import ALL, Client

pytestmark = pytest.mark.e2e

WINDOW_MINUTES = 0.25  # 15 s co-occurrence windows: the test waits for one to close


def buy(edge: str, app: Client, user: str, items: list[tuple[str, str]], at: str) -> None:
    headers = app.user(user)
    assert call(edge, "PUT", f"/v1/users/{user}/consent", {"purposes": ALL, "policy_version": "v1"},
                headers=headers)[0] == 200
    status, report = call(edge, "POST", f"/v1/users/{user}/events", {"events": [
        {"type": "purchase", "item_id": item, "category": category, "timestamp": at} for item, category in items]},
        headers=headers)
    assert status == 200 and report["accepted"] == len(items), report


def top(edge: str, app: Client, user: str, candidates: list[dict]) -> dict:
    status, ranked = call(edge, "POST", "/v1/rank", {"user_id": user, "candidates": candidates, "limit": 2,
                                                     "exploration_slots": 0}, headers=app.user(user))
    assert status == 200, ranked
    return ranked["items"][0]


def test_cooccurrence_at_one_edge_improves_a_ranking_at_the_other(spawn, bundle_dir, tmp_path):
    _, cp = spawn("control-plane", "serve", env=cp_env(CP_COHORT_MIN_SIZE="3",
                                                       CP_COOCCURRENCE_WINDOW_MINUTES=str(WINDOW_MINUTES)))
    shop = Client(cp, "shop")
    settings = {"EDGE_COHORT_MIN_SIZE": "3", "EDGE_COOCCURRENCE_WINDOW_MINUTES": str(WINDOW_MINUTES)}
    edges = {node: spawn("edge-node", "serve", "--model-dir", str(bundle_dir),
                         env=edge_env(cp, node, tmp_path, **settings))[1] for node in ("edge-a", "edge-b")}
    for edge in edges.values():
        eventually(lambda edge=edge: call(edge, "GET", "/readyz")[1]["sync"] == "connected"
                   and call(edge, "GET", "/v1/personalize", headers={"x-client-key": shop.client_key})[0] == 200,
                   what="the edge connected, with the shop's app")
    a, b = edges["edge-a"], edges["edge-b"]

    # Every event of edge A stamped in one window, so the users' baskets share it.
    window_s = WINDOW_MINUTES * 60
    if time.time() % window_s > window_s - 5:
        time.sleep(6)  # too close to the window's end for the calls below
    at = dt.datetime.fromtimestamp(time.time(), dt.UTC).isoformat()
    for u in range(3):
        buy(a, shop, f"buyer-{u}", [("serum-1", "Skincare"), ("cream-7", "Bath")], at)
        buy(a, shop, f"knitter-{u}", [("scarf-1", "Accessories"), ("scarf-2", "Accessories")], at)
    for u in range(2):
        buy(a, shop, f"insider-{u}", [("secret-a", "Gadgets"), ("secret-b", "Gadgets")], at)  # two users: under k
    # One of the three knitters is deleted while the window is open: two baskets left, under k.
    assert call(a, "DELETE", "/v1/users/knitter-0", headers=shop.user("knitter-0"))[0] == 200

    # At edge B one user bought only the serum, another only a scarf.
    now = dt.datetime.fromtimestamp(time.time(), dt.UTC).isoformat()
    buy(b, shop, "ann", [("serum-1", "Skincare")], now)
    buy(b, shop, "bob", [("scarf-1", "Accessories")], now)
    cream = [{"id": "lipstick", "category": "Makeup", "popularity": 90},
             {"id": "cream-7", "category": "Bath", "popularity": 5}]
    scarf = [{"id": "lipstick", "category": "Makeup", "popularity": 90},
             {"id": "scarf-2", "category": "Hats", "popularity": 5}]
    assert top(b, shop, "ann", cream)["id"] == "lipstick"  # no table yet: popularity
    assert top(b, shop, "bob", scarf)["id"] == "lipstick"

    lifted = eventually(lambda: (t := top(b, shop, "ann", cream))["id"] == "cream-7" and t, timeout=90,
                        what="edge A's co-occurrence to reach edge B's ranking")
    assert lifted["reason"] == "often chosen with serum-1" and lifted["signals"]["collaborative"] == 1.0
    assert top(b, shop, "bob", scarf)["id"] == "lipstick"  # the deleted knitter's pair never left edge A
    assert metric(b, 'sentiedge_neighbours_version{tenant="shop"}') >= 1

    # What edge A sent upstream: the serum pair of 3 users, nothing of two users, no user, no scarf.
    sent = [json.loads(line) for line in (tmp_path / "upstream-edge-a.jsonl").read_text().splitlines()]
    windows = [w for m in sent for w in m.get("heartbeat", {}).get("cooccurrence", [])]
    assert windows and {w["tenant"] for w in windows} == {"shop"}
    assert {(p["a"], p["b"], p["users"]) for w in windows for p in w.get("pairs", [])} == {("cream-7", "serum-1", 3)}
    text = json.dumps(sent)
    for absent in ("secret-a", "secret-b", "scarf-1", "scarf-2", "buyer-", "knitter-", "insider-"):
        assert absent not in text, absent
    # Edge B's one buyer of each item left nothing either.
    sent_b = (tmp_path / "upstream-edge-b.jsonl").read_text()
    assert "serum-1" not in sent_b and "ann" not in sent_b
