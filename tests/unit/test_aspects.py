"""Aspect sentiment's parts: clauses, keyword patterns, the matching rule, the topic book, the
starter set and the labelled clause set."""

import collections
import csv
from pathlib import Path

import numpy as np
import pytest

from edge_node.aspects import clauses
from edge_node.aspects.book import TopicBook
from edge_node.aspects.evaluate import CLAUSES, load, macro_f1
from edge_node.aspects.matching import TopicIndex, keyword_pattern
from sentiedge_core.topics import Topic, TopicSet, problem, starter

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("text, expected", [
    ("The serum is lovely but the box was crushed and full of plastic",
     ["The serum is lovely", "but the box was crushed and full of plastic"]),
    ("Shipping took forever; support never answered!\nThanks", ["Shipping took forever;", "support never answered!",
                                                                "Thanks"]),
    ("It cost $ 39.99 after the rebate. Fine.", ["It cost $ 39.99 after the rebate.", "Fine."]),
    ("Good, yet pricey. Although late, it works", ["Good", "yet pricey.", "Although late, it works"]),
    ("Not yet arrived", ["Not yet arrived"]),
    ("... !!! ", []),
    ("", []),
])
def test_a_text_is_cut_at_sentence_ends_and_before_contrast_words(text, expected):
    assert clauses.split(text, 8) == expected


def test_clauses_are_bounded_to_the_first_ones():
    text = ". ".join(f"part {i}" for i in range(50))
    assert clauses.split(text, 3) == ["part 0.", "part 1.", "part 2."]


def test_keywords_match_whole_words_and_phrases_case_insensitively_with_a_plural():
    pattern = keyword_pattern(("box", "customer service", "fee"))
    assert pattern.search("The BOX was torn") and pattern.search("two boxes") and pattern.search("hidden fees")
    assert pattern.search("Customer   Service never called")
    assert not pattern.search("a boxer") and not pattern.search("coffee") and not pattern.search("service")
    assert keyword_pattern(()) is None and keyword_pattern(("  ",)) is None


WORDS = ["parcel", "late", "price", "cheap", "fit", "size", "love"]


def bag(texts: list[str]) -> np.ndarray:
    """A stand-in encoder for the rule's arithmetic: one dimension per word above (+1 constant)."""
    return np.asarray([[t.lower().count(w) for w in WORDS] + [0.2] for t in texts], dtype=float)


def index_of(*topics: Topic, **kwargs) -> TopicIndex:
    return TopicIndex(TopicSet(tenant="t", version=1, topics=topics), bag, **kwargs)


def test_the_best_topic_is_taken_only_at_the_threshold_and_keywords_add_their_bonus():
    index = index_of(Topic(name="delivery", examples=("parcel late",), keywords=("courier",)),
                     Topic(name="price", examples=("price cheap",)), threshold=0.9, keyword_bonus=0.3)
    texts = ["the parcel was late", "what a price", "I love it", "the courier was so late"]
    assert index.assign(texts, bag(texts)) == ["delivery", None, None, "delivery"]
    index.keyword_bonus = 0.0  # "so late" alone is not near enough to "parcel late": the keyword decided
    assert index.assign(texts, bag(texts)) == ["delivery", None, None, None]
    assert index.assign([], bag(["x"])[:0]) == []


def test_a_topic_with_keywords_only_matches_by_its_keywords():
    index = index_of(Topic(name="fit", keywords=("too tight",)), Topic(name="price", examples=("price",)),
                     threshold=0.95)
    texts = ["it is too tight", "it is tight", "the price"]
    assert index.assign(texts, bag(texts)) == ["fit", None, "price"]


def test_the_book_holds_one_set_per_tenant_and_an_empty_set_forgets_it():
    book = TopicBook()
    shop = TopicSet(tenant="shop", version=3, topics=(Topic(name="delivery", keywords=("parcel",)),))
    book.set(shop)
    book.set(TopicSet(tenant="clinic", version=1, topics=(Topic(name="support", keywords=("nurse",)),)))
    assert book.get("shop") is shop and book.get("other") is None and book.tenants() == ["clinic", "shop"]
    book.set(TopicSet(tenant="shop", version=4))
    assert book.get("shop") is None and book.tenants() == ["clinic"]


def test_the_starter_set_is_the_seven_dtc_topics_and_valid():
    topics = starter()
    assert [t.name for t in topics] == ["delivery", "packaging", "price-value", "quality", "sizing-fit", "support",
                                        "app-website"]
    assert all(problem(t) is None and t.examples and t.keywords for t in topics)


def test_the_clause_set_is_large_balanced_and_split_into_tuning_and_held_out_parts():
    rows = load()
    assert CLAUSES.read_text(encoding="utf-8").startswith("# Aspect clause set")
    assert len(rows) >= 300 and len({r.text.lower() for r in rows}) == len(rows)
    names = {t.name for t in starter()}
    per_topic = collections.Counter(r.topic for r in rows)
    assert set(per_topic) == names | {"none"} and min(per_topic[n] for n in names) >= 35
    for name in per_topic:
        parts = collections.Counter(r.part for r in rows if r.topic == name)
        assert set(parts) == {"tune", "test"} and abs(parts["tune"] - parts["test"]) <= 1
    assert all(r.polarity in ("positive", "negative") for r in rows if r.topic != "none")
    assert {r.polarity for r in rows} <= {"positive", "negative", "neutral"}


def test_each_customer_clause_is_a_verbatim_part_of_the_line_it_names():
    files = {}
    for r in load():
        kind, _, where = r.source.partition(":")
        if kind in ("customer_train.csv", "customer_validation.csv"):
            if kind not in files:
                with open(ROOT / "models" / kind, encoding="utf-8", newline="") as f:
                    files[kind] = list(csv.reader(f))
            assert r.text in files[kind][int(where) - 1][0], r
        else:
            assert kind in ("vader-amazon", "written") and where, r


def test_macro_f1_averages_the_topics_and_counts_a_wrong_topic_against_the_predicted_one():
    score, per = macro_f1(["a", "a", "b", "none"], ["a", "b", "b", "a"], ["a", "b"])
    assert per["a"] == pytest.approx((0.5, 0.5, 0.5)) and per["b"] == pytest.approx((0.5, 1.0, 2 / 3))
    assert score == pytest.approx((0.5 + 2 / 3) / 2)


def test_served_vectors_are_kept_only_while_a_tenant_has_topics_and_only_the_newest():
    from edge_node.aspects.analyzer import AspectAnalyzer

    book = TopicBook()
    analyzer = AspectAnalyzer(book, max_clauses=4)
    analyzer.remember(["a text"], np.ones((1, 3)))
    assert analyzer._recall("a text") is None  # no tenant has topics: nothing kept
    book.set(TopicSet(tenant="shop", version=1, topics=(Topic(name="delivery", keywords=("parcel",)),)))
    texts = [f"text {i}" for i in range(analyzer.REMEMBERED + 5)]
    analyzer.remember(texts, np.arange(len(texts), dtype=float)[:, None])
    assert analyzer._recall("text 0") is None and analyzer._recall("  text   7 ")[0] == 7.0
    assert analyzer._recall("text 7") is None  # handed over once
