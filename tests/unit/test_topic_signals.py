"""Topic signals: the edge's per-user clip of topic mentions, rules on a topic's negative share,
the control plane's bound on a node's topic counts, the trend statistics and the webhook
signature and URL rules."""

import math
import time

import pytest

from control_plane.cohorts import CohortMerge, scaled
from control_plane.errors import InvalidArgument
from control_plane.rules import validate
from control_plane.trends import TrendRule, Window, judge, one_sided_two_proportion
from control_plane.webhooks import check_url, sign, verify
from edge_node.ingest import count_aspects
from edge_node.personalization.cohorts import CohortBook
from edge_node.personalization.triggers import TriggerBook
from edge_node.records import CohortCell, Member
from edge_node.store import EdgeStore
from sentiedge_core.cohorts import ASPECT_TEXTS_PER_USER, Aggregate
from sentiedge_core.rules import Rule
from sentiedge_core.topics import Aspect

NOW = 1_800_000_000.0
KEY = "eu/mobile/evening"
PACKAGING = Rule(name="pack", cohort="*/*/*", signal="negative_share", topic="packaging", op=">", threshold=0.5,
                 clear=0.4, window_minutes=30, min_size=3, action="sustainability_note")


@pytest.fixture
def cohorts(tmp_path):
    store = EdgeStore(tmp_path, retention_s=86400)
    yield CohortBook(store, window_s=1800, min_size=1, max_per_user=2, horizon_s=86400, prior_cache_s=0)
    store.close()


def mentions(cohorts, user, key, topic, negative: int, positive: int, tenant="shop"):
    m = Member(texts=negative + positive, negative=negative, events=negative + positive,
               aspect_texts={topic: negative + positive}, aspect_negative={topic: negative},
               aspect_sentiment={topic: -0.9 * negative + 0.9 * positive})
    with cohorts.store.transaction():
        cohorts.contribute(user, key, NOW, m, NOW, tenant=tenant)


def cell(cohorts, key=KEY, tenant="shop") -> CohortCell:
    return cohorts.cells(cohorts.window_of(NOW), tenant)[key]


def test_one_user_counts_at_most_a_few_mentions_per_topic_and_a_withdrawal_takes_them_back(cohorts):
    mentions(cohorts, "u1", KEY, "packaging", negative=20, positive=0)  # a complainer repeating themselves
    mentions(cohorts, "u2", KEY, "packaging", negative=1, positive=3)
    c = cell(cohorts)
    assert c.aspect_texts == {"packaging": ASPECT_TEXTS_PER_USER + 4}
    assert c.aspect_negative == {"packaging": ASPECT_TEXTS_PER_USER + 1}
    assert c.aspect_sentiment["packaging"] == pytest.approx(-1.0 + 1.0)  # each user's sum clipped to ±1
    mentions(cohorts, "u1", KEY, "packaging", negative=0, positive=10)  # later texts of the same window
    c = cell(cohorts)
    assert c.aspect_texts["packaging"] == ASPECT_TEXTS_PER_USER + 4  # still 5 of theirs: 20 of 30 negative
    assert c.aspect_negative["packaging"] == 3 + 1  # ... in proportion: 20/30 of 5, rounded down
    cohorts.withdraw("u1", NOW)
    cohorts.withdraw("u2", NOW)
    c = cell(cohorts)
    assert (c.aspect_texts, c.aspect_negative, c.aspect_sentiment) == ({}, {}, {})


def test_each_aspect_of_a_text_is_one_mention_negative_only_when_labelled_so():
    m = Member()
    for aspects in [(Aspect(topic="packaging", label="negative", score=-0.8, confidence=0.9),
                     Aspect(topic="delivery", label="positive", score=0.6, confidence=0.8)),
                    (Aspect(topic="packaging", label="neutral", score=-0.1, confidence=0.6),)]:
        count_aspects(m, aspects)
    assert m.aspect_texts == {"packaging": 2, "delivery": 1}
    assert m.aspect_negative == {"packaging": 1, "delivery": 0}  # the neutral one is no complaint
    assert m.aspect_sentiment == pytest.approx({"packaging": -0.9, "delivery": 0.6})


def test_a_rule_on_a_topic_reads_the_topics_mentions_only_in_its_tenants_cohort(cohorts):
    triggers = TriggerBook(cohorts)
    triggers.set_rules([PACKAGING], 1)
    for user in ("a1", "a2", "a3"):  # packaging complaints in one cohort
        mentions(cohorts, user, KEY, "packaging", negative=2, positive=1)
        mentions(cohorts, f"d-{user}", KEY, "delivery", negative=0, positive=3)  # happy about delivery
    for user in ("b1", "b2", "b3"):  # another cohort only praises its packaging
        mentions(cohorts, user, "us/web/evening", "packaging", negative=0, positive=2)
    for user in ("c1", "c2", "c3"):  # another tenant's users complain in the same cohort
        mentions(cohorts, user, "us/web/evening", "packaging", negative=3, positive=0, tenant="casino")
    (action,) = triggers.active(KEY, NOW + 1, None, "shop")
    assert action.action == "sustainability_note"
    assert action.reason == "cohort eu/mobile/evening: negative share of topic packaging 0.67 > 0.5 over 30 min"
    assert triggers.active("us/web/evening", NOW + 1, None, "shop") == []
    assert len(triggers.active("us/web/evening", NOW + 1, None, "casino")) == 1  # its own cohort, its own state
    assert [t.tenant for t in triggers.transitions] == ["shop", "casino"]


