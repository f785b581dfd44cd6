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
