import time

from edge_node.records import Consent, Grant, Profile
from edge_node.store import EdgeStore


def test_records_survive_a_reopen(tmp_path):
    store = EdgeStore(tmp_path, retention_s=3600)
    store.put_consent("s1", Consent(purposes={"sentiment": Grant(granted=True, at=1.0, policy_version="v")}))
    store.put_profile("s1", Profile(events=7))
    store.close()
    store = EdgeStore(tmp_path, retention_s=3600)
    assert store.consent("s1").allows("sentiment")
    assert store.profile("s1").events == 7
    store.close()


def test_per_user_records_expire_after_the_retention_period(tmp_path):
    store = EdgeStore(tmp_path, retention_s=0.3)
    store.put_profile("s1", Profile(events=1))
    store.put_consent("s1", Consent(purposes={"sentiment": Grant(granted=True, at=1.0, policy_version="v")}))
    assert store.profile("s1") is not None
    time.sleep(0.5)
    assert store.profile("s1") is None
    assert not store.consent("s1").allows("sentiment")
    assert store.expire() >= 2
    store.close()


def test_the_secret_is_made_once_and_kept(tmp_path):
    store = EdgeStore(tmp_path, retention_s=10)
    first = store.secret("pseudonym")
    store.close()
    store = EdgeStore(tmp_path, retention_s=10)
    assert store.secret("pseudonym") == first and len(first) == 32
    store.close()


def test_a_profile_never_outlives_the_consent_that_allowed_it(tmp_path):
    store = EdgeStore(tmp_path, retention_s=0.4)
    store.put_consent("s1", Consent(purposes={"personalization": Grant(granted=True, at=1.0, policy_version="v")}))
    time.sleep(0.25)
    store.put_profile("s1", Profile(events=1))  # written later, but expires with the consent
    time.sleep(0.25)
    assert store.profile("s1") is None
    store.close()


def test_one_process_owns_a_data_directory(tmp_path):
    import pytest

    from edge_node.errors import StoreError

    store = EdgeStore(tmp_path, retention_s=10)
    with pytest.raises(StoreError, match="in use by another process"):
        EdgeStore(tmp_path, retention_s=10)
    store.close()
    store.close()
    EdgeStore(tmp_path, retention_s=10).close()


def test_a_rolled_back_transaction_leaves_no_trace_in_reads(tmp_path):
    import pytest

    store = EdgeStore(tmp_path, retention_s=100)
    store.put_profile("s1", Profile(events=1))
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.put_profile("s1", Profile(events=2))
            raise RuntimeError("crash inside a change")
    assert store.profile("s1").events == 1
    store.close()


def test_the_outbox_enqueues_in_constant_space_and_files_in_any_order(tmp_path):
    from edge_node.records import PrivacyRequest

    store = EdgeStore(tmp_path, retention_s=100, outbox_max=3000)
    for i in range(2000):
        with store.transaction():
            store.queue_request(PrivacyRequest(request_id=f"r{i}", kind="delete_user", subject="s" * 32, at=i))
    # One small record per filing: no index that grows with the queue (it used to be rewritten each time).
    largest = max(len(store._cache[key]) for key in store._cache.iterkeys() if str(key).startswith("outbox|"))
    assert largest < 200 and store.outbox_pending() == 2000
    store.filed("r1")
    store.filed("r0")
    store.filed("r0")  # a repeated receipt changes nothing
    store.filed("nope")
    first = store.queued_requests(limit=2)
    assert [r.request_id for _, r in first] == ["r2", "r3"] and store.outbox_pending() == 1998
    assert [r.request_id for _, r in store.queued_requests(after=first[-1][0], limit=1)] == ["r4"]
    store.close()
    reopened = EdgeStore(tmp_path, retention_s=100, outbox_max=3000)  # durable, counters included
    assert reopened.outbox_pending() == 1998 and reopened.queued_requests(limit=1)[0][1].request_id == "r2"
    reopened.close()


def test_a_full_outbox_refuses_the_whole_change(tmp_path):
    import pytest

    from edge_node.errors import OutboxFull
    from edge_node.http.status import status_of
    from edge_node.records import PrivacyRequest, Suppression

    store = EdgeStore(tmp_path, retention_s=100, outbox_max=1)
    with store.transaction():
        store.queue_request(PrivacyRequest(request_id="a", kind="delete_user", subject="s" * 32, at=1))
    with pytest.raises(OutboxFull) as refused, store.transaction():
        store.suppress("t" * 32, Suppression(at=2, request_id="b", reason="deleted"))
        store.queue_request(PrivacyRequest(request_id="b", kind="delete_user", subject="t" * 32, at=2))
    assert status_of(refused.value) == 503 and "EDGE_PRIVACY_OUTBOX_MAX=1" in refused.value.message
    assert store.suppression("t" * 32) is None and store.outbox_pending() == 1
    store.close()
