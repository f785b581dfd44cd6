"""A control plane and two edges on loopback: a visitor browses anonymously on both, logs in
on one; deleting the user there erases the anonymous id on the other edge too, and only
pseudonyms go upstream."""

import pytest

from tests.credentials import DevApp
from tests.e2e.cluster import cp_env, edge_env, eventually, has_vector, operator, profile
from tests.e2e.http import CREDENTIALS, call

pytestmark = pytest.mark.e2e


def test_a_deletion_reaches_the_anonymous_id_on_every_edge(spawn, bundle_dir, tmp_path):
    _, cp = spawn("control-plane", "serve", env=cp_env())
    urls = {}
    for node_id in ("edge-a", "edge-b"):
        urls[node_id] = spawn("edge-node", "serve", "--model-dir", str(bundle_dir),
                              env=edge_env(cp, node_id, tmp_path))[1]
    eventually(lambda: sum(n["state"] == "connected" for n in operator(cp, "nodes")["nodes"]) == 2, what="2 nodes")
    a, b = urls["edge-a"], urls["edge-b"]
    dev = DevApp(next(p for p in tmp_path.glob("cp-*/dev-app.json")))
    anonymous, user = "anon-5c1e9d", "ines@example.com"

    profile(b, anonymous, "browsing garden tools, the pruning shears look sturdy")  # seen only on edge-b
    profile(a, anonymous, "these gloves are lovely")
    profile(a, user, "my account page")
    status, link = call(a, "POST", f"/v1/users/{user}/aliases",
                        {"anonymous_id": anonymous, "anonymous_token": dev.token(anonymous)},
                        headers={**dev.user(user), "content-type": "application/json"})
    assert status == 200 and link["merged"][0] == "profile", link
    assert call(a, "GET", f"/v1/users/{user}/vector")[1]["events"] == 2
    assert has_vector(b, anonymous)  # edge-b never heard of the link

    status, erasure = call(a, "DELETE", f"/v1/users/{user}")
    assert status == 200 and "aliases" in erasure["erased"]
    eventually(lambda: not has_vector(b, anonymous), what="the alias's deletion to reach edge-b")
    assert not has_vector(a, anonymous) and not has_vector(a, user)

    # The control plane recorded two deletions (the user and the alias), both completed by both edges.
    def completed_deletions():
        listed = operator(cp, "privacy", "list")["requests"]
        return [x for x in listed if "DELETE" in str(x["kind"]).upper() and x["state"] == "completed"]

    done = eventually(lambda: len(completed_deletions()) == 2 and completed_deletions(), what="both deletions "
                      "completed by both edges")
    assert erasure["request_id"] in {x["request_id"] for x in done}
    assert all(x["origin_node"] == "edge-a" for x in done)
    sent = "".join((tmp_path / f"upstream-{n}.jsonl").read_text() for n in urls)
    assert '"filing"' in sent
    for forbidden in (anonymous, user, "pruning", "gloves"):
        assert forbidden not in sent, forbidden
    assert CREDENTIALS[a]  # the backend's server key was what the test's other calls carried
