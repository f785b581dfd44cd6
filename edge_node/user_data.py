"""The use cases on one user's data: consent, the user's own vector, preferences, identity
links, erasure.

The HTTP controllers (edge_node.http.users, .preferences) authorize the caller, then call
these and encode what they return. Nothing here knows HTTP.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import msgspec
import numpy as np

from edge_node.config import EdgeSettings
from edge_node.errors import InvalidInput, NotFound
from edge_node.identity import Identities, Link
from edge_node.metrics import EdgeMetrics
from edge_node.personalization import profiles
from edge_node.personalization.profiles import Tuning
from edge_node.preferences import PreferenceView, view_of
from edge_node.privacy import ConsentChange, Erasure, PrivacyBook
from edge_node.records import Consent, Profile
from edge_node.store import EdgeStore


class UserVector(msgspec.Struct, kw_only=True):
    profile: Profile
    scores: dict[str, float]  # category -> decayed affinity now
    vector: np.ndarray
    sentiment_mean: float
    sentiment_texts: float  # effective (time-decayed) number of texts in the window
    negative_share: float


class UserData:
    def __init__(self, settings: EdgeSettings, *, store: EdgeStore, privacy: PrivacyBook, identities: Identities,
                 tuning: Tuning, metrics: EdgeMetrics, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.store = store
        self.privacy = privacy
        self.identities = identities
        self.tuning = tuning
        self.metrics = metrics
        self.now = clock

    def consent_of(self, user_id: str) -> Consent:
        return self.privacy.consent(user_id)

    def set_consent(self, user_id: str, purposes: dict[str, bool], policy_version: str | None,
                    at: float | None) -> ConsentChange:
        """Grant or withdraw purposes (a withdrawal erases what the purpose allowed, and is filed
        upstream); ``at`` is when the user chose, never later than now. ``policy_version`` None
        (the preference center without one): each purpose keeps the version recorded for it."""
        if not purposes:
            raise InvalidInput("purposes must name at least one purpose", field="purposes")
        now = self.now()
        change = self.privacy.set_consent(user_id, purposes, policy_version, min(now if at is None else at, now), now)
        for _ in change.withdrawn:
            self.metrics.privacy_actions.labels("consent_withdrawn").inc()
        return change

    def user_vector(self, user_id: str) -> UserVector:
        """The user's own vector, affinities and windowed sentiment; NotFound without
        ``personalization`` consent or a profile."""
        subject = self.privacy.subject_of(user_id)
        profile = self.store.profile(subject) if self.store.consent(subject).allows("personalization") else None
        if profile is None:
            raise NotFound("no profile for this user on this node (no personalization consent, no events yet, "
                           "expired or deleted)", field="user_id")
        now = self.now()
        scores = profiles.affinity_scores(profile, now, self.tuning)
        mean, texts, negative = profiles.windowed_sentiment(profile, now, self.tuning)
        return UserVector(profile=profile, scores=scores, vector=profiles.vector_of(scores, self.settings.vector_dim),
                          sentiment_mean=mean, sentiment_texts=texts, negative_share=negative)

    def preferences_of(self, user_id: str) -> PreferenceView:
        """What the preference center shows the user: purposes, inferred interests and mood in
        levels, the reasons of recently shown items."""
        return view_of(self.store, self.privacy.subject_of(user_id), self.now(), self.tuning)

    def link_alias(self, user_id: str, anonymous_id: str) -> Link:
        """Link an anonymous id to the user (the caller proved both): merge once, route after."""
        link = self.identities.link(user_id, anonymous_id, self.now())
        self.metrics.identity_links.labels("already_linked" if link.already_linked else "linked").inc()
        return link

    def delete_user(self, user_id: str) -> Erasure:
        """Erase everything derived from the user here, suppress late events, file it upstream."""
        erasure = self.privacy.delete_user(user_id, self.now())
        self.metrics.privacy_actions.labels("deleted").inc()
        return erasure
