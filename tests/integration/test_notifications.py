"""Notifications against a real store (SQLite and PostgreSQL) and a real local HTTP receiver:
signed webhooks retried with backoff and logged, trends that fire once and clear, and trigger
transitions notified when the fleet's state changes."""

import json
import time

import pytest

from control_plane.cohorts import CohortMerge
from control_plane.rules import RuleBook
from control_plane.store import Aggregate
from control_plane.topics import TopicCatalog
from control_plane.trends import TrendRule, Trends
from control_plane.webhooks import EVENT_ID, SIGNATURE, TIMESTAMP, Sender, WebhookBook, verify
from sentiedge_core.rules import Rule
from sentiedge_core.topics import Topic
from tests.receiver import Receiver


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def sender(store, **options) -> Sender:
    return Sender(store, **{"timeout_s": 5.0, "base_s": 0.05, "max_s": 1.0, "max_attempts": 4,
                            "allow_private": True, **options})


def deliver_all(s: Sender, until: float = 5.0, ahead: float = 0.0) -> list[str]:
    """Deliver whatever is due (``ahead`` seconds from now) until nothing is pending (or ``until`` seconds passed)."""
    states, deadline = [], time.monotonic() + until
    while time.monotonic() < deadline:
        states += [s.deliver(n) for n in s.due(time.time() + ahead)]
        if not any(o.state == "pending" for o in s.store.outbox(None, 100)):
            return states
        time.sleep(0.02)
    return states


def test_a_notification_is_signed_retried_with_backoff_and_logged(store, receiver):
    hooks = WebhookBook(store, allow_private=True)
    view = hooks.set("shop", receiver.url, rotate=False, now=time.time())
    assert view.secret.startswith("whsec_")
    assert hooks.set("shop", receiver.url, rotate=False, now=time.time()).secret == ""  # shown once only
    receiver.statuses = [500, 503]
    queued = hooks.test("shop", time.time())
    assert deliver_all(sender(store)) == ["pending", "pending", "delivered"]
    assert len(receiver.received) == 3
    for headers, body in receiver.received:
        assert headers[EVENT_ID] == queued.event_id  # the same id on every retry: receivers drop repeats
        assert verify(view.secret, headers[SIGNATURE], body, time.time())
        assert headers[SIGNATURE].startswith(f"t={headers[TIMESTAMP]},v1=")
        assert not verify(view.secret, headers[SIGNATURE], body + b" ", time.time())  # a changed body fails
        assert not verify("whsec_other", headers[SIGNATURE], body, time.time())
    event = json.loads(receiver.received[0][1])
    assert (event["type"], event["tenant"], event["id"]) == ("webhook.test", "shop", queued.event_id)
    attempts, deliveries = hooks.log("shop", 10)
    assert [(a[3], a[6], a[7]) for a in attempts] == [(3, 200, ""), (2, 503, "HTTP 503"), (1, 500, "HTTP 500")]
    gaps = [attempts[i][4] - attempts[i + 1][4] for i in range(2)]
    assert gaps[0] > gaps[1] * 1.3  # exponential backoff: the second wait is about twice the first
    assert (deliveries[0].state, deliveries[0].attempts) == ("delivered", 3)


def test_a_notification_is_given_up_after_its_attempts_and_a_dead_receiver_is_retried(store, receiver):
    hooks = WebhookBook(store, allow_private=True)
    hooks.set("shop", receiver.url, rotate=False, now=time.time())
    receiver.statuses = [503] * 10
    hooks.test("shop", time.time())
    assert deliver_all(sender(store, max_attempts=3)) == ["pending", "pending", "failed"]
    assert [(v.pending, v.failed) for v in hooks.all()] == [(0, 1)]
    receiver.close()  # nobody answers: an attempt without an answer is logged and retried too
    hooks.test("shop", time.time())
    s = sender(store, max_attempts=2, timeout_s=1.0)
    assert deliver_all(s) == ["pending", "failed"]
    attempts, _ = hooks.log("shop", 2)
    assert attempts[0][6] == 0 and attempts[0][7].startswith("no answer")


def test_one_notification_is_claimed_by_one_sender_and_a_removed_hook_cancels_what_waits(backend, receiver):
    first, second = backend(), backend()  # two replicas on one database
    try:
        hooks = WebhookBook(first, allow_private=True)
        hooks.set("shop", receiver.url, rotate=False, now=time.time())
        hooks.test("shop", time.time())
        a, b = sender(first), sender(second)
        claimed = a.due(time.time()) + b.due(time.time())
        assert len(claimed) == 1  # the lease: the other replica skips it
        hooks.test("shop", time.time())
        hooks.remove("shop", time.time())
        assert a.deliver(claimed[0]) == "cancelled"
        assert {o.state for o in first.outbox("shop", 10)} == {"cancelled"} and receiver.received == []
    finally:
        first.close()
        second.close()


