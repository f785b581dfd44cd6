"""Consent (default-deny, per purpose) and erasure on this node.

User ids never reach the disk: every record is keyed by a keyed hash (HMAC-SHA256) of
the id. The key is ``EDGE_PSEUDONYM_KEY`` when set — share it across a deployment's edges
so they and the control plane name a user the same way — or a random key kept in the
data directory.

Withdrawing a purpose erases what it allowed, at once: ``personalization`` the profile,
``sentiment`` everything derived from the user's texts, ``cohort_analytics`` the user's
contributions to open cohort windows and to the open windows' item co-occurrence counts.
Every withdrawal and deletion is also queued to be filed with the control plane, so it reaches
the other edges the user may have visited.

Identity: an anonymous id linked to a known user (edge_node.identity) reaches the user's
records from then on (:meth:`PrivacyBook.subject_of`). A deletion or withdrawal of the user
cascades to every linked anonymous id: erased here and filed upstream under its own
pseudonym, so edges that saw only the anonymous id erase it too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import msgspec

from edge_node.disk import DiskReserve
from edge_node.errors import InvalidInput, StorageFull
from edge_node.metrics import EdgeMetrics
from edge_node.node_state import NodeState
from edge_node.personalization import profiles as personalization
from edge_node.personalization.cohorts import CohortBook
from edge_node.personalization.cooccurrence import PairBook
from edge_node.personalization.segments import SegmentBook
from edge_node.records import PURPOSES, Consent, Grant, PrivacyRequest, Suppression
from edge_node.store import EdgeStore
from sentiedge_core.privacy import DELETE_USER, Pseudonymizer, new_request_id, policy_version_problem

__all__ = ["Pseudonymizer", "new_request_id", "ConsentChange", "Erasure", "PrivacyBook", "PrivacyLog"]
log = logging.getLogger("edge_node.sync")


def _version(given: str | None, previous: Grant | None) -> str:
    """The policy version a choice records: the one given, else the purpose's recorded one."""
    if given is not None:
        return given
    return previous.policy_version if previous is not None else ""


class ConsentChange(msgspec.Struct, kw_only=True):
    consent: Consent
    withdrawn: list[str]
    erased: list[str]
    request_id: str | None  # set when something was withdrawn


class Erasure(msgspec.Struct, kw_only=True):
    request_id: str
    erased: list[str]
    suppressed_at: float


