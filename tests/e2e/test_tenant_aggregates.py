"""Aggregates per tenant, end to end: two brands' users in the same region, device and daypart
build two cohorts, never one. The shop's users (on one edge) love books and complain about
packaging; the clinic's (on the other edge) like vitamins. After the windows close and the
control plane merges them per tenant, each tenant's cold-start user — on the edge that never
saw its tenant's users — gets its own tenant's cohort prior, never the other's; a trigger rule
without a tenant acts on the shop's cohort for the shop's users only."""

import json

import pytest

from tests.e2e.cluster import cp_env, edge_env, eventually, operator
from tests.e2e.http import call
from tests.e2e.test_tenants import ALL, Client

pytestmark = pytest.mark.e2e

EU = {"region": "eu", "device": "mobile", "daypart": "evening"}
QUERY = "region=eu&device=mobile&daypart=evening"
PACKAGING = ["The box arrived crushed and torn, awful packaging.", "Terrible packaging, everything was broken.",
             "Worst packaging ever, the parcel was soaked."]


def contribute(edge: str, app: Client, user: str, events: list[dict]) -> None:
    headers = app.user(user)
    assert call(edge, "PUT", f"/v1/users/{user}/consent", {"purposes": ALL, "policy_version": "v1"},
                headers=headers)[0] == 200
    status, report = call(edge, "POST", f"/v1/users/{user}/events", {"context": EU, "events": events},
                          headers=headers)
    assert status == 200 and report["accepted"] == len(events) and report["cohort"] == "eu/mobile/evening", report


def cold_start(edge: str, app: Client, user: str) -> dict:
    return call(edge, "GET", f"/v1/personalize?user_id={user}&{QUERY}", headers=app.user(user))[1]


def anonymous(edge: str, app: Client) -> dict:
    return call(edge, "GET", f"/v1/personalize?{QUERY}", headers={"x-client-key": app.client_key})[1]


def test_two_tenants_in_the_same_context_build_and_see_their_own_priors(spawn, bundle_dir, tmp_path):
    _, cp = spawn("control-plane", "serve", env=cp_env(CP_COHORT_MIN_SIZE="2", CP_COHORT_WINDOW_MINUTES="0.05"))
    shop, clinic = Client(cp, "shop"), Client(cp, "clinic")
    operator(cp, "rules", "add", "packaging", "--cohort", "eu/*/*", "--signal", "negative_share", "--category",
             "packaging", "--threshold", "0.5", "--clear", "0.4", "--min-size", "3", "--window", "5",
             "--action", "packaging_apology")
    edges = [spawn("edge-node", "serve", "--model-dir", str(bundle_dir), env=edge_env(
        cp, node_id, tmp_path, EDGE_COHORT_WINDOW_MINUTES="0.05", EDGE_COHORT_MIN_SIZE="1"))[1]
        for node_id in ("edge-shop", "edge-clinic")]
    for edge in edges:
        eventually(lambda edge=edge: call(edge, "GET", "/readyz")[1]["sync"] == "connected"
                   and call(edge, "GET", f"/v1/personalize?{QUERY}", headers={"x-client-key": clinic.client_key})[0]
                   == 200, what="the edge connected, with both apps")
    shop_edge, clinic_edge = edges

    for u in range(3):  # the same user ids in both tenants: six people, two cohorts
        contribute(shop_edge, shop, f"u{u}", [
            {"type": "purchase", "item_id": f"novel-{u}", "category": "Books", "text": "A wonderful novel, loved it."},
            *({"type": "review", "item_id": f"box-{i}", "category": "Packaging", "text": t}
              for i, t in enumerate(PACKAGING))])
        contribute(clinic_edge, clinic, f"u{u}", [
            {"type": "purchase", "item_id": f"vit-{u}", "category": "Vitamins",
             "text": "Great vitamins, I feel better."}])

    # Each tenant's cold-start user on the edge that never saw its tenant's users: the merged prior
    # of its own tenant's cohort, streamed back by the control plane.
    def prior_of(edge, app, user, category):
        decided = cold_start(edge, app, user)
        return decided["source"] == "cohort" and category in [a["category"] for a in decided["affinities"]] \
            and decided

    shop_new = eventually(lambda: prior_of(clinic_edge, shop, "newcomer", "books"), timeout=45,
                          what="the shop's merged cohort prior at the clinic's edge")
    clinic_new = eventually(lambda: prior_of(shop_edge, clinic, "newcomer", "vitamins"), timeout=45,
                            what="the clinic's merged cohort prior at the shop's edge")
    assert shop_new["cohort"] == clinic_new["cohort"] == "eu/mobile/evening"  # the key users see, unchanged
    assert "vitamins" not in str(shop_new).lower()
    assert "books" not in str(clinic_new).lower() and "packaging" not in str(clinic_new).lower()
    for edge in edges:  # on either edge, with a user or anonymously (the app's tenant), never the other's
        for app, own, other in ((shop, "books", "vitamins"), (clinic, "vitamins", "books")):
            for decided in (cold_start(edge, app, "another-newcomer"), anonymous(edge, app)):
                categories = [a["category"] for a in decided["affinities"]]
                assert decided["source"] == "cohort" and own in categories and other not in categories, decided

    # The rule has no tenant: evaluated on each tenant's cohort apart. The shop's packaging
    # complaints turn it on for the shop's users, and for nobody of the clinic's, on both edges.
    for edge in edges:
        fired = eventually(lambda edge=edge: anonymous(edge, shop)["actions"], timeout=45,
                           what="the shop's merged cohort to fire the packaging rule")
        assert [a["action"] for a in fired] == ["packaging_apology"]
        assert cold_start(edge, shop, "newcomer").get("actions") == fired
        assert not anonymous(edge, clinic).get("actions") and not cold_start(edge, clinic, "newcomer").get("actions")

    # The operator sees each tenant's merged cells apart (the tenant a column, not part of the key).
    cells = operator(cp, "cohorts", "--tenant", "shop")["cohorts"]
    assert cells and {c["tenant"] for c in cells} == {"shop"} and {c["cohort"] for c in cells} <= {
        "eu/mobile/evening", "all"}
    every = operator(cp, "cohorts")["cohorts"]
    assert {c["tenant"] for c in every} == {"shop", "clinic"}
    # Upstream, every aggregate names its tenant.
    sent = [json.loads(line) for line in (tmp_path / "upstream-edge-shop.jsonl").read_text().splitlines()]
    assert "clinic" not in json.dumps(sent) and '"tenant": "shop"' in json.dumps(sent)
