"""Access control on the served edge (uvicorn, the personalize fast path in front of the app),
every route from its OpenAPI, as an outsider, another user and the app's backend; a
standalone edge configured from an apps file (HS256 and EdDSA keys)."""

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.credentials import DevApp
from tests.e2e.conftest import free_port
from tests.e2e.http import call

ALL = {"sentiment": True, "personalization": True, "cohort_analytics": True}
BODIES = {
    ("PUT", "/v1/users/{user_id}/consent"): {"purposes": ALL, "policy_version": "v1"},
    ("POST", "/v1/users/{user_id}/events"): {"events": [{"type": "view", "item_id": "i", "category": "Books"}]},
    ("POST", "/v1/rank"): {"user_id": "alice", "candidates": [{"id": "a", "category": "Books", "popularity": 1}]},
    ("POST", "/v1/experiments/events"): {"experiment": "x", "kind": "exposure", "user_id": "alice"},
    ("POST", "/v1/sentiment"): {"texts": ["great"]},
    ("POST", "/v1/users/{user_id}/aliases"): {"anonymous_id": "anon-1"},
    ("POST", "/v1/labels"): {"sample_id": "smp-x", "label": "positive"},
}


def routes(edge: str) -> list[tuple[str, str]]:
    spec = call(edge, "GET", "/schema/openapi.json", headers={})[1]
    return sorted((m.upper(), p) for p, ops in spec["paths"].items() for m in ops if p.startswith("/v1/"))


def send(edge, method, path, headers, user="alice"):
    url = path.replace("{user_id}", user) + (f"?user_id={user}" if path == "/v1/personalize" else "")
    body = BODIES.get((method, path))
    if body is not None and "user_id" in body:
        body = {**body, "user_id": user}
    return call(edge, method, url, body, headers=headers)


def test_every_served_route_refuses_outsiders_and_other_users(spawn, bundle_dir, tmp_path):
    _, edge = spawn("edge-node", "serve", "--model-dir", str(bundle_dir),
                    env={"EDGE_RATE_LIMIT_PER_ADDRESS": "0"})
    app = DevApp(next(tmp_path.glob("data-*/dev-app.json")))
    seen = routes(edge)
    assert len(seen) >= 9
    for method, path in seen:
        assert send(edge, method, path, {})[0] == 401, (method, path)
        if path == "/v1/preferences":  # a page, for the user only: its refusals are pages, a server key too
            for who in ({"x-client-key": "ck_forged"}, app.anonymous(), app.user("alice", ttl=-120), app.server()):
                status, page = send(edge, method, path, who)
                assert status == 401 and "cannot be opened" in page, (method, who)
            continue
        assert send(edge, method, path, {"x-client-key": "ck_forged"})[1]["error"] == "unknown_client_key"
        if path != "/v1/sentiment":
            assert send(edge, method, path, app.anonymous())[0] in (401, 403), (method, path)
            assert send(edge, method, path, app.user("mallory"))[0] in (401, 403), (method, path)
            assert send(edge, method, path, app.user("alice", ttl=-120))[1]["error"] == "token_expired"
        status, body = send(edge, method, path, app.server())
        assert status not in (401, 403, 429) and status < 500, (method, path, status, body)
    # The personalize fast path answers the user's own token and refuses everyone else's.
    assert call(edge, "GET", "/v1/personalize?user_id=alice", headers=app.user("alice"))[0] == 200
    assert call(edge, "GET", "/v1/personalize?user_id=alice", headers=app.user("bob"))[1]["error"] == "wrong_user"
    assert call(edge, "GET", "/v1/personalize?region=eu", headers=app.anonymous())[0] == 200


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzzing_the_served_edge_gives_no_5xx_and_nothing_without_a_credential(served_edge, data):
    edge, app, seen = served_edge
    method, path = data.draw(st.sampled_from(seen))
    who = data.draw(st.sampled_from(["none", "forged", "anonymous", "other", "server"]))
    # A forged key is well-formed (printable ASCII): a header with a control character never
    # reaches the app, the HTTP server refuses it (test_a_malformed_header_is_refused_by_the_server).
    forged_key = data.draw(st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40))
    headers = {"none": {}, "forged": {"x-client-key": forged_key, "authorization": "Bearer " + "A" * 50},
               "anonymous": app.anonymous(), "other": app.user("mallory"), "server": app.server()}[who]
    user = data.draw(st.sampled_from(["alice", "x" * 300, "%0a", "bob"]))
    body = data.draw(st.one_of(st.just(BODIES.get((method, path))), st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10),
        lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=3),
        max_leaves=10)))
    url = path.replace("{user_id}", user)
    try:
        status, _ = call(edge, method, url, body, headers=headers)
    except json.JSONDecodeError:
        status = 0  # a non-JSON answer (never expected): fails below
    assert 0 < status < 500, (method, url, who)
    if who in ("none", "forged") or (who in ("anonymous", "other") and path.startswith("/v1/users/")):
        assert status >= 400, (method, url, who, status)


