"""The edge's handling of privacy updates, on a real node and store (no network needed)."""

import time

import pytest

from edge_node.config import load_settings
from edge_node.records import Profile
from edge_node.wiring import build
from protos.sentiedge.v1 import common_pb2, sync_pb2


@pytest.fixture
def node(model, tmp_path):
    settings = load_settings({"EDGE_DATA_DIR": str(tmp_path), "EDGE_CONTROL_PLANE": "127.0.0.1:9",
                              "EDGE_PSEUDONYM_KEY": "k"})
    n = build(settings, model)
    yield n
    n.store.close()


def update(seq: int, subject: str, kind=common_pb2.PRIVACY_KIND_DELETE_USER, purposes=()):
    return sync_pb2.PrivacyUpdate(seq=seq, request_id=f"req-{seq}", kind=kind, subject=subject, purposes=purposes,
                                  at=time.time())


def applied(node, u) -> str | None:
    """The node's privacy use case on an update as the log sends it: None (acknowledge) or why not."""
    return node.privacy_log.apply_update(u.seq, u.kind, u.subject, list(u.purposes), u.at, u.request_id)


def test_updates_apply_once_in_order_and_out_of_order_ones_are_refused(node):
    agent = node.sync
    alice, bob = node.privacy.pseudonymize("alice"), node.privacy.pseudonymize("bob")
    for subject in (alice, bob):
        node.privacy.set_subject_consent(subject, {"personalization": True}, "v", time.time(), time.time())
        node.store.put_profile(subject, Profile(events=1))

    assert applied(node, update(1, alice)) is None
    assert node.store.profile(alice) is None and node.store.suppression(alice) is not None and agent.cursor == 1

    gap = applied(node, update(3, bob))
    assert "expected sequence 2" in gap
    assert node.store.profile(bob) is not None and agent.cursor == 1  # nothing written

    node.privacy.set_subject_consent(alice, {"personalization": True}, "v", time.time() + 1, time.time() + 1)
    assert applied(node, update(1, alice)) is None  # the receipt again ...
    assert node.privacy.store.consent(alice).allows("personalization")  # ... but not applied twice

    revoke = update(2, bob, kind=common_pb2.PRIVACY_KIND_REVOKE_CONSENT, purposes=["personalization"])
    assert applied(node, revoke) is None
    assert node.store.profile(bob) is None and agent.cursor == 2
    assert node.store.queued_requests() == []  # updates from the control plane are not filed back
