"""Two brands on one control plane and one edge: each app's keys and tokens reach its own
tenant's users only. App B signs a token for the same user id as app A's user and tries
everything a user-scoped route allows; a third app grouped with A (`--tenant shop`) shares
A's users; an operator's deletion names the tenant it erases in."""

import subprocess
import time

import jwt
import pytest

from tests.e2e.cluster import CLI, cp_env, edge_env, eventually, operator, operator_args
from tests.e2e.http import call

pytestmark = pytest.mark.e2e

USER = "x@example.com"
ALL = {"sentiment": True, "personalization": True, "cohort_analytics": True}


class Client:
    """An app as its backend and its signed-in users would call the edge."""

    def __init__(self, cp: str, name: str, *extra: str) -> None:
        added = operator(cp, "apps", "add", name, *extra)
        self.app_id, self.kid, self.client_key = added["app_id"], added["kid"], added["client_key"]
        self.private_key = added["private_key"]
        assert added["alg"] == "EdDSA" and self.private_key and not added["signing_secret"]

    def token(self, user: str) -> str:
        now = int(time.time())
        return jwt.encode({"sub": user, "aud": self.app_id, "exp": now + 600}, self.private_key, algorithm="EdDSA",
                          headers={"kid": self.kid})

    def user(self, user: str) -> dict:
        return {"x-client-key": self.client_key, "authorization": f"Bearer {self.token(user)}"}


def test_apps_of_two_tenants_never_reach_each_others_users(spawn, bundle_dir, tmp_path):
    _, cp = spawn("control-plane", "serve", env=cp_env())
    shop, clinic = Client(cp, "shop"), Client(cp, "clinic")
    shop_ios = Client(cp, "shop-ios", "--tenant", "shop")
    _, edge = spawn("edge-node", "serve", "--model-dir", str(bundle_dir), env=edge_env(cp, "edge-a", tmp_path))
    eventually(lambda: call(edge, "GET", "/v1/personalize", headers={"x-client-key": clinic.client_key})[0] == 200,
               what="the apps to reach the edge")

    a, b = shop.user(USER), clinic.user(USER)
    consent = {"purposes": ALL, "policy_version": "v1"}
    assert call(edge, "PUT", f"/v1/users/{USER}/consent", consent, headers=a)[0] == 200
    status, _ = call(edge, "POST", f"/v1/users/{USER}/events", {"events": [
        {"type": "purchase", "item_id": "kit-1", "category": "Health/SelfTest", "text": "discreet and fast"}]},
        headers=a)
    assert status == 200
    vector = call(edge, "GET", f"/v1/users/{USER}/vector", headers=a)[1]
    assert vector["affinities"][0]["category"] == "Health/SelfTest"

    # The other brand's valid token for the same id reaches another person, who has nothing.
    assert call(edge, "GET", f"/v1/users/{USER}/vector", headers=b)[0] == 404
    consent = call(edge, "GET", f"/v1/users/{USER}/consent", headers=b)[1]
    assert not any(p["granted"] for p in consent["purposes"].values())
    decided = call(edge, "GET", f"/v1/personalize?user_id={USER}", headers=b)[1]
    assert decided["source"] != "user" and "Health" not in str(decided)
    ranked = call(edge, "POST", "/v1/rank", {"user_id": USER, "candidates": [
        {"id": "kit-2", "category": "Health/SelfTest", "popularity": 1},
        {"id": "mug", "category": "Home", "popularity": 5}]}, headers=b)[1]
    assert "Health" not in " ".join(i["reason"] for i in ranked["items"])
    page = call(edge, "GET", f"/v1/preferences?client_key={clinic.client_key}&token={clinic.token(USER)}",
                headers={})[1]
    assert "SelfTest" not in page and "Health" not in page
    # Its writes and its erasure land on its own user, never on the shop's.
    assert call(edge, "PUT", f"/v1/users/{USER}/consent", {"purposes": ALL, "policy_version": "c1"}, headers=b)[0] \
        == 200
    status, report = call(edge, "POST", f"/v1/users/{USER}/events", {"events": [
        {"type": "purchase", "item_id": "k", "category": "Casino", "text": "fun"}] * 5}, headers=b)
    assert status == 200 and report["accepted"] == 5  # accepted: for the clinic's own user
    assert call(edge, "GET", f"/v1/users/{USER}/vector", headers=b)[1]["affinities"][0]["category"] == "Casino"
    assert call(edge, "DELETE", f"/v1/users/{USER}", headers=b)[0] == 200
    after = call(edge, "GET", f"/v1/users/{USER}/vector", headers=a)[1]
    assert [x["category"] for x in after["affinities"]] == ["Health/SelfTest"]
    assert call(edge, "GET", f"/v1/users/{USER}/consent", headers=a)[1]["purposes"]["personalization"]["granted"]
    # Mixing one app's client key with the other's token is refused outright.
    mixed = {"x-client-key": clinic.client_key, "authorization": a["authorization"]}
    assert call(edge, "GET", f"/v1/users/{USER}/vector", headers=mixed)[0] == 403

    # An app grouped into the shop's tenant shares its users.
    assert call(edge, "GET", f"/v1/users/{USER}/vector", headers=shop_ios.user(USER))[1]["affinities"] \
        == after["affinities"]

    # The operator names the tenant: the clinic's deletion leaves the shop's user alone.
    listed = {a["name"]: a["tenant"] for a in operator(cp, "apps", "list")["apps"]}
    assert (listed["shop"], listed["clinic"], listed["shop-ios"]) == ("shop", "clinic", "shop")
    unnamed = subprocess.run([CLI, *operator_args(cp), "privacy", "delete", USER], capture_output=True, text=True,
                             timeout=60)
    assert unnamed.returncode == 1 and "--tenant" in unnamed.stderr and len(unnamed.stderr.splitlines()) == 1
    done = operator(cp, "privacy", "delete", USER, "--tenant", "clinic")
    eventually(lambda: operator(cp, "privacy", "status", done["request_id"])["state"] == "completed",
               what="the clinic's deletion to be applied")
    assert call(edge, "GET", f"/v1/users/{USER}/vector", headers=a)[0] == 200
    done = operator(cp, "privacy", "delete", USER, "--tenant", "shop")
    eventually(lambda: call(edge, "GET", f"/v1/users/{USER}/vector", headers=a)[0] == 404,
               what="the shop's deletion to reach the edge")
    assert call(edge, "GET", f"/v1/users/{USER}/vector", headers=shop_ios.user(USER))[0] == 404
