"""The merge rule of identity links: decayed weights add, sentiment windows combine, a shared
cohort cell counts one person; and the privacy cascade from a user to every alias."""

import math

import pytest

from edge_node.errors import Conflict
from edge_node.identity import Identities
from edge_node.personalization import profiles
from edge_node.personalization.cohorts import ALL, CohortBook
from edge_node.privacy import PrivacyBook, Pseudonymizer
from edge_node.records import Member, Profile
from edge_node.store import EdgeStore

NOW = 1_800_000_000.0
HOUR = 3600.0
TUNING = profiles.Tuning(sentiment_window_s=1800, half_life_s=7 * 86400, prior_weight=2.0, max_categories=3)


@pytest.fixture
def books(tmp_path):
    store = EdgeStore(tmp_path, retention_s=30 * 86400)
    cohorts = CohortBook(store, window_s=1800, min_size=1, max_per_user=2, horizon_s=86400)
    privacy = PrivacyBook(store, cohorts, Pseudonymizer(b"k" * 32))
    yield privacy, Identities(privacy, cohorts, TUNING, max_aliases=5)
    store.close()


def profile_with(events: list[tuple[str, str, float | None, float]]) -> Profile:
    p = Profile()
    for category, kind, sentiment, at in events:
        profiles.apply_event(p, category=category, kind=kind, sentiment=sentiment, at=at, tuning=TUNING,
                             display=category.title())
    return p


def test_decayed_weights_add_and_sentiment_windows_combine():
    known = profile_with([("books", "purchase", None, NOW - 48 * HOUR), ("garden", "view", 0.5, NOW - 0.1 * HOUR)])
    anonymous = profile_with([("books", "click", None, NOW - 2 * HOUR), ("toys", "review", -0.8, NOW - 0.2 * HOUR)])
    expected_books = (profiles.EVENT_WEIGHTS["purchase"] * TUNING.behaviour_decay(48 * HOUR)
                      + profiles.EVENT_WEIGHTS["click"] * TUNING.behaviour_decay(2 * HOUR))
    window = (0.5 * TUNING.sentiment_decay(0.1 * HOUR), -0.8 * TUNING.sentiment_decay(0.2 * HOUR))

    profiles.merge(known, anonymous, NOW, TUNING)

    assert set(known.affinities) == {"books", "garden", "toys"}
    assert math.isclose(known.affinities["books"].weight, expected_books, rel_tol=1e-9)
    assert known.affinities["toys"].sentiment_weight == pytest.approx(TUNING.sentiment_decay(0.2 * HOUR))
    assert known.sentiment.total == pytest.approx(sum(window))
    assert known.sentiment.negative == pytest.approx(TUNING.sentiment_decay(0.2 * HOUR))
    assert known.events == 4
    # The merged score is what one profile that saw all four events would score.
    together = profile_with([("books", "purchase", None, NOW - 48 * HOUR), ("books", "click", None, NOW - 2 * HOUR),
                             ("garden", "view", 0.5, NOW - 0.1 * HOUR), ("toys", "review", -0.8, NOW - 0.2 * HOUR)])
    assert profiles.affinity_scores(known, NOW, TUNING)["books"] == pytest.approx(
        profiles.affinity_scores(together, NOW, TUNING)["books"])


def test_merged_profiles_keep_the_category_cap_and_the_latest_spelling():
    known = profile_with([("a", "purchase", None, NOW - HOUR), ("b", "view", None, NOW - HOUR)])
    anonymous = profile_with([("c", "purchase", None, NOW - HOUR), ("d", "purchase", None, NOW - HOUR)])
    anonymous.affinities["a"] = profiles.Affinity(weight=1.0, at=NOW - 60, display="A-later")
    profiles.merge(known, anonymous, NOW, TUNING)
    assert len(known.affinities) == 3 and "b" not in known.affinities  # the weakest went
    assert known.affinities["a"].display == "A-later"


def test_a_shared_cohort_cell_counts_one_person_after_the_link(books):
    privacy, identities = books
    cohorts = privacy.cohorts
    anonymous, user = privacy.pseudonymize("anon"), privacy.pseudonymize("ann")
    for subject in (anonymous, user):
        privacy.store.put_consent(subject, privacy.store.consent(subject))
        privacy.set_subject_consent(subject, {"personalization": True, "cohort_analytics": True}, "v1", NOW, NOW)
    with privacy.store.transaction():
        cohorts.contribute(anonymous, "eu/web/night", NOW, Member(texts=1, sentiment_sum=0.6, events=1), NOW,
                           tenant="shop")
        cohorts.contribute(user, "eu/web/night", NOW, Member(texts=2, sentiment_sum=0.7, events=2), NOW, tenant="shop")
        cohorts.contribute(anonymous, "us/app/night", NOW, Member(events=1), NOW, tenant="shop")
        # ann is in 2 cohorts: her bound
        cohorts.contribute(user, "de/app/night", NOW, Member(events=1), NOW, tenant="shop")
    window = cohorts.window_of(NOW)
    assert cohorts.cells(window, "shop")["eu/web/night"].users == 2

    link = identities.link("ann", "anon", NOW + 1)
    assert link.merged == ["cohort_contributions"]
    cells = cohorts.cells(window, "shop")
    assert cells["eu/web/night"].users == 1 and cells["eu/web/night"].texts == 3
    assert cells["eu/web/night"].sentiment_sum == pytest.approx(1.0)  # one person: clipped once
    assert cells["us/app/night"].users == 0  # past ann's bound: only the tenant-wide share moved
    assert cells[ALL].users == 1 and cells[ALL].events == 5


def test_deletion_and_withdrawal_of_the_user_are_filed_for_every_alias(books):
    privacy, identities = books
    for user in ("anon-1", "anon-2", "hal"):
        privacy.set_consent(user, {"personalization": True, "cohort_analytics": True}, "v1", NOW, NOW)
    identities.link("hal", "anon-1", NOW)
    identities.link("hal", "anon-2", NOW)
    with pytest.raises(Conflict):
        identities.link("anon-1", "anon-2", NOW)

    privacy.set_consent("hal", {"cohort_analytics": False}, "v2", NOW + 1, NOW + 1)
    filed = [(q.kind, q.subject, q.purposes) for _, q in privacy.store.queued_requests()]
    aliases = {privacy.pseudonymize("anon-1"), privacy.pseudonymize("anon-2")}
    assert {(kind, subject) for kind, subject, _ in filed} == {
        ("revoke_consent", s) for s in aliases | {privacy.pseudonymize("hal")}}
    assert all(purposes == ["cohort_analytics"] for _, _, purposes in filed)

    erasure = privacy.delete_user("anon-1", NOW + 2)  # an alias acts for its user: hal goes entirely
    assert "aliases" in erasure.erased
    deletions = [q.subject for _, q in privacy.store.queued_requests() if q.kind == "delete_user"]
    assert set(deletions) == aliases | {privacy.pseudonymize("hal")}
    assert privacy.store.aliases_of(privacy.pseudonymize("hal")) == []
    assert all(privacy.store.suppression(s) is not None for s in aliases)
