import pytest

from edge_node.personalization.cohorts import CohortBook
from edge_node.personalization.triggers import Rule, TriggerBook, matches
from edge_node.records import Member
from edge_node.store import EdgeStore

NOW = 1_800_000_000.0
KEY = "eu/mobile/evening"
RULE = Rule(name="sad-eu", cohort="eu/mobile/*", signal="negative_share", op=">", threshold=0.5, clear=0.4,
            window_minutes=30, min_size=3, action="sustainability_note")


@pytest.fixture
def book(tmp_path):
    store = EdgeStore(tmp_path, retention_s=86400)
    cohorts = CohortBook(store, window_s=1800, min_size=1, max_per_user=2, horizon_s=86400, prior_cache_s=0)
    served = []
    triggers = TriggerBook(cohorts, on_served=served.append)
    triggers.set_rules([RULE], 1)
    triggers.served = served
    yield triggers
    store.close()


def texts(book, user, key, negative: int, positive: int, category="garden", tenant="shop"):
    m = Member(texts=negative + positive, negative=negative, events=negative + positive,
               sentiment_sum=-0.8 * negative + 0.8 * positive,
               topic_texts={category: negative + positive}, topic_negative={category: negative},
               topic_events={category: negative + positive},
               topic_sentiment={category: -0.8 * negative + 0.8 * positive})
    with book.cohorts.store.transaction():
        book.cohorts.contribute(user, key, NOW, m, NOW, tenant=tenant)


def test_selectors_match_with_wildcards():
    assert matches("eu/mobile/*", KEY) and matches("*/*/*", KEY)
    assert not matches("us/mobile/*", KEY) and not matches("eu/mobile", KEY)


def test_an_action_turns_on_over_the_threshold_only_in_its_cohort_and_clears_with_hysteresis(book):
    for user in ("u1", "u2"):
        texts(book, user, KEY, negative=2, positive=0)
    book.evaluate(KEY, NOW + 1, "shop")
    assert book.active(KEY, NOW + 1, None, "shop") == []  # 2 users: under the rule's minimum size
    texts(book, "u3", KEY, negative=1, positive=1)
    book.evaluate(KEY, NOW + 2, "shop")
    (action,) = book.active(KEY, NOW + 2, None, "shop")
    assert action.action == "sustainability_note" and action.rule == "sad-eu"
    assert action.reason == "cohort eu/mobile/evening: negative share 0.83 > 0.5 over 30 min"
    assert book.served == [pytest.approx(0.0)]  # served in the same second it crossed
    texts(book, "u1", "us/web/evening", negative=5, positive=0)
    book.evaluate("us/web/evening", NOW + 3, "shop")
    assert book.active("us/web/evening", NOW + 3, None, "shop") == []  # not this rule's cohort
    texts(book, "u4", KEY, negative=0, positive=3)  # 5 of 9 negative: 0.56, still active
    texts(book, "u5", KEY, negative=0, positive=2)  # 5 of 11: 0.45, between clear and threshold
    book.evaluate(KEY, NOW + 4, "shop")
    assert len(book.active(KEY, NOW + 4, None, "shop")) == 1  # hysteresis: no flapping
    texts(book, "u6", KEY, negative=0, positive=2)  # 5 of 13: 0.38 < 0.4
    book.evaluate(KEY, NOW + 5, "shop")
    assert book.active(KEY, NOW + 5, None, "shop") == []
    assert [(t.active, t.cohort) for t in book.transitions] == [(True, KEY), (False, KEY)]


def test_a_category_rule_counts_only_that_topic(book):
    rule = Rule(name="garden", cohort="*/*/*", signal="negative_share", category="garden", op=">", threshold=0.5,
                clear=0.4, window_minutes=30, min_size=1, action="garden_help")
    book.set_rules([rule], 2)
    texts(book, "u1", KEY, negative=3, positive=0, category="garden")
    texts(book, "u2", KEY, negative=0, positive=9, category="books")
    book.evaluate(KEY, NOW + 1, "shop")
    (action,) = book.active(KEY, NOW + 1, None, "shop")
    assert "negative share of garden 1.00" in action.reason


def test_mean_sentiment_and_volume_can_be_restricted_to_a_topic(book):
    mood = Rule(name="garden-mood", cohort="*/*/*", signal="mean_sentiment", category="garden", op="<", threshold=-0.4,
                clear=-0.3, window_minutes=30, min_size=1, action="garden_help")
    book.set_rules([mood], 3)
    texts(book, "u1", KEY, negative=3, positive=0, category="garden")  # clipped: -1 per user
    texts(book, "u2", KEY, negative=0, positive=4, category="books")
    book.evaluate(KEY, NOW + 1, "shop")
    (action,) = book.active(KEY, NOW + 1, None, "shop")
    assert action.reason == "cohort eu/mobile/evening: mean sentiment of garden -0.50 < -0.4 over 30 min"
    assert book.signal(mood, KEY, NOW + 1, "shop")[0] == pytest.approx(-0.5)  # -1 over the cohort's 2 users


def test_a_rule_acts_on_each_tenants_cohort_apart(book):
    """Packaging complaints in one tenant's cohort switch its action on for that tenant's users
    only: another tenant's users in the same region, device and daypart never see it."""
    packaging = Rule(name="packaging", cohort="eu/mobile/*", signal="negative_share", category="packaging", op=">",
                     threshold=0.5, clear=0.4, window_minutes=30, min_size=3, action="packaging_apology")
    book.set_rules([packaging], 2)
    for user in ("u1", "u2", "u3"):
        texts(book, user, KEY, negative=2, positive=0, category="packaging", tenant="shop")
        texts(book, f"p-{user}", KEY, negative=0, positive=2, category="packaging", tenant="pharmacy")
    book.evaluate(KEY, NOW + 1, "shop")
    book.evaluate(KEY, NOW + 1, "pharmacy")
    (action,) = book.active(KEY, NOW + 1, None, "shop")
    assert action.action == "packaging_apology"
    assert book.active(KEY, NOW + 1, None, "pharmacy") == []
    assert book.active(KEY, NOW + 1, None, "third") == []  # no cells at all: nothing
    assert [(t.tenant, t.active) for t in book.transitions] == [("shop", True)]
    assert book.transitions[0].reported_cohort() == f"shop:{KEY}"


def test_a_rule_for_one_tenant_never_reads_or_serves_another(book):
    rule = Rule(name="only-pharmacy", cohort="*/*/*", signal="negative_share", op=">", threshold=0.5, clear=0.4,
                window_minutes=30, min_size=1, action="calm", tenant="pharmacy")
    book.set_rules([rule], 2)
    texts(book, "u1", KEY, negative=3, positive=0, tenant="shop")
    book.evaluate(KEY, NOW + 1, "shop")
    assert book.active(KEY, NOW + 1, None, "shop") == []
    assert book.active(KEY, NOW + 1, None, "pharmacy") == []  # its own cohort is calm (empty)
    texts(book, "p1", KEY, negative=3, positive=0, tenant="pharmacy")
    book.evaluate(KEY, NOW + 2, "pharmacy")
    assert [a.action for a in book.active(KEY, NOW + 2, None, "pharmacy")] == ["calm"]
    assert book.active(KEY, NOW + 2, None, "shop") == []
