"""The node's bookkeeping through its named accessors, on a real disk store: defaults, what a
restart reads back, the workers' shared trigger state and the leader's publications."""

import pytest

from edge_node.node_state import NodeState
from edge_node.store import EdgeStore


@pytest.fixture
def store(tmp_path):
    s = EdgeStore(tmp_path, retention_s=86400)
    yield s
    s.close()


def test_a_new_node_starts_from_nothing(store):
    state = NodeState(store)
    assert state.privacy_cursor == 0 and state.node_secret == "" and state.sync_last_success is None
    assert not state.sync_connected and state.pseudonym_fingerprint is None
    assert state.cohorts_acked_until is None and state.pairs_acked_until is None
    assert state.pending_triggers == [] and state.trigger_seq == 0 and state.fleet_seq == 0
    assert state.worker_serving(1) is None and state.worker_drift(1) is None and state.worker_exposure(1) is None


def test_what_is_written_is_read_back_after_a_restart(tmp_path):
    first = EdgeStore(tmp_path, retention_s=86400)
    state = NodeState(first)
    with state.transaction():
        state.privacy_cursor = 7
        state.cohorts_acked_until = 3600
        state.pending_triggers = [{"id": 1, "rule": "r"}]
        state.trigger_seq = 1
    state.node_secret = "s3cret"
    state.sync_last_success = 12.5
    state.set_worker_serving(2, "abc")
    first.close()
    again = NodeState(EdgeStore(tmp_path, retention_s=86400))
    assert (again.privacy_cursor, again.cohorts_acked_until, again.trigger_seq) == (7, 3600, 1)
    assert again.pending_triggers == [{"id": 1, "rule": "r"}] and again.node_secret == "s3cret"
    assert again.sync_last_success == 12.5 and again.worker_serving(2) == "abc"


def test_a_transaction_that_fails_writes_nothing(store):
    state = NodeState(store)
    with pytest.raises(RuntimeError), state.transaction():
        state.privacy_cursor = 5
        raise RuntimeError("the store failed")
    assert state.privacy_cursor == 0


def test_only_the_first_worker_to_flip_a_trigger_changes_the_nodes_state(store):
    one, two = NodeState(store), NodeState(store)
    assert one.flip_trigger("busy", "eu/mobile/evening", "shop", True)
    assert not two.flip_trigger("busy", "eu/mobile/evening", "shop", True)  # already active for the node
    assert two.trigger_active("busy", "eu/mobile/evening", "shop")
    assert not two.trigger_active("busy", "eu/mobile/evening", "other-tenant")
    assert two.flip_trigger("busy", "eu/mobile/evening", "shop", False)


def test_publications_are_numbered_in_order(store):
    state = NodeState(store)
    assert state.publish("rules", {"version": 1}) == 1 and state.publish("apps", {"apps": []}) == 2
    assert state.fleet_seq == 2
    assert state.publication("rules") == {"seq": 1, "data": {"version": 1}} and state.publication("topics") is None
