"""Outbound notifications: one webhook per tenant, signed, retried, durable, logged.

What is sent: a JSON body ``{"id", "type", "created_at", "tenant", "data"}`` for a trend that
fired or cleared (``trend.fired``, ``trend.cleared``), a trigger whose state changed in a cohort
(``trigger.activated``, ``trigger.cleared``) and the operator's ping (``webhook.test``).

How it is signed (the Stripe / Standard Webhooks convention): each attempt carries

    Sentiedge-Event-Id: evt_…            the same on every retry: receivers drop repeats
    Sentiedge-Timestamp: 1767225600      Unix seconds of this attempt
    Sentiedge-Signature: t=1767225600,v1=<hex HMAC-SHA256(secret, "1767225600." + body)>

and a receiver recomputes the HMAC over the timestamp, a dot and the raw body with the secret
``webhooks set`` printed once, compares in constant time, and refuses a timestamp more than five
minutes from its clock (a replay). How it is delivered: the notification is written to the
store's outbox in the transaction that changed the state it reports, so a restart loses none;
a sender claims due rows for a lease (one replica sends each), POSTs with a timeout, and a
2xx answer delivers it; anything else (no answer, a redirect, another status) is retried after
``base · 2^(attempt−1)`` seconds (±10 %), capped, until ``max_attempts`` have failed. Every
attempt is logged (``control-plane webhooks log``).

URLs are http(s) only, without credentials; one whose host resolves to a loopback, private,
link-local or reserved address is refused (at ``set`` and again at each delivery: the name may
move) unless ``CP_WEBHOOK_ALLOW_PRIVATE`` allows it (development and tests).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import random
import secrets
import socket
import ssl
import time
import urllib.parse
from typing import NamedTuple

from control_plane import __version__
from control_plane.errors import InvalidArgument, NotFound
from control_plane.store.webhooks import Hook, Notice, Outgoing

log = logging.getLogger("control_plane.webhooks")
MAX_URL = 2048
MAX_ERROR = 300  # characters of an attempt's error kept in the log
SIGNATURE = "Sentiedge-Signature"
TIMESTAMP = "Sentiedge-Timestamp"
EVENT_ID = "Sentiedge-Event-Id"


def notice(kind: str, tenant: str, data: dict, now: float) -> Notice:
    """A notification, ready for the outbox (its id stays the same on every retry)."""
    event_id = f"evt_{secrets.token_hex(12)}"
    body = json.dumps({"id": event_id, "type": kind, "created_at": now, "tenant": tenant, "data": data},
                      separators=(",", ":"), sort_keys=True)
    return Notice(event_id, kind, body)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for one attempt."""
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, header: str, body: bytes, now: float, tolerance_s: float = 300.0) -> bool:
    """What a receiver does (kept here to document and test it): the signature matches and the
    timestamp is within ``tolerance_s`` of ``now``."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return abs(now - timestamp) <= tolerance_s and hmac.compare_digest(expected, fields.get("v1", ""))


def _private(host: str) -> str | None:
    """The first address ``host`` resolves to that is not globally reachable (loopback, private,
    link-local, shared, reserved, multicast, unspecified), or None."""
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)}
    except OSError as exc:
        raise InvalidArgument(f"webhook host {host!r} does not resolve: {exc.strerror or exc}") from None
    for address in sorted(addresses):
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if not ip.is_global or ip.is_multicast:  # is_global also excludes shared space (100.64/10: cloud metadata)
            return address
    return None


def _resolve_checked(host: str, port: int, allow_private: bool) -> str:
    """The address to connect to: ``host`` resolved once; every address it resolves to must be
    globally reachable unless ``allow_private``."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise OSError(f"{host} does not resolve: {exc.strerror or exc}") from None
    addresses = [str(info[4][0]) for info in infos]
    if not allow_private:
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
            if not ip.is_global or ip.is_multicast:
                raise InvalidArgument(f"refused: {host} resolves to {address}, a private or loopback address")
    return addresses[0]


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def check_url(url: str, allow_private: bool) -> str:
    """The URL if a webhook may be sent there; else InvalidArgument saying what is wrong."""
    url = url.strip()
    if not url:
        raise InvalidArgument("give the webhook's URL (--url https://...)")
    if len(url) > MAX_URL or not url.isprintable() or " " in url:
        raise InvalidArgument(f"the webhook URL must be at most {MAX_URL} printable characters without spaces")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise InvalidArgument(f"the webhook URL must start with https:// or http://, not {parts.scheme or 'nothing'}")
    try:
        parts.port  # noqa: B018 (a bad port raises here)
    except ValueError:
        raise InvalidArgument("the webhook URL's port is not a number in 1..65535") from None
    if not parts.hostname:
        raise InvalidArgument("the webhook URL has no host")
    if parts.username is not None or parts.password is not None:
        raise InvalidArgument("the webhook URL must not carry a user or password: requests are signed instead")
    if parts.fragment:
        raise InvalidArgument("the webhook URL must not have a #fragment")
    if not allow_private and (address := _private(parts.hostname)) is not None:
        raise InvalidArgument(f"the webhook host {parts.hostname} resolves to {address}, a loopback, private or "
                              "reserved address; set CP_WEBHOOK_ALLOW_PRIVATE=true to allow it (development only)")
    return url


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