def test_a_rising_negative_share_fires_once_is_notified_and_clears(store, receiver):
    now = time.time()
    window = 1800
    latest = int(now // window * window) - window
    merge = CohortMerge(store, min_size=5, horizon_s=24 * 3600)
    topics = TopicCatalog(store)
    topics.add("shop", Topic(name="packaging", examples=("box arrived crushed",)), now)
    WebhookBook(store, allow_private=True).set("shop", receiver.url, rotate=False, now=now)
    trends = Trends(store, merge, topics, TrendRule(recent_windows=2, baseline_windows=6, min_mentions=20,
                                                    alpha=0.01))

    def report(start: int, node: str, mentions: int, negative: int, at: float = now) -> None:
        merge.ingest(node, [Aggregate(tenant="shop", window_start=start, window_seconds=window, cohort="all",
                                      users=40, texts=80, events=80, aspect_texts={"packaging": mentions},
                                      aspect_negative={"packaging": negative},
                                      aspect_sentiment={"packaging": -0.5 * negative})], at)

    for k in range(2, 8):  # a calm baseline: 2 of 20 mentions negative in each window, from two edges
        for node in ("edge-a", "edge-b"):
            report(latest - k * window, node, 10, 1)
    assert trends.evaluate(now) == []
    (calm,) = trends.report(now, "shop")  # recent: the two latest windows with data
    assert (calm.recent_texts, calm.baseline_texts, calm.note) == (40, 80, "")
    assert calm.recent_share == calm.baseline_share == 0.1 and not calm.rising
    for k in (0, 1):  # the last two windows: half the mentions negative
        for node in ("edge-a", "edge-b"):
            report(latest - k * window, node, 10, 5)
    (fired,) = trends.evaluate(now)
    assert fired.firing and fired.p_value < 0.01 and fired.recent_share == 0.5 and fired.baseline_share == 0.1
    assert trends.evaluate(now) == []  # fired once: nothing new to notify
    later = now + 2 * window
    for k in (1, 2):  # the next two windows are calm again: the recent share falls back
        for node in ("edge-a", "edge-b"):
            report(latest + k * window, node, 10, 1, at=later)
    (cleared,) = trends.evaluate(later)
    assert not cleared.firing
    states = deliver_all(sender(store), ahead=later - now)  # the clearing was judged two windows ahead
    assert states == ["delivered", "delivered"]
    kinds = [json.loads(body)["type"] for _, body in receiver.received]
    assert kinds == ["trend.fired", "trend.cleared"]
    data = json.loads(receiver.received[0][1])["data"]
    assert data["topic"] == "packaging" and data["recent_share"] == 0.5 and "two-proportion" in data["rule"]


def test_a_trigger_is_notified_when_the_fleet_state_changes_not_per_edge(store, receiver):
    now = time.time()
    rules = RuleBook(store)
    rules.add(Rule(name="pack", cohort="*/*/*", signal="negative_share", topic="packaging", op=">", threshold=0.5,
                   clear=0.4, window_minutes=30, min_size=3, action="sustainability_note"), now)
    WebhookBook(store, allow_private=True).set("shop", receiver.url, rotate=False, now=now)
    steps = [("edge-a", True, 1.0), ("edge-b", True, 2.0), ("edge-a", False, 3.0), ("edge-b", False, 4.0)]
    changed = [rules.reported(node, "shop", "pack", "eu/web/night", active, 0.6, now + at, now)
               for node, active, at in steps]
    assert changed == [True, False, False, True]  # active while any edge has it active
    assert not rules.reported("edge-a", "shop", "pack", "eu/web/night", True, 0.6, now + 0.5, now)  # a late report
    deliver_all(sender(store))
    events = [json.loads(body) for _, body in receiver.received]
    assert [e["type"] for e in events] == ["trigger.activated", "trigger.cleared"]
    assert events[0]["data"]["action"] == "sustainability_note" and events[0]["data"]["cohort"] == "eu/web/night"
    assert events[0]["data"]["topic"] == "packaging"


def test_a_host_that_rebinds_to_loopback_after_the_check_is_not_followed(store, receiver, monkeypatch):
    """DNS rebinding: the name resolves to a public address when the hook is set and when the
    sender checks it, and to the receiver on loopback at the next lookup (where a client that
    resolves again when it connects would go). The sender connects to the address it checked:
    the loopback receiver never hears the notification; a later attempt that sees loopback is
    refused."""
    import socket

    hooks = WebhookBook(store, allow_private=False)
    real = socket.getaddrinfo
    answers = iter(["93.184.216.34", "93.184.216.34"])  # the URL check and the send's check see a public address

    def rebinding(host, port, *args, **kwargs):
        if host != "hooks.example.test":
            return real(host, port, *args, **kwargs)
        address = next(answers, "127.0.0.1")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port or 0))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    hooks.set("shop", f"http://hooks.example.test:{receiver.url.rsplit(':', 1)[1]}", rotate=False, now=time.time())
    hooks.test("shop", time.time())
    assert deliver_all(sender(store, max_attempts=2, allow_private=False, timeout_s=1.0)) == ["pending", "failed"]
    attempts, _ = hooks.log("shop", 2)
    assert attempts[1][7].startswith("no answer")  # the pinned public address: nothing there here
    assert "127.0.0.1" in attempts[0][7] and "private or loopback" in attempts[0][7]  # the rebinding, refused
    assert receiver.received == []