def test_a_malformed_header_is_refused_by_the_server(served_edge):
    edge, _, _ = served_edge
    host, port = edge.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(b"DELETE /v1/users/alice HTTP/1.1\r\nHost: x\r\nX-Client-Key: \x08\r\n\r\n")
        answer = conn.recv(4096)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:80]


def test_a_standalone_edge_reads_its_apps_from_a_file(spawn, bundle_dir, tmp_path):
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    secret = "s" * 40
    apps_file = tmp_path / "apps.json"
    apps_file.write_text(json.dumps({"apps": [{
        "name": "shop", "app_id": "app_shop", "origins": ["https://shop.example"], "client_keys": ["ck_shop"],
        "signing_keys": [{"kid": "hs", "alg": "HS256", "secret": secret},
                         {"kid": "ed", "alg": "EdDSA", "public_key": public}],
        "server_keys": [{"name": "backend", "key": "sk_shop", "scopes": ["events:write"]}]}]}))
    _, edge = spawn("edge-node", "serve", "--model-dir", str(bundle_dir), env={"EDGE_APPS_FILE": str(apps_file)})
    assert not (tmp_path / next(tmp_path.glob("data-*")).name / "dev-app.json").exists()  # no development app
    claims = {"sub": "ann", "aud": "app_shop", "exp": int(time.time()) + 600,
              "consent": {"purposes": ALL, "policy_version": "v1", "at": time.time()}}
    for kid, key, alg in (("hs", secret, "HS256"), ("ed", private, "EdDSA")):
        token = jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})
        headers = {"x-client-key": "ck_shop", "authorization": f"Bearer {token}"}
        status, body = call(edge, "POST", "/v1/users/ann/events",
                            {"events": [{"type": "purchase", "item_id": "a", "category": "Books"}]}, headers=headers)
        assert status == 200 and body["accepted"] == 1, (alg, body)
    backend = {"x-client-key": "ck_shop", "authorization": "Bearer sk_shop"}
    assert call(edge, "POST", "/v1/users/ann/events", {"events": [{"type": "view", "item_id": "b", "category": "x"}]},
                headers=backend)[0] == 200
    assert call(edge, "DELETE", "/v1/users/ann", headers=backend)[1]["error"] == "missing_scope"
    # A broken file stops the edge at start with a message naming it.
    bad = tmp_path / "bad.json"
    bad.write_text('{"apps": [{"name": "x", "client_keys": []}]}')
    out = subprocess.run([str(Path(sys.executable).parent / "edge-node"), "serve", "--port", str(free_port())],
                         env={"EDGE_APPS_FILE": str(bad), "EDGE_DATA_DIR": str(tmp_path / "bad-data"),
                              "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "no client_keys" in out.stderr + out.stdout
