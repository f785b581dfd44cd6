"""A tiny JSON-over-HTTP client for e2e tests (stdlib only, like a plain user's script)."""

import json
import urllib.error
import urllib.request


def call(base: str, method: str, path: str, body=None, timeout: float = 30):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
