"""The privacy ledger: consent revocations and deletions, an append-only log with receipts.

Operators name users by their raw id; it is pseudonymized (HMAC-SHA256 with the
deployment's key, the same one the edges use) before anything is stored. A request is
``pending`` until a node acknowledges it, ``in_progress`` while nodes that were registered
when it was filed are still missing, ``completed`` once every one of them (decommissioned
nodes aside) has sent its receipt.
"""

from __future__ import annotations

import hashlib

import msgspec

from control_plane.errors import InvalidArgument, NotFound
from control_plane.store import PrivacyEntry, Store
from sentiedge_core.privacy import (
    DELETE_USER,
    PURPOSES,
    REVOKE_CONSENT,
    Pseudonymizer,
    new_request_id,
    policy_version_problem,
)

__all__ = ["check_user_id", "DELETE_USER", "REVOKE_CONSENT", "PURPOSES", "new_request_id", "Ledger", "RequestStatus",
           "pseudonymize"]


class RequestStatus(msgspec.Struct, kw_only=True):
    entry: PrivacyEntry
    state: str
    receipts: list[tuple[str, float]]
    missing: list[str]
    completed_at: float


def check_user_id(user_id: str) -> None:
    if not user_id.strip():
        raise InvalidArgument("user_id is empty")
    if len(user_id) > 256:
        raise InvalidArgument("user_id is longer than 256 characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in user_id):
        raise InvalidArgument("user_id contains control characters")


def pseudonymize(key: bytes, user_id: str) -> str:
    """The edges' keyed hash (sentiedge_core.privacy.Pseudonymizer), so both name a user alike."""
    return Pseudonymizer(key)(user_id)


class Ledger:
    def __init__(self, store: Store, key: bytes) -> None:
        self.store = store
        self.pseudonymize = Pseudonymizer(key)

    def _user(self, user_id: str) -> str:
        """``user_id`` is scoped to its tenant already (sentiedge_core.privacy.tenant_user)."""
        if not user_id.strip():
            raise InvalidArgument("user_id is empty")
        if len(user_id) > 320:  # 256 for the id, the rest for its tenant's name
            raise InvalidArgument("user_id (with its tenant) is longer than 320 characters")
        return self.pseudonymize(user_id)

    def delete(self, user_id: str, now: float, idempotency_key: str = "") -> PrivacyEntry:
        subject = self._user(user_id)
        entry, _ = self.store.append_privacy(self._request_id(idempotency_key, DELETE_USER, subject, []),
                                             DELETE_USER, subject, [], now, "", now)
        return entry

    def _request_id(self, key: str, kind: int, subject: str, purposes: list[str]) -> str:
        """A fresh id, or the one an idempotency key names: a retry with the same key gets the
        request it made first (a client that saw its call fail cannot file it twice)."""
        if not key:
            return new_request_id()
        if len(key) > 200:
            raise InvalidArgument("idempotency_key is longer than 200 characters")
        request_id = "req-" + hashlib.sha256(key.encode()).hexdigest()[:32]
        earlier = self.store.privacy_entry(request_id)
        if earlier is not None and (earlier.kind, earlier.subject, sorted(earlier.purposes)) != (
                kind, subject, sorted(purposes)) and earlier.subject:
            raise InvalidArgument(f"idempotency_key was already used for another request ({request_id})")
        return request_id

    def compact(self, now: float, after_s: float) -> tuple[int, int]:
        """Compact the log's prefix that every node applied, filed more than ``after_s`` ago."""
        return self.store.compact_privacy(now - after_s, now)

    def revoke(self, user_id: str, purposes: list[str], now: float, idempotency_key: str = "") -> PrivacyEntry:
        if not purposes:
            raise InvalidArgument(f"name at least one purpose to revoke ({', '.join(PURPOSES)})")
        unknown = sorted(set(purposes) - set(PURPOSES))
        if unknown:
            raise InvalidArgument(f"unknown purpose {unknown[0]!r}; purposes are {', '.join(PURPOSES)}")
        subject, purposes = self._user(user_id), sorted(set(purposes))
        entry, _ = self.store.append_privacy(self._request_id(idempotency_key, REVOKE_CONSENT, subject, purposes),
                                             REVOKE_CONSENT, subject, purposes, now, "", now)
        return entry

    def file(self, request_id: str, kind: int, subject: str, purposes: list[str], at: float, origin: str,
             now: float, policy_version: str = "") -> tuple[PrivacyEntry, bool]:
        """A request made at an edge (already pseudonymized there). Idempotent by request id. A
        withdrawal keeps the policy version the user withdrew under ("" when none was given), and
        the other edges record it with the withdrawal."""
        if kind not in (DELETE_USER, REVOKE_CONSENT):
            raise InvalidArgument(f"unknown privacy request kind {kind}")
        if not request_id or len(subject) != 32 or any(c not in "0123456789abcdef" for c in subject):
            raise InvalidArgument("a filed request needs a request id and a pseudonymized subject (32 hex characters)")
        if kind == REVOKE_CONSENT and (not purposes or set(purposes) - set(PURPOSES)):
            raise InvalidArgument(f"a revocation names purposes from {', '.join(PURPOSES)}")
        if policy_version and policy_version_problem(policy_version):
            raise InvalidArgument(f"a filed request's {policy_version_problem(policy_version)}")
        if kind == DELETE_USER:
            policy_version = ""  # a deletion withdraws no grant: nothing to record it with
        # The same subject and kind (and no new purpose) while an earlier one is still pending:
        # that one already reaches every edge, so a flood of repeats adds nothing to the log.
        for entry in self.store.privacy_for_subject(subject, kind):
            if set(purposes) <= set(entry.purposes) and entry.policy_version == policy_version \
                    and self.status_of(entry).state != "completed":
                return entry, False
        return self.store.append_privacy(request_id, kind, subject, purposes, at, origin, now, policy_version)

    def status(self, request_id: str) -> RequestStatus:
        entry = self.store.privacy_entry(request_id)
        if entry is None:
            raise NotFound(f"no privacy request {request_id!r}")
        return self.status_of(entry)

    def status_of(self, entry: PrivacyEntry) -> RequestStatus:
        receipts = self.store.receipts(entry.seq)
        got = {node for node, _ in receipts}
        required = self.store.required(entry.seq)
        missing = [n for n in required if n not in got]
        if not missing:
            state = "completed"
        elif got & set(required):
            state = "in_progress"
        else:
            state = "pending"
        completed_at = max((at for node, at in receipts if node in required), default=entry.created_at) \
            if state == "completed" else 0.0
        return RequestStatus(entry=entry, state=state, receipts=receipts, missing=missing, completed_at=completed_at)

    def recent(self, limit: int) -> list[RequestStatus]:
        return [self.status_of(e) for e in self.store.privacy_recent(max(1, min(limit or 50, 1000)))]

