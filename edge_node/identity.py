"""Identity: an anonymous visitor who logs in becomes one known user (Segment's ``alias``).

Links are deterministic only: the app says "this anonymous id is this user" (proven by the
user's token and the anonymous id's own token, or asserted by the app's backend with a
server key); nothing is inferred from devices or behaviour. A link needs the user's
``personalization`` consent. Linking:

* folds the anonymous profile into the user's once (:func:`profiles.merge`: both decayed to
  now, then decayed weights add and the sentiment windows combine),
* moves the anonymous id's contributions to the open cohort windows to the user (where both
  counted in one cell, it counts one user), and its item baskets of the open co-occurrence
  windows (one user, one basket), when the user allows ``cohort_analytics``,
* routes the anonymous id to the user from then on (:meth:`PrivacyBook.subject_of`).

Linking the same pair again changes nothing; an anonymous id already linked to another user
is refused. A deletion or withdrawal of the user cascades to every alias (edge_node.privacy).
"""

from __future__ import annotations

import msgspec

from edge_node.errors import Conflict, InvalidInput, LimitExceeded
from edge_node.personalization import profiles
from edge_node.personalization.cohorts import CohortBook
from edge_node.privacy import PrivacyBook
from edge_node.records import Profile


class Link(msgspec.Struct, kw_only=True):
    linked_at: float
    already_linked: bool  # the same pair was linked before: nothing changed
    merged: list[str]  # what moved to the user: "profile", "cohort_contributions", "cooccurrence_contributions"
    events: int  # events the anonymous profile brought


class Identities:
    def __init__(self, privacy: PrivacyBook, cohorts: CohortBook, tuning: profiles.Tuning, *,
                 max_aliases: int) -> None:
        self.privacy = privacy
        self.store = privacy.store
        self.cohorts = cohorts
        self.tuning = tuning
        self.max_aliases = max_aliases

    def link(self, user_id: str, anonymous_id: str, now: float) -> Link:
        if anonymous_id == user_id:
            raise InvalidInput("anonymous_id is the user id itself", field="anonymous_id")
        user = self.privacy.pseudonymize(user_id)
        anonymous = self.privacy.pseudonymize(anonymous_id)
        with self.store.transaction():
            if self.store.alias(user) is not None:
                raise Conflict("user_id is itself an anonymous id linked to another user: link to that user instead",
                               reason="user_is_alias", field="user_id")
            existing = self.store.alias(anonymous)
            if existing is not None:
                if existing.user == user:
                    return Link(linked_at=existing.at, already_linked=True, merged=[], events=0)
                raise Conflict("anonymous_id is already linked to another user (a link lasts until either is "
                               "deleted)", reason="already_linked", field="anonymous_id")
            if self.store.aliases_of(anonymous):
                raise Conflict("anonymous_id is a known user with anonymous ids of its own, not an anonymous id",
                               reason="not_anonymous", field="anonymous_id")
            consent = self.store.consent(user)
            if not consent.allows("personalization"):
                raise Conflict("linking an anonymous id needs the user's personalization consent "
                               "(PUT /v1/users/{user_id}/consent)", reason="consent_required", field="user_id")
            if len(self.store.aliases_of(user)) >= self.max_aliases:
                raise LimitExceeded(f"the user already has {self.max_aliases} anonymous ids linked "
                                    f"(EDGE_MAX_ALIASES_PER_USER)", field="anonymous_id")
            merged, events = [], 0
            theirs = self.store.profile(anonymous)
            if theirs is not None:
                mine = self.store.profile(user) or Profile()
                profiles.merge(mine, theirs, now, self.tuning)
                self.store.put_profile(user, mine)
                self.store.delete(f"profile|{anonymous}")
                merged.append("profile")
                events = theirs.events
            if consent.allows("cohort_analytics") and self.cohorts.merge(anonymous, user, now):
                merged.append("cohort_contributions")
            pairs = self.privacy.pairs
            if pairs is not None and consent.allows("cohort_analytics") and pairs.merge(anonymous, user, now):
                merged.append("cooccurrence_contributions")
            segments = self.privacy.segments
            if segments is not None:  # one member now, placed by the merged profile
                segments.withdraw(anonymous, now)
                if theirs is not None and consent.allows("cohort_analytics"):
                    segments.contribute(user, mine, now, force=True)
            self.store.link(anonymous, user, now)
        return Link(linked_at=now, already_linked=False, merged=merged, events=events)
