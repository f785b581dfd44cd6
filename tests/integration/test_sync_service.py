"""The edge-sync and operator use cases without gRPC: a real control plane on a real SQLite
store, driven through control_plane.sync_service / operator_service as the servicers drive it."""

import threading

import pytest

from control_plane.config import load_settings
from control_plane.errors import CpError, InvalidArgument
from control_plane.operator_service import OperatorService
from control_plane.state import ControlPlane
from control_plane.sync_service import Heartbeat, SyncService
from sentiedge_core.cohorts import Aggregate
from sentiedge_core.rules import Rule

MODEL = ("sentiedge-sentiment", "1.0.0", "a" * 64)


@pytest.fixture
def cp(tmp_path):
    plane = ControlPlane(load_settings({"CP_DATA_DIR": str(tmp_path), "CP_ADMIN_TOKENS": "ops:integration-token",
                                        "CP_PSEUDONYM_KEY": "k" * 32, "CP_COHORT_MIN_SIZE": "5",
                                        "CP_COHORT_WINDOW_MINUTES": "5"}))
    plane.apps.add("shop", [], "", plane.now())  # one tenant: privacy requests need not name it
    yield plane
    plane.close()


def window(cohort: str, users: int, categories: dict[str, float], start: int) -> Aggregate:
    return Aggregate(window_start=start, window_seconds=300, cohort=cohort, users=users, events=users, texts=users,
                     negative=0, sentiment_sum=0.5 * users, categories=categories,
                     topic_events={c: users for c in categories}, topic_texts={c: users for c in categories},
                     topic_negative={c: 0 for c in categories}, topic_sentiment={c: 0.5 * users for c in categories})


def test_a_stream_gets_only_what_it_lacks(cp):
    sync, ops = SyncService(cp), OperatorService(cp)
    stream, welcome = sync.connect("edge-a", "eu", MODEL, 0, None)
    assert welcome.privacy_head == 0 and welcome.heartbeat_interval_s == cp.settings.heartbeat_interval_s
    first = sync.pending(stream)
    assert not first.privacy and first.rules == (0, []) and first.priors is not None and not first.more
    assert sync.pending(stream) == type(first)()  # nothing new: nothing sent again

    status = ops.delete_user("zoe@example.com", "")
    assert status.missing == ["edge-a"]
    ops.add_rule(Rule(name="calm", cohort="eu/*/*", signal="negative_share", op=">", threshold=0.5, window_minutes=5,
                      clear=0.3, min_size=5, action="calm"))
    second = sync.pending(stream)
    assert [e.seq for e in second.privacy] == [status.entry.seq]
    assert second.rules[0] > 0 and [r.name for r in second.rules[1]] == ["calm"]
    assert stream.cursor == status.entry.seq

    sync.privacy_applied("edge-a", status.entry.seq, None)
    assert cp.ledger.status(status.entry.request_id).state == "completed"


def test_category_cells_from_two_edges_merge_and_stream_back(cp):
    """The per-category counts leave each edge, merge per window, and come back in the priors."""
    sync = SyncService(cp)
    a, _ = sync.connect("edge-a", "eu", MODEL, 0, None)
    b, _ = sync.connect("edge-b", "eu", MODEL, 0, None)
    sync.pending(a)
    now = int(cp.now()) // 300 * 300
    sync.heartbeat(a, Heartbeat(model=MODEL, serving_personal=True,
                                cohorts=[window("eu/mobile/evening", 3, {"beauty": 1.5}, now)]))
    sync.heartbeat(b, Heartbeat(model=MODEL, serving_personal=True,
                                cohorts=[window("eu/mobile/evening", 4, {"beauty": 2.0}, now)]))
    priors = sync.pending(a).priors
    (cell,) = priors.recent
    assert cell.users == 7 and cell.categories == {"beauty": 3.5} and cell.topic_texts == {"beauty": 7}
    assert [p.cohort for p in priors.cohorts] == ["eu/mobile/evening"]


def test_a_revoked_node_is_told_and_an_unknown_node_id_is_refused(cp):
    sync, ops = SyncService(cp), OperatorService(cp)
    stream, _ = sync.connect("edge-a", "eu", MODEL, 0, None)
    ops.revoke_node("edge-a")
    assert sync.pending(stream).revoked
    with pytest.raises(InvalidArgument, match="node id"):
        ops.revoke_node("../etc")


