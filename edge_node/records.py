"""Records the edge keeps on disk (msgpack-encoded msgspec Structs).

Stored records never forbid unknown fields and only grow with defaulted fields, so a
node can read what an older or newer version of itself wrote. Times are Unix seconds.
"""

from __future__ import annotations

import msgspec

from sentiedge_core.privacy import PURPOSES
from sentiedge_core.structs import Stored

__all__ = ["PURPOSES", "Stored"]  # and the records below


class Grant(Stored, kw_only=True):
    granted: bool
    at: float  # when the user made this choice
    policy_version: str


class Consent(Stored, kw_only=True):
    """Purpose → the user's latest choice. A purpose missing here is not granted."""

    purposes: dict[str, Grant] = {}

    def allows(self, purpose: str) -> bool:
        grant = self.purposes.get(purpose)
        return grant is not None and grant.granted


class Affinity(Stored, kw_only=True):
    """What a user's events say about one category; every sum decays with time."""

    weight: float = 0.0  # behaviour: decayed sum of event weights (signed)
    sentiment_sum: float = 0.0  # decayed sum of sentiment scores in [-1, 1]
    sentiment_weight: float = 0.0  # decayed count of those scores
    kinds: dict[str, float] = {}  # event type → decayed weight, to explain a ranking
    at: float = 0.0  # last update
    display: str = ""  # the category as the client last spelled it ("Beauty/Skincare"); keys are lower-case


class WindowedSentiment(Stored, kw_only=True):
    total: float = 0.0  # decayed sum of scores
    weight: float = 0.0  # decayed count
    negative: float = 0.0  # decayed count of negative texts
    at: float = 0.0


class Profile(Stored, kw_only=True):
    affinities: dict[str, Affinity] = {}
    sentiment: WindowedSentiment = msgspec.field(default_factory=WindowedSentiment)
    cohort: str = ""
    events: int = 0
    updated_at: float = 0.0
    # When a signal changed this profile and no decision has used it yet (signal-to-action latency).
    pending_signal_at: float | None = None
    # The items the user chose lately (item → when), for the collaborative signal ("often chosen
    # with X"); the most recent RECENT_ITEMS (edge_node.personalization.profiles), disliked ones out.
    items: dict[str, float] = {}


class Alias(Stored, kw_only=True):
    """An anonymous id linked to a known user (deterministic identity resolution): requests
    for the anonymous id reach the user's records from then on."""

    user: str  # the known user's pseudonym
    at: float  # when the link was made


class ShownItem(Stored, kw_only=True):
    item_id: str
    reason: str
    at: float
    category: str = ""  # what the preference page names (an item id means nothing to a person)


class Shown(Stored, kw_only=True):
    """The items last ranked for a user from their own profile, with the reasons given (for
    the preference center's "why am I seeing this"); bounded, erased with the profile."""

    items: list[ShownItem] = []


class Suppression(Stored, kw_only=True):
    at: float  # events that happened at or before this time are dropped
    request_id: str
    reason: str  # "deleted" or "consent_withdrawn"


class PrivacyRequest(Stored, kw_only=True):
    """A deletion or withdrawal made at this edge, queued to be filed with the control plane."""

    request_id: str
    kind: str  # "delete_user" or "revoke_consent"
    subject: str  # pseudonymized user id
    purposes: list[str] = []
    at: float
    policy_version: str = ""  # of a withdrawal, as the user chose it ("": none was given)


class CohortCell(Stored, kw_only=True):
    """One cohort in one window: aggregates over consenting users, nothing per user."""

    users: int = 0
    texts: int = 0
    negative: int = 0
    events: int = 0
    sentiment_sum: float = 0.0  # sum over users of each user's clipped sentiment sum
    categories: dict[str, float] = {}  # sum over users of each user's clipped category weight
    topic_texts: dict[str, int] = {}  # per category: texts, negative texts, events (for topic triggers)
    topic_negative: dict[str, int] = {}
    topic_events: dict[str, int] = {}
    topic_sentiment: dict[str, float] = {}  # per category: sum over users of each user's clipped sum
    # Per topic (the tenant's topic set), from the texts' aspects: mentions (at most
    # ASPECT_TEXTS_PER_USER per user), the negative ones, the sum of each user's clipped sum.
    aspect_texts: dict[str, int] = {}
    aspect_negative: dict[str, int] = {}
    aspect_sentiment: dict[str, float] = {}


class Member(Stored, kw_only=True):
    """One user's raw contribution to one open cohort cell (dropped when the window closes)."""

    texts: int = 0
    negative: int = 0
    events: int = 0
    sentiment_sum: float = 0.0
    categories: dict[str, float] = {}
    topic_texts: dict[str, int] = {}
    topic_negative: dict[str, int] = {}
    topic_events: dict[str, int] = {}
    topic_sentiment: dict[str, float] = {}
    aspect_texts: dict[str, int] = {}  # per topic: this user's texts that mention it, raw (clipped in the cell)
    aspect_negative: dict[str, int] = {}
    aspect_sentiment: dict[str, float] = {}


class Keys(Stored, kw_only=True):
    """A small index: the cohort keys of a window, or the cohorts a user joined in one."""

    keys: list[str] = []


class SegmentMember(Stored, kw_only=True):
    """One user's place in one open window of the learned segments (dropped with the window):
    the centroid they were assigned (index -1 while no segments exist: a seed candidate),
    their unit vector and clipped top affinities, so a change or a withdrawal can take them out."""

    version: int
    index: int
    vector: list[float] = []
    categories: dict[str, float] = {}
    at: float = 0.0  # when it was placed (a busy user is placed again at most every refresh)


class SegmentCell(Stored, kw_only=True):
    """Sums over the members of one centroid in one window: what leaves the node, nothing per user."""

    users: int = 0
    vector_sum: list[float] = []
    categories: dict[str, float] = {}
