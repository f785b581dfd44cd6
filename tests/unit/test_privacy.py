import sqlite3

import pytest

from edge_node.errors import InvalidInput
from edge_node.personalization.cohorts import CohortBook
from edge_node.privacy import PrivacyBook, Pseudonymizer
from edge_node.records import Member, Profile
from edge_node.store import EdgeStore

NOW = 1_800_000_000.0


@pytest.fixture
def privacy(tmp_path):
    store = EdgeStore(tmp_path, retention_s=86400)
    cohorts = CohortBook(store, window_s=1800, min_size=1, max_per_user=2, horizon_s=86400)
    yield PrivacyBook(store, cohorts, Pseudonymizer(b"k" * 32))
    store.close()


def test_consent_is_default_deny_per_purpose(privacy):
    consent = privacy.consent("alice")
    assert not any(consent.allows(p) for p in ("sentiment", "personalization", "cohort_analytics"))
    privacy.set_consent("alice", {"sentiment": True}, "v1", NOW, NOW)
    consent = privacy.consent("alice")
    assert consent.allows("sentiment") and not consent.allows("personalization")
    assert consent.purposes["sentiment"].policy_version == "v1"


def test_unknown_purpose_is_refused_by_name(privacy):
    with pytest.raises(InvalidInput, match="marketing") as err:
        privacy.set_consent("alice", {"marketing": True}, "v1", NOW, NOW)
    assert err.value.field == "purposes.marketing"


def test_an_older_choice_never_overrides_a_newer_one(privacy):
    privacy.set_consent("alice", {"personalization": False}, "v2", NOW, NOW)
    privacy.set_consent("alice", {"personalization": True}, "v1", NOW - 60, NOW)
    assert not privacy.consent("alice").allows("personalization")


def test_withdrawing_erases_what_the_purpose_allowed_and_queues_a_request(privacy):
    subject = privacy.pseudonymize("alice")
    privacy.set_consent("alice", {"personalization": True, "cohort_analytics": True}, "v1", NOW, NOW)
    privacy.store.put_profile(subject, Profile(events=3))
    with privacy.store.transaction():
        privacy.cohorts.contribute(subject, "eu/web/night", NOW, Member(events=1), NOW, tenant="shop")
    change = privacy.set_consent("alice", {"personalization": False, "cohort_analytics": False}, "v1", NOW + 1, NOW + 1)
    assert change.withdrawn == ["personalization", "cohort_analytics"]
    assert change.erased == ["profile", "cohort_contributions"]
    assert privacy.store.profile(subject) is None
    assert privacy.cohorts.cells(privacy.cohorts.window_of(NOW), "shop")["eu/web/night"].users == 0
    queued = [q for _, q in privacy.store.queued_requests()]
    assert [(q.kind, q.purposes, q.request_id) for q in queued] == [
        ("revoke_consent", ["personalization", "cohort_analytics"], change.request_id)]
    assert queued[0].subject == subject


def test_deletion_erases_suppresses_and_queues(privacy):
    subject = privacy.pseudonymize("bob")
    privacy.set_consent("bob", {"personalization": True}, "v1", NOW, NOW)
    privacy.store.put_profile(subject, Profile(events=1))
    erasure = privacy.delete_user("bob", NOW + 5)
    assert set(erasure.erased) == {"profile", "consent"}
    assert privacy.store.profile(subject) is None
    assert not privacy.consent("bob").allows("personalization")
    assert privacy.store.suppression(subject).at == NOW + 5
    assert privacy.store.queued_requests()[-1][1].request_id == erasure.request_id
    # A new grant after the deletion starts a new relationship, but the suppression stays:
    # an event stamped before the deletion (a client's offline buffer) never comes back.
    privacy.set_consent("bob", {"personalization": True}, "v1", NOW + 10, NOW + 10)
    assert privacy.consent("bob").allows("personalization")
    assert privacy.store.suppression(subject).at == NOW + 5


def test_raw_user_ids_never_reach_the_disk(privacy, tmp_path):
    privacy.set_consent("carol@example.com", {"personalization": True}, "v1", NOW, NOW)
    privacy.delete_user("carol@example.com", NOW + 1)
    privacy.store.close()
    dump = b"".join(line.encode() for line in sqlite3.connect(tmp_path / "store" / "cache.db").iterdump())
    assert b"carol" not in dump
    assert privacy.pseudonymize("carol@example.com").encode() in dump


def test_pseudonyms_depend_on_the_key():
    assert Pseudonymizer(b"a")("u") != Pseudonymizer(b"b")("u")
    assert Pseudonymizer(b"a")("u") == Pseudonymizer(b"a")("u")


def test_a_policy_version_is_at_most_64_printable_characters(privacy):
    for bad, said in (("v" * 65, "policy_version has 65 characters; at most 64"), ("v1\n", "non-printable"),
                      ("  ", "policy_version is empty")):
        with pytest.raises(InvalidInput, match=said) as err:
            privacy.set_consent("alice", {"sentiment": True}, bad, NOW, NOW)
        assert err.value.field == "policy_version"
    assert not privacy.consent("alice").purposes  # nothing recorded
    privacy.set_consent("alice", {"sentiment": True}, "v" * 64, NOW, NOW)
    assert privacy.consent("alice").purposes["sentiment"].policy_version == "v" * 64


def test_a_withdrawal_without_a_policy_version_keeps_what_the_user_agreed_to(privacy):
    """A withdrawal replayed from an operator's request (no policy version) records each purpose
    under the version the user last chose for it, never a placeholder."""
    subject = privacy.pseudonymize("alice")
    privacy.set_consent("alice", {"personalization": True}, "2026-11", NOW, NOW)
    privacy.set_consent("alice", {"sentiment": True}, "2026-12", NOW + 1, NOW + 1)
    privacy.set_subject_consent(subject, {p: False for p in ("personalization", "sentiment", "cohort_analytics")},
                                None, NOW + 2, NOW + 2, file_upstream=False)
    grants = privacy.consent("alice").purposes
    assert {p: (g.granted, g.policy_version) for p, g in grants.items()} == {
        "personalization": (False, "2026-11"), "sentiment": (False, "2026-12"), "cohort_analytics": (False, "")}


def test_a_withdrawal_is_filed_with_the_users_policy_version(privacy):
    from edge_node.sync.convert import filing

    privacy.set_consent("alice", {"personalization": True}, "2026-11", NOW, NOW)
    privacy.set_consent("alice", {"personalization": False}, "2026-12", NOW + 1, NOW + 1)
    (_, request), = privacy.store.queued_requests()
    assert request.policy_version == "2026-12"
    assert filing(request).filing.policy_version == "2026-12"
