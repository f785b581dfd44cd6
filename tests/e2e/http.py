"""A tiny JSON-over-HTTP client for e2e tests (stdlib only, like a plain user's script).

Requests to an edge carry the credentials registered for it (``CREDENTIALS[base]``: the
headers of the app's backend, a server key with every scope) unless ``headers`` is given;
``headers={}`` sends none, as an outsider would. A page (text/html, the preference center)
comes back as its text."""

import json
import urllib.error
import urllib.request

CREDENTIALS: dict[str, dict[str, str]] = {}


def call(base: str, method: str, path: str, body=None, timeout: float = 30, headers: dict | None = None):
    status, answer, _ = call_with_headers(base, method, path, body, timeout, headers)
    return status, answer


def call_with_headers(base: str, method: str, path: str, body=None, timeout: float = 30,
                      headers: dict | None = None):
    """(status, body, response headers with lower-case names)."""
    data = None if body is None else json.dumps(body).encode()
    sent = {"content-type": "application/json", **(CREDENTIALS.get(base, {}) if headers is None else headers)}
    req = urllib.request.Request(base + path, data=data, method=method, headers=sent)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, _body(r), {k.lower(): v for k, v in r.headers.items()}
    except urllib.error.HTTPError as exc:
        return exc.code, _body(exc), {k.lower(): v for k, v in exc.headers.items()}


def _body(response):
    raw = response.read()
    if (response.headers.get("content-type") or "").startswith("text/html"):
        return raw.decode()
    return json.loads(raw)