def test_closing_the_store_while_calls_run_in_threads_raises_instead_of_crashing(tmp_path):
    plane = ControlPlane(load_settings({"CP_DATA_DIR": str(tmp_path), "CP_ADMIN_TOKENS": "ops:integration-token",
                                        "CP_PSEUDONYM_KEY": "k" * 32}))
    sync = SyncService(plane)
    streams = [sync.connect(f"edge-{i}", "eu", MODEL, 0, None)[0] for i in range(8)]
    errors, done = [], threading.Event()

    def churn(stream):
        while not done.is_set():
            try:
                sync.pending(stream)
                sync.disconnect(stream.node_id)
            except CpError as exc:
                errors.append(exc)
                return

    threads = [threading.Thread(target=churn, args=(s,)) for s in streams]
    for t in threads:
        t.start()
    plane.close()
    done.set()
    for t in threads:
        t.join(timeout=10)
    assert errors and all("closed" in e.message for e in errors)


def test_an_ack_the_control_plane_never_stored_is_asked_for_again_on_reconnect(cp):
    """The edge applied and ACKed updates 2 and 3, then the control plane died before storing
    those ACKs: the edge's next Hello says cursor 3, and the stream sends 2 and 3 again (the edge
    only ACKs them) so both requests complete."""
    sync, ops = SyncService(cp), OperatorService(cp)
    stream, _ = sync.connect("edge-a", "eu", MODEL, 0, None)
    entries = [ops.delete_user(f"user-{i}", "").entry for i in range(4)]
    assert [e.seq for e in sync.pending(stream).privacy] == [1, 2, 3, 4]
    sync.privacy_applied("edge-a", 1, None)  # 2 and 3 were ACKed but never stored; 4 not applied yet
    sync.disconnect("edge-a")

    again, _ = sync.connect("edge-a", "eu", MODEL, 3, None)
    assert [e.seq for e in sync.pending(again).privacy] == [2, 3, 4]
    for seq in (2, 3, 4):
        sync.privacy_applied("edge-a", seq, None)
    assert all(cp.ledger.status(e.request_id).state == "completed" for e in entries)
    # Nothing is missing now: a reconnect starts at the edge's cursor.
    last, _ = sync.connect("edge-a", "eu", MODEL, 4, None)
    assert not sync.pending(last).privacy


def test_a_withdrawal_keeps_the_users_policy_version_from_filing_to_every_edge(cp):
    from control_plane.convert import privacy_update
    from sentiedge_core.privacy import REVOKE_CONSENT

    sync, ops = SyncService(cp), OperatorService(cp)
    sync.connect("edge-a", "eu", MODEL, 0, None)
    b, _ = sync.connect("edge-b", "eu", MODEL, 0, None)
    subject = "0123456789abcdef" * 2
    seq, new = sync.file("edge-a", "req-user", REVOKE_CONSENT, subject, ["personalization"], 1.0, "2026-11")
    operator = ops.revoke_consent("kim", ["sentiment"], "")
    sent = sync.pending(b).privacy
    assert [(e.seq, e.policy_version) for e in sent] == [(seq, "2026-11"), (operator.entry.seq, "")]
    assert privacy_update(sent[0]).privacy.policy_version == "2026-11"
    assert privacy_update(sent[1]).privacy.policy_version == ""  # an operator's request: the edges keep theirs
    # The same withdrawal under another policy version is its own entry, not folded into the first.
    other, new = sync.file("edge-a", "req-user-2", REVOKE_CONSENT, subject, ["personalization"], 2.0, "2026-12")
    assert new and other != seq
    with pytest.raises(InvalidArgument, match="policy_version has 65 characters; at most 64"):
        sync.file("edge-a", "req-long", REVOKE_CONSENT, subject, ["personalization"], 3.0, "v" * 65)
    with pytest.raises(InvalidArgument, match="non-printable"):
        sync.file("edge-a", "req-ctl", REVOKE_CONSENT, subject, ["personalization"], 3.0, "v1\x00")


def test_the_default_filing_limit_takes_an_honest_burst_at_once_and_bounds_a_rogue_node(cp):
    from control_plane.errors import ResourceExhausted
    from sentiedge_core.privacy import DELETE_USER

    sync = SyncService(cp)
    sync.connect("edge-a", "eu", MODEL, 0, None)
    cp.now = lambda: 1000.0  # no refill while the burst is filed
    for i in range(1000):
        sync.file("edge-a", f"req-{i}", DELETE_USER, f"{i:032x}", [], 1.0)
    with pytest.raises(ResourceExhausted, match="CP_FILINGS_PER_NODE_PER_S"):
        sync.file("edge-a", "req-rogue", DELETE_USER, "f" * 32, [], 1.0)
