"""Edges prove who they are before they may sync, ACK, file or report.

* Under mTLS a node's certificate is its credential: its common name is its node id.
* Without TLS an operator runs ``control-plane nodes --enroll NODE``: a one-time enrollment
  token (expiring) that the edge exchanges, once, for a node secret; the control plane keeps
  only the secret's hash, and the edge presents it on every call (``authorization`` metadata).
* ``nodes --revoke NODE`` ends a credential: the node's open streams close, its certificate
  or secret is refused from then on.
* Plain gRPC with no credential at all is allowed only for a control plane on loopback
  (development, ``make run``), never for a node id that has a credential or was revoked.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
import time

from control_plane.errors import InvalidArgument, PermissionDenied, Unauthenticated
from control_plane.store import Store


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class NodeAuth:
    def __init__(self, store: Store, *, tls: bool, allow_anonymous: bool) -> None:
        self.store = store
        self.tls = tls
        self.allow_anonymous = allow_anonymous  # plain gRPC on loopback, development only

    def enroll(self, node_id: str, ttl_s: float, now: float) -> tuple[str, float]:
        if not 60 <= ttl_s <= 30 * 86400:
            raise InvalidArgument("an enrollment token lives between 60 seconds and 30 days (--ttl)")
        token = f"enr_{secrets.token_urlsafe(24)}"
        self.store.add_enrollment(_hash(token), node_id, now + ttl_s)
        return token, now + ttl_s

    def exchange(self, node_id: str, token: str, now: float) -> str:
        secret = f"ns_{secrets.token_urlsafe(32)}"
        if not token or not self.store.use_enrollment(_hash(token), node_id, _hash(secret), now):
            raise PermissionDenied(f"enrollment token is unknown, used, expired or not for node {node_id!r} "
                                   f"(issue one with: control-plane nodes --enroll {node_id})")
        return secret

    def authenticate(self, claimed: str, certificate_names: list[str], metadata) -> str:
        """The node id this call may act as; refuses anything else."""
        row = self.store.credential(claimed)
        if row is not None and row[2]:
            raise PermissionDenied(f"node {claimed!r} was revoked (control-plane nodes --enroll it again)")
        if self.tls:
            if certificate_names != [claimed]:
                raise PermissionDenied(f"client certificate is for {', '.join(certificate_names) or 'no node'}, "
                                       f"not {claimed!r}")
            return claimed
        secret = bearer(metadata)
        if secret:
            owner = self.store.node_for_secret(_hash(secret))
            if owner is None:
                raise Unauthenticated("unknown or revoked node secret")
            if owner != claimed:
                raise PermissionDenied(f"the node secret is for {owner!r}, not {claimed!r}")
            return claimed
        if row is not None and row[0]:
            raise Unauthenticated(f"node {claimed!r} is enrolled: present its node secret")
        if not self.allow_anonymous:
            raise Unauthenticated("this control plane needs a node credential: enroll the edge "
                                  "(control-plane nodes --enroll NODE, then EDGE_ENROLLMENT_TOKEN) or use mTLS")
        return claimed

    def credential_of(self, node_id: str, now: float | None = None) -> str:
        row = self.store.credential(node_id)
        if self.tls:
            return "revoked" if row is not None and row[2] else "certificate"
        if row is None:
            return "none"
        if row[2]:
            return "revoked"
        if row[0]:
            return "secret"
        # A row can exist for a node that was only quarantined: pending means a live token.
        return "enrollment pending" if self.store.enrollment_pending(node_id, time.time() if now is None else now) \
            else "none"


def bearer(metadata) -> str:
    for key, value in metadata or ():
        if key == "authorization" and value.startswith("Bearer "):
            return value[len("Bearer "):].strip()
    return ""
