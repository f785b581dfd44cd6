"""Issue 33: the flaws the replay benchmark (bench/ranking.py) found, each pinned."""

import asyncio
import datetime as dt

from edge_node.ingest import Event, Ingestor
from edge_node.personalization import profiles as p
from edge_node.personalization.cohorts import CohortBook
from edge_node.personalization.ranking import Candidate, Weights, rank
from edge_node.privacy import PrivacyBook, Pseudonymizer
from edge_node.records import Profile
from edge_node.store import EdgeStore

TUNING = p.Tuning(sentiment_window_s=1800, half_life_s=7 * 86400, prior_weight=2.0)
NOW = 1_700_000_000.0


def rated(values, category="action", tuning=TUNING):
    profile = Profile()
    for n, v in enumerate(values):
        p.apply_event(profile, category=category, kind="rating", sentiment=None, rating=p.rating_signal(v),
                      at=NOW + n * 60, tuning=tuning)
    return profile


def test_ratings_below_neutral_build_negative_affinity_and_are_no_texts():
    profile = rated([3.5, 2.0, 2.5, 3.0, 2.5, 2.5] * 23)  # 138 ratings averaging 2.67, as in the issue
    assert p.affinity_scores(profile, NOW + 10_000, TUNING)["action"] < 0
    assert p.affinity_scores(rated([4, 5, 4]), NOW, TUNING)["action"] > 0
    _, texts, _ = p.windowed_sentiment(profile, NOW + 138 * 60, TUNING)
    assert texts == 0  # a user who only rated has sent no texts


def test_reasons_follow_the_score_and_name_the_items_own_category():
    def explain(name, display, score):
        return f"{name}:{'+' if score > 0 else '-'}"

    cands = [Candidate(id="dr", category="Drama/Romance", popularity=10),
             Candidate(id="act", category="Action", popularity=1000)]
    items = rank(cands, personal={"drama/thriller": 2.0, "action": -1.0}, cohort={},
                 weights=Weights(personal=1.0, popularity=0.3), explain_personal=explain, cohort_name=None,
                 limit=2, exploration_slots=0, max_per_category=3, seed="u")
    reasons = {i.id: i.reason for i in items}
    assert reasons["dr"] == "drama:+"  # its parent, never the sibling "drama/thriller"
    assert reasons["act"] == "action:-"  # sank: says why, never "popular right now"


def test_popularity_competes_across_categories():
    cands = [Candidate(id="niche", category="drama", popularity=1), Candidate(id="hit", category="comedy",
                                                                              popularity=5000)]
    items = rank(cands, personal={"drama": 4.0, "comedy": 3.5}, cohort={}, weights=Weights(popularity=1.0),
                 explain_personal=lambda *a: "", cohort_name=None, limit=2, exploration_slots=0,
                 max_per_category=3, seed="u")
    assert [i.id for i in items] == ["hit", "niche"]  # a slightly preferred genre no longer buries a hit


def test_past_the_category_cap_paths_fold_into_their_parent():
    tuning = p.Tuning(sentiment_window_s=1800, half_life_s=7 * 86400, prior_weight=2.0, max_categories=3)
    profile = Profile()
    for n, category in enumerate(["drama", "drama/romance", "drama/war", "comedy", "comedy/romance"]):
        p.apply_event(profile, category=category, kind="purchase", sentiment=None, at=NOW + n, tuning=tuning)
    assert len(profile.affinities) <= 3 and "drama" in profile.affinities
    assert profile.affinities["drama"].weight > 2.0 * 0.99  # what drama/* said was kept in drama
    assert sum(a.weight for a in profile.affinities.values()) > 5 * 2.0 * 0.99


def test_backfill_keeps_old_events_and_decays_them(tmp_path):
    store = EdgeStore(tmp_path, retention_s=30 * 86400)
    cohorts = CohortBook(store, window_s=1800, min_size=1, max_per_user=2, horizon_s=86400)
    privacy = PrivacyBook(store, cohorts, Pseudonymizer(b"k" * 32))

    async def no_texts(texts, subject):
        return []

    ingestor = Ingestor(privacy, cohorts, TUNING, retention_s=30 * 86400, score=no_texts)
    privacy.set_consent("old", {"personalization": True}, "v1", NOW - 400 * 86400, NOW - 400 * 86400)
    events = [Event(type="rating", item_id=f"m{n}", category="Drama", value=5,
                    timestamp=dt.datetime.fromtimestamp(NOW - (365 - n) * 86400, dt.UTC)) for n in range(3)]
    live = asyncio.run(ingestor.ingest("old", events, None, NOW, tenant=""))
    assert live.dropped == 3 and live.dropped_reasons == {"older_than_retention": 3}
    replay = asyncio.run(ingestor.ingest("old", events, None, NOW, tenant="", backfill=True))
    assert replay.accepted == 3
    profile = store.profile(privacy.subject_of("old"))
    score = p.affinity_scores(profile, NOW, TUNING)["drama"]
    assert 0 < score < 1e-6  # kept, and a year of 7-day half-lives later it weighs next to nothing
    store.close()