class PrivacyBook:
    def __init__(self, store: EdgeStore, cohorts: CohortBook, pseudonymize: Pseudonymizer, *,
                 upstream: bool = True, reserve: DiskReserve | None = None,
                 segments: SegmentBook | None = None, pairs: PairBook | None = None) -> None:
        self.store = store
        self.reserve = reserve  # released when the disk is full, so an erasure still succeeds
        # A standalone edge has no control plane to file with: its requests apply here only.
        self.upstream = upstream
        self.cohorts = cohorts
        self.segments = segments
        self.pairs = pairs
        self.pseudonymize = pseudonymize

    def subject_of(self, user_id: str) -> str:
        """The pseudonym whose records a user id reaches: its own, or that of the known user
        an anonymous id was linked to."""
        subject = self.pseudonymize(user_id)
        alias = self.store.alias(subject)
        return subject if alias is None else alias.user

    def consent(self, user_id: str) -> Consent:
        return self.store.consent(self.subject_of(user_id))

    def set_consent(self, user_id: str, purposes: dict[str, bool], policy_version: str | None, at: float,
                    now: float) -> ConsentChange:
        """A user's choice (a consent body, a token's consent claim, the preference center).
        ``policy_version`` is what the user agreed to, 1-64 printable characters; None: each
        purpose keeps the version recorded for it (none recorded: "")."""
        unknown = sorted(set(purposes) - set(PURPOSES))
        if unknown:
            raise InvalidInput(f"unknown purpose {unknown[0]!r}; purposes are {', '.join(PURPOSES)}",
                               field=f"purposes.{unknown[0]}")
        problem = policy_version_problem(policy_version) if policy_version is not None else ""
        if problem:
            raise InvalidInput(problem, field="policy_version")
        return self.set_subject_consent(self.subject_of(user_id), purposes, policy_version, at, now)

    def set_subject_consent(self, subject: str, purposes: dict[str, bool], policy_version: str | None, at: float,
                            now: float, *, request_id: str | None = None, file_upstream: bool = True,
                            after=None) -> ConsentChange:
        """``after`` runs inside the same transaction (the sync agent persists its cursor there).
        ``policy_version`` None: each purpose keeps the policy version recorded for it — a
        withdrawal replayed from the control plane without one (an operator's request) never
        rewrites what the user agreed to."""
        def change() -> ConsentChange:
            return self._set_subject_consent(subject, purposes, policy_version, at, now, request_id=request_id,
                                             file_upstream=file_upstream, after=after)

        return self._must_succeed(change) if not all(purposes.values()) else change()

    def _must_succeed(self, write):
        """A deletion or withdrawal: on a full disk the reserve is released and it is retried."""
        with self.store.essential():
            try:
                return write()
            except StorageFull:
                if self.reserve is None or not self.reserve.release():
                    raise
                return write()

    def _set_subject_consent(self, subject: str, purposes: dict[str, bool], policy_version: str | None, at: float,
                             now: float, *, request_id: str | None, file_upstream: bool, after) -> ConsentChange:
        with self.store.transaction():
            consent = self.store.consent(subject)
            withdrawn = []
            suppression = self.store.suppression(subject)
            for purpose, granted in purposes.items():
                previous = consent.purposes.get(purpose)
                if previous is not None and previous.at > at:
                    continue  # an older choice arriving late never overrides a newer one
                if granted and suppression is not None and at <= suppression.at:
                    continue  # a grant from before a deletion (an old token, say) never brings the user back
                if previous is not None and previous.granted and not granted:
                    withdrawn.append(purpose)
                consent.purposes[purpose] = Grant(granted=granted, at=at,
                                                  policy_version=_version(policy_version, previous))
            # A fresh grant after a deletion starts a new relationship. The suppression stays:
            # it drops only events stamped at or before the deletion, which must never come back.
            self.store.put_consent(subject, consent)
            erased = self._erase_for(subject, withdrawn, now)
            if withdrawn:
                request_id = request_id or new_request_id()
                if file_upstream and self.upstream:
                    self.store.queue_request(PrivacyRequest(request_id=request_id, kind="revoke_consent",
                                                            subject=subject, purposes=withdrawn, at=now,
                                                            policy_version=policy_version or ""))
                for alias in self.store.aliases_of(subject):
                    self._withdraw_alias(alias, withdrawn, policy_version, at, now)
            if after is not None:
                after()
        return ConsentChange(consent=consent, withdrawn=withdrawn, erased=erased,
                             request_id=request_id if withdrawn else None)

    def _withdraw_alias(self, alias: str, withdrawn: list[str], policy_version: str | None, at: float,
                        now: float) -> None:
        """A withdrawal cascades to a linked anonymous id: its own consent record, what it
        allowed here, and (filed under its pseudonym) on the edges that saw only it."""
        consent = self.store.consent(alias)
        for purpose in withdrawn:
            if consent.allows(purpose):
                consent.purposes[purpose] = Grant(granted=False, at=at,
                                                  policy_version=_version(policy_version, consent.purposes[purpose]))
        if consent.purposes:
            self.store.put_consent(alias, consent)
        self._erase_for(alias, withdrawn, now)
        if self.upstream:
            self.store.queue_request(PrivacyRequest(request_id=new_request_id(), kind="revoke_consent",
                                                    subject=alias, purposes=withdrawn, at=now,
                                                    policy_version=policy_version or ""))

    def _erase_for(self, subject: str, withdrawn: list[str], now: float) -> list[str]:
        erased = []
        if "personalization" in withdrawn and self.store.delete(f"profile|{subject}"):
            erased.append("profile")
        if "personalization" in withdrawn and self.store.delete(f"shown|{subject}"):
            erased.append("recent_reasons")
        if "personalization" in withdrawn and self.store.delete(f"explored|{subject}"):
            erased.append("explored_items")
        if "sentiment" in withdrawn:
            profile = self.store.profile(subject)
            if profile is not None:
                personalization.forget_sentiment(profile)
                self.store.put_profile(subject, profile)
                erased.append("sentiment")
            if self.store.forget_samples(subject):
                erased.append("quality_samples")
        if "cohort_analytics" in withdrawn and self.cohorts.withdraw(subject, now):
            erased.append("cohort_contributions")
        if "cohort_analytics" in withdrawn and self._leave_pairs(subject, now):
            erased.append("cooccurrence_contributions")
        # Segment sums hold the profile's vector and leave the node: either purpose takes them out.
        if {"cohort_analytics", "personalization"} & set(withdrawn) and self._leave_segments(subject, now):
            erased.append("segment_membership")
        return erased

    def _leave_segments(self, subject: str, now: float) -> int:
        return self.segments.withdraw(subject, now) if self.segments is not None else 0

    def _leave_pairs(self, subject: str, now: float) -> int:
        return self.pairs.withdraw(subject, now) if self.pairs is not None else 0

    def delete_user(self, user_id: str, now: float, *, request_id: str | None = None,
                    file_upstream: bool = True) -> Erasure:
        """Erase everything derived from the user here and suppress late events."""
        subject = self.subject_of(user_id)
        return self.delete_subject(subject, now, request_id=request_id, file_upstream=file_upstream)

    def delete_subject(self, subject: str, now: float, *, request_id: str | None = None,
                       file_upstream: bool = True, after=None) -> Erasure:
        request_id = request_id or new_request_id()
        return self._must_succeed(lambda: self._delete_subject(subject, now, request_id, file_upstream, after))

    def _unlink(self, alias: str) -> None:
        """A deleted anonymous id stops reaching the user it was linked to (what it brought
        before the link is the user's now, and goes with the user's own deletion)."""
        self.store.unlink(alias)

    def _delete_subject(self, subject: str, now: float, request_id: str, file_upstream: bool, after) -> Erasure:
        with self.store.transaction():
            erased = self.store.erase_user(subject)
            if self.cohorts.withdraw(subject, now):
                erased.append("cohort_contributions")
            if self._leave_segments(subject, now):
                erased.append("segment_membership")
            if self._leave_pairs(subject, now):
                erased.append("cooccurrence_contributions")
            self.store.suppress(subject, Suppression(at=now, request_id=request_id, reason="deleted"))
            if file_upstream and self.upstream:
                self.store.queue_request(PrivacyRequest(request_id=request_id, kind="delete_user",
                                                        subject=subject, at=now))
            self._unlink(subject)
            aliases = self.store.unlink_all(subject)
            for alias in aliases:  # every anonymous id linked to the user goes with it
                self.store.erase_user(alias)
                self.cohorts.withdraw(alias, now)
                self._leave_segments(alias, now)
                self._leave_pairs(alias, now)
                self.store.suppress(alias, Suppression(at=now, request_id=request_id, reason="deleted"))
                if self.upstream:
                    self.store.queue_request(PrivacyRequest(request_id=new_request_id(), kind="delete_user",
                                                            subject=alias, at=now))
            if aliases:
                erased.append("aliases")
            if after is not None:
                after()
        return Erasure(request_id=request_id, erased=erased, suppressed_at=now)