def test_a_nodes_topic_counts_are_bounded_before_they_are_stored(tmp_path):
    merge = CohortMerge(store=None, min_size=5, horizon_s=86400)
    junk = {f"t{i}": 1 for i in range(100)} | {"Bad Name!": 5, "packaging": 10_000}
    a = Aggregate(window_start=0, window_seconds=1800, cohort=KEY, tenant="shop", users=10, texts=200, events=200,
                  aspect_texts=junk, aspect_negative={"packaging": 20_000, "nowhere": 3},
                  aspect_sentiment={"packaging": -1e9, "t1": 0.5})
    bounded, clipped = merge.bound(a, cap=10)
    assert clipped
    assert bounded.aspect_texts["packaging"] == 10 * ASPECT_TEXTS_PER_USER  # users times the edges' clip
    assert "Bad Name!" not in bounded.aspect_texts and len(bounded.aspect_texts) == 64  # a topic set's worth
    assert bounded.aspect_negative == {"packaging": 50}  # at most the mentions, only of topics kept
    assert bounded.aspect_sentiment["packaging"] == -10.0  # at most one per user
    half = scaled(bounded, 0.5)
    assert half.aspect_texts["packaging"] == 25 and half.aspect_sentiment["packaging"] == -5.0


def test_rules_on_topics_are_validated():
    assert validate(PACKAGING).topic == "packaging"
    for change, message in [({"topic": "Pack aging"}, "not a topic name"),
                            ({"signal": "mean_sentiment", "op": "<", "threshold": -0.5, "clear": -0.4},
                             "watches negative_share or text_volume"),
                            ({"category": "garden"}, "a category or a topic, not both")]:
        with pytest.raises(InvalidArgument, match=message):
            validate(Rule(**{**{f: getattr(PACKAGING, f) for f in Rule.__struct_fields__}, **change}))


def test_the_two_proportion_test_against_known_values():
    z, p = one_sided_two_proportion(30, 100, 15, 100)  # 0.30 against 0.15
    pooled = 45 / 200
    assert z == pytest.approx((0.15) / math.sqrt(pooled * (1 - pooled) * 0.02))
    assert z == pytest.approx(2.5400, abs=1e-4) and p == pytest.approx(0.005542, abs=1e-5)  # 1 - Phi(2.54)
    assert one_sided_two_proportion(10, 100, 30, 100)[1] > 0.99  # falling: no rise
    assert one_sided_two_proportion(0, 50, 0, 50) == (0.0, 0.5)
    assert one_sided_two_proportion(5, 0, 1, 10) == (0.0, 1.0)


def windows(shares: list[tuple[int, int]]) -> dict[int, Window]:
    return {i * 1800: Window(window_start=i * 1800, texts=n, negative=x) for i, (n, x) in enumerate(shares)}


def test_a_trend_is_judged_only_with_enough_mentions_and_clears_with_hysteresis():
    rule = TrendRule(recent_windows=2, baseline_windows=4, min_mentions=20, alpha=0.01)
    calm = [(30, 3)] * 4
    thin = judge("shop", "packaging", windows(calm + [(5, 4), (5, 4)]), 5 * 1800, 1800, rule, firing=False)
    assert not thin.firing and thin.note.startswith("too few mentions to judge: 10 recent, 120 baseline")
    rise = judge("shop", "packaging", windows(calm + [(30, 15), (30, 15)]), 5 * 1800, 1800, rule, firing=False)
    assert rise.rising and rise.firing and rise.p_value < 0.01 and len(rise.windows) == 6
    assert (rise.recent_share, rise.baseline_share) == (0.5, 0.1)
    middling = windows(calm + [(30, 6), (30, 6)])  # 0.2 against 0.1: p between alpha and 10 alpha
    held = judge("shop", "packaging", middling, 5 * 1800, 1800, rule, firing=True)
    fresh = judge("shop", "packaging", middling, 5 * 1800, 1800, rule, firing=False)
    assert 0.01 < held.p_value < 0.1 and held.firing and not fresh.firing  # hysteresis
    older = judge("shop", "packaging", windows([(30, 3)] * 20), 19 * 1800, 1800, rule, firing=False)
    assert len(older.windows) == 6  # only the recent period and the baseline are shown


def test_signatures_verify_only_with_the_secret_the_body_and_a_fresh_timestamp():
    body, now = b'{"id":"evt_1"}', int(time.time())
    header = sign("whsec_abc", now, body)
    assert verify("whsec_abc", header, body, now)
    assert not verify("whsec_abc", header, body + b"x", now)
    assert not verify("whsec_abd", header, body, now)
    assert not verify("whsec_abc", header, body, now + 301)  # a replay later than the tolerance
    assert not verify("whsec_abc", "v1=deadbeef", body, now)


@pytest.mark.parametrize(("url", "message"), [
    ("ftp://example.com/hook", "must start with https:// or http://"),
    ("example.com/hook", "must start with https:// or http://"),
    ("https://user:pw@example.com/hook", "must not carry a user or password"),
    ("https:///hook", "has no host"),
    ("https://example.com:99999/hook", "port is not a number"),
    ("https://exa mple.com/hook", "without spaces"),
    ("http://127.0.0.1:9000/hook", "resolves to 127.0.0.1, a loopback, private or reserved address"),
    ("http://10.1.2.3/hook", "resolves to 10.1.2.3"),
    ("http://[::1]/hook", "resolves to ::1"),
    ("http://100.100.100.200/latest/meta-data", "resolves to 100.100.100.200"),  # shared space: cloud metadata
    ("http://100.64.0.1/hook", "resolves to 100.64.0.1"),
])
def test_webhook_urls_are_checked(url, message):
    with pytest.raises(InvalidArgument, match=message.replace("(", r"\(")):
        check_url(url, allow_private=False)


def test_loopback_webhooks_are_allowed_only_when_private_addresses_are():
    assert check_url(" http://127.0.0.1:9000/hook ", allow_private=True) == "http://127.0.0.1:9000/hook"
