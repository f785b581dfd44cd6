"""Privacy terms both services use alike: the consent purposes, the kinds of privacy request
(numbered as on the wire), request ids and the keyed pseudonym of a user id."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections import OrderedDict

PURPOSES = ("sentiment", "personalization", "cohort_analytics")
DELETE_USER = 1  # sentiedge.v1.PrivacyKind values
REVOKE_CONSENT = 2
KINDS = {"delete_user": DELETE_USER, "revoke_consent": REVOKE_CONSENT}
POLICY_VERSION_MAX_CHARS = 64


def policy_version_problem(value: str) -> str:
    """What is wrong with a consent's policy version ('' when nothing): 1 to 64 printable
    characters (no control characters, not only spaces). Every way a policy version enters
    (a consent body, a token's consent claim, a filing from an edge) is held to it."""
    if not value.strip():
        return "policy_version is empty"
    if len(value) > POLICY_VERSION_MAX_CHARS:
        return f"policy_version has {len(value)} characters; at most {POLICY_VERSION_MAX_CHARS}"
    if not value.isprintable():
        return "policy_version has a control or non-printable character; only printable characters"
    return ""


TENANT_SEPARATOR = "\x1f"  # user ids never hold control characters (both services refuse them)


def tenant_user(tenant: str, user_id: str, legacy_tenant: str = "") -> str:
    """The name a tenant's user is pseudonymized under: the same user id in two tenants is two
    people. The legacy tenant (the one app of a deployment from before tenants) keeps the bare
    id, so what was written then stays reachable; user ids hold no control characters, so no
    bare id can collide with a scoped one."""
    if legacy_tenant and tenant == legacy_tenant:
        return user_id
    return f"{tenant}{TENANT_SEPARATOR}{user_id}"


def new_request_id() -> str:
    return f"req-{uuid.uuid4().hex}"


class Pseudonymizer:
    """HMAC-SHA256 of a user id with the deployment's key: every edge and the control plane
    name a user the same way without anyone storing the id. Hot ids are cached in memory."""

    def __init__(self, key: bytes, cache_size: int = 100_000) -> None:
        self._key = key
        self._known: OrderedDict[str, str] = OrderedDict()  # in memory only, for hot users
        self._cache_size = cache_size

    def __call__(self, user_id: str) -> str:
        subject = self._known.get(user_id)
        if subject is None:
            subject = hmac.new(self._key, user_id.encode(), hashlib.sha256).hexdigest()[:32]
            self._known[user_id] = subject
            if len(self._known) > self._cache_size:
                self._known.popitem(last=False)
        return subject