class PrivacyLog:
    """The control plane's privacy log applied on this node: every update exactly once and in
    order, the cursor (in the node state) moved in the same store transaction as the erasure or
    withdrawal it records."""

    def __init__(self, privacy: PrivacyBook, state: NodeState, metrics: EdgeMetrics,
                 clock: Callable[[], float] = time.time) -> None:
        self.privacy = privacy
        self.state = state
        self.metrics = metrics
        self.clock = clock

    def apply_update(self, seq: int, kind: int, subject: str, purposes: list[str], at: float,
                     request_id: str, policy_version: str = "") -> str | None:
        """The privacy log's update ``seq``, applied exactly once and in order: None when it may
        be acknowledged (applied now, or a replay of one applied before: its receipt is sent
        again, nothing is applied twice), else why it was refused with nothing written (a gap
        in the sequence, or a store that failed; the control plane sends it again)."""
        cursor = self.state.privacy_cursor
        if seq <= cursor:
            log.warning("privacy update %d replayed (cursor %d): not applied again, receipt resent", seq, cursor)
            return None
        if seq != cursor + 1:
            log.error("privacy update %d out of order (cursor %d): refused", seq, cursor)
            return f"out of order: expected sequence {cursor + 1}, got {seq}; nothing applied"
        try:
            self._apply(seq, kind, subject, purposes, at, request_id,
                        lambda: setattr(self.state, "privacy_cursor", seq), policy_version=policy_version)
        except Exception as exc:  # the store failed: refused, the cursor stays, sent again on reconnect
            log.exception("could not apply privacy update %d", seq)
            return str(exc) or type(exc).__name__
        return None

    def _apply(self, seq: int, kind: int, subject: str, purposes: list[str], at: float, request_id: str,
               after: Callable[[], None], policy_version: str = "") -> None:
        """Erase a subject or withdraw consent as the log says, ``after`` in the same transaction
        (the cursor). A withdrawal records the policy version the user withdrew under (filed by
        the edge where they did); an operator's request carries none, and each purpose keeps the
        version the user last agreed to. Raises when the store fails: nothing applied, the update
        is refused."""
        now = self.clock()
        if kind == DELETE_USER:
            self.privacy.delete_subject(subject, now, request_id=request_id, file_upstream=False, after=after)
            self.metrics.privacy_actions.labels("deleted_remote").inc()
        else:
            self.privacy.set_subject_consent(subject, {p: False for p in purposes},
                                             policy_version if not policy_version_problem(policy_version) else None,
                                             at, now,
                                             request_id=request_id, file_upstream=False, after=after)
            self.metrics.privacy_actions.labels("consent_withdrawn_remote").inc()
        self.metrics.sync_cursor.set(seq)
