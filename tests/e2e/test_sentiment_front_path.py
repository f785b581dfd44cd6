"""POST /v1/sentiment on served edges (uvicorn, real sockets): an edge whose app answers the
happy path in front of the framework and one with EDGE_FAST_PATH=false give the same answers,
whatever way the body arrives (in one piece, over several writes, chunked) and whatever is wrong
with it (over the body limit, declared or streamed; malformed; no credential, a key without the
scope, a foreign origin)."""

import json
import socket
import time

import pytest

KEY = {"x-client-key": "ck_shop"}
ORIGIN = "https://shop.example"
TEXTS = {"texts": ["I loved every minute of it.", "Not bad at all.", "Die App stürzt ständig ab, sehr ärgerlich"]}


@pytest.fixture
def edges(spawn, bundle_dir, tmp_path):
    apps = tmp_path / "apps.json"
    apps.write_text(json.dumps({"apps": [{
        "name": "shop", "app_id": "app_shop", "origins": [ORIGIN], "client_keys": ["ck_shop"],
        "signing_keys": [{"kid": "k1", "alg": "HS256", "secret": "s" * 32}],
        "server_keys": [{"name": "backend", "key": "sk_shop", "scopes": ["events:write"]}]}]}))
    env = {"EDGE_APPS_FILE": str(apps), "EDGE_MAX_BODY_BYTES": "2000", "EDGE_LABEL_SAMPLE_RATE": "0",
           "EDGE_RATE_LIMIT_PER_ADDRESS": "0"}
    _, fast = spawn("edge-node", "serve", "--model-dir", str(bundle_dir), env=env)
    _, route = spawn("edge-node", "serve", "--model-dir", str(bundle_dir), env={**env, "EDGE_FAST_PATH": "false"})
    return fast, route


def exchange(base: str, pieces: list[bytes]) -> tuple[bytes, dict[str, str], bytes]:
    """Send a request in ``pieces`` (a pause between writes); (status line, headers but the date, body)."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        for i, piece in enumerate(pieces):
            if i:
                time.sleep(0.05)
            conn.sendall(piece)
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += conn.recv(65536)
        head, body = answer.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        headers = {k.decode().lower(): v.decode().strip() for k, v in (line.split(b":", 1) for line in lines[1:])}
        while len(body) < int(headers.get("content-length", 0)):
            body += conn.recv(65536)
    headers.pop("date", None)
    return lines[0], headers, body


def request(body: bytes, headers: dict[str, str], *, length: bool = True) -> bytes:
    head = "POST /v1/sentiment HTTP/1.1\r\nHost: edge\r\nContent-Type: application/json\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    head += f"Content-Length: {len(body)}\r\n" if length else "Transfer-Encoding: chunked\r\n"
    return head.encode() + b"\r\n" + (body if length else b"")


def chunked(body: bytes, parts: int) -> list[bytes]:
    size = -(-len(body) // parts)
    chunks = [body[i:i + size] for i in range(0, len(body), size)]
    return [b"%x\r\n%s\r\n" % (len(c), c) for c in chunks] + [b"0\r\n\r\n"]


def test_the_front_path_answers_as_the_route_on_a_served_edge(edges):
    fast, route = edges
    good = json.dumps(TEXTS).encode()
    big = json.dumps({"texts": ["x" * 2500]}).encode()
    cases = {
        "one piece": [request(good, KEY)],
        "several writes": [request(good, KEY)[:-40], request(good, KEY)[-40:-10], request(good, KEY)[-10:]],
        "chunked": [request(good, KEY, length=False), *chunked(good, 3)],
        "declared over the limit": [request(big, KEY)],
        "streamed over the limit": [request(big, KEY, length=False), *chunked(big, 4)],
        "malformed": [request(b'{"texts": ["a"', KEY)],
        "not a list": [request(b'{"texts": "a"}', KEY)],
        "no credential": [request(good, {})],
        "forged key": [request(good, {"x-client-key": "ck_forged"})],
        "server key without the scope": [request(good, {**KEY, "authorization": "Bearer sk_shop"})],
        "from the app's origin": [request(good, {**KEY, "origin": ORIGIN})],
        "from another origin": [request(good, {**KEY, "origin": "https://evil.example"})],
    }
    statuses = {}
    for name, pieces in cases.items():
        answers = [exchange(base, pieces) for base in (fast, route)]
        assert answers[0] == answers[1], name
        statuses[name] = int(answers[0][0].split()[1])
    assert statuses == {"one piece": 200, "several writes": 200, "chunked": 200, "declared over the limit": 413,
                        "streamed over the limit": 413, "malformed": 400, "not a list": 400, "no credential": 401,
                        "forged key": 401, "server key without the scope": 403, "from the app's origin": 200,
                        "from another origin": 403}
    assert exchange(fast, cases["from the app's origin"])[1]["access-control-allow-origin"] == ORIGIN
    results = json.loads(exchange(fast, cases["chunked"])[2])["results"]
    assert [r["label"] for r in results][2] == "unsupported_language" and results[0]["label"] == "positive"