class HookView(NamedTuple):
    hook: Hook
    secret: str  # only when it was created now: shown once
    pending: int
    failed: int


class WebhookBook:
    """The operator's side: set, list, remove, test, and the log."""

    def __init__(self, store, *, allow_private: bool) -> None:
        self.store = store
        self.allow_private = allow_private

    def set(self, tenant: str, url: str, rotate: bool, now: float) -> HookView:
        url = check_url(url, self.allow_private)
        hook, fresh = self.store.put_webhook(tenant, url, new_secret(), now, rotate)
        return self._view(hook, hook.secret if fresh else "")

    def remove(self, tenant: str, now: float) -> HookView:
        hook = self.store.webhook(tenant)
        if hook is None or not self.store.remove_webhook(tenant, now):
            raise NotFound(f"tenant {tenant} has no webhook")
        return self._view(hook, "")

    def all(self) -> list[HookView]:
        return [self._view(h, "") for h in self.store.webhooks()]

    def test(self, tenant: str, now: float) -> Outgoing:
        if self.store.webhook(tenant) is None:
            raise NotFound(f"tenant {tenant} has no webhook (control-plane webhooks set --tenant {tenant} --url ...)")
        n = notice("webhook.test", tenant, {"message": "a test notification from control-plane webhooks test"}, now)
        self.store.queue_notice(tenant, n, now)
        return next(o for o in self.store.outbox(tenant, 50) if o.event_id == n.event_id)

    def log(self, tenant: str | None, limit: int) -> tuple[list[tuple], list[Outgoing]]:
        limit = max(1, min(limit or 50, 1000))
        return self.store.attempts(tenant, limit), self.store.outbox(tenant, limit)

    def _view(self, hook: Hook, secret: str) -> HookView:
        counts = self.store.outbox_counts()
        return HookView(hook, secret, counts.get((hook.tenant, "pending"), 0), counts.get((hook.tenant, "failed"), 0))


class Sender:
    """Delivers due notifications: one POST per attempt, the outcome logged and scheduled."""

    def __init__(self, store, *, timeout_s: float, base_s: float, max_s: float, max_attempts: int,
                 allow_private: bool) -> None:
        self.store = store
        self.timeout_s = timeout_s
        self.base_s = base_s
        self.max_s = max_s
        self.max_attempts = max_attempts
        self.allow_private = allow_private

    @property
    def lease_s(self) -> float:
        return self.timeout_s + 30.0

    def due(self, now: float, limit: int = 32) -> list[Outgoing]:
        return self.store.claim_due(now, self.lease_s, limit)

    def delay(self, attempts: int) -> float:
        """Seconds before the next try after ``attempts`` failed ones."""
        return min(self.base_s * 2 ** (attempts - 1), self.max_s) * random.uniform(0.9, 1.1)

    def deliver(self, n: Outgoing) -> str:
        """One attempt at one claimed notification; returns its new state."""
        hook = self.store.webhook(n.tenant)
        started, status, error = time.time(), 0, ""
        if hook is None:  # removed while it waited: nothing to send it to
            self.store.record_attempt(n, at=started, url="", status=0, error="webhook removed", duration_ms=0.0,
                                      state="cancelled", next_at=started)
            return "cancelled"
        try:
            status = self._post(hook, n)
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except InvalidArgument as exc:
            error = exc.message
        except (OSError, ValueError) as exc:  # timeouts, resets, a malformed answer
            error = f"no answer: {type(exc).__name__}: {exc}"
        done = time.time()
        attempts = n.attempts + 1
        state = "delivered" if not error else ("failed" if attempts >= self.max_attempts else "pending")
        self.store.record_attempt(n, at=done, url=hook.url, status=status, error=error[:MAX_ERROR],
                                  duration_ms=(done - started) * 1000, state=state,
                                  next_at=done + self.delay(attempts) if state == "pending" else done)
        if error:
            log.warning("webhook %s of tenant %s (%s), attempt %d: %s%s", n.event_id, n.tenant, n.type, attempts,
                        error[:MAX_ERROR], "; giving up" if state == "failed" else "")
        return state

    def _post(self, hook: Hook, n: Outgoing) -> int:
        """POST the notification to the address the host name resolved to when it was checked:
        the connection is pinned to it, so a name that re-resolves elsewhere (DNS rebinding) is
        not followed; TLS still verifies the certificate for the name. Redirects are not followed."""
        parts = urllib.parse.urlsplit(hook.url)
        host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
        address = _resolve_checked(host, port, self.allow_private)
        body = n.body.encode()
        timestamp = int(time.time())
        headers = {"Content-Type": "application/json", "User-Agent": f"sentiedge-control-plane/{__version__}",
                   EVENT_ID: n.event_id, TIMESTAMP: str(timestamp), SIGNATURE: sign(hook.secret, timestamp, body)}
        conn: http.client.HTTPConnection = (
            _PinnedHTTPS(host, port, address, self.timeout_s) if parts.scheme == "https"
            else _PinnedHTTP(host, port, address, self.timeout_s))
        try:
            conn.request("POST", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""), body, headers)
            answer = conn.getresponse()
            answer.read(4096)
            return answer.status
        except http.client.HTTPException as exc:  # a malformed answer
            raise ValueError(f"{type(exc).__name__}: {exc}") from None
        finally:
            conn.close()
