import numpy as np

from edge_node.personalization import profiles as p
from edge_node.records import Profile

TUNING = p.Tuning(sentiment_window_s=1800, half_life_s=7 * 86400, prior_weight=2.0)


def feed(profile, category, kind, sentiments, at=1000.0, step=60.0):
    for i, s in enumerate(sentiments):
        p.apply_event(profile, category=category, kind=kind, sentiment=s, at=at + i * step, tuning=TUNING)
    return at + len(sentiments) * step


def test_one_angry_sentence_does_not_flip_a_liked_category():
    profile = Profile()
    now = feed(profile, "skincare", "review", [0.9] * 6)
    liked = p.affinity_scores(profile, now, TUNING)["skincare"]
    now = feed(profile, "skincare", "review", [-1.0], at=now)
    after = p.affinity_scores(profile, now, TUNING)["skincare"]
    assert 0 < after < liked


def test_a_sustained_negative_mood_does_flip_it():
    profile = Profile()
    now = feed(profile, "skincare", "review", [0.9] * 3)
    now = feed(profile, "skincare", "review", [-0.95] * 12, at=now)
    assert p.affinity_scores(profile, now, TUNING)["skincare"] < 0


def test_first_negative_review_makes_a_category_negative_but_only_by_a_fraction():
    profile = Profile()
    now = feed(profile, "garden", "review", [-1.0])
    score = p.affinity_scores(profile, now, TUNING)["garden"]
    assert -1.0 < score < 0


def test_sentiment_fades_after_the_window_and_behaviour_after_its_half_life():
    profile = Profile()
    now = feed(profile, "books", "purchase", [None, None])
    feed(profile, "books", "review", [0.9], at=now)
    mean_now, texts_now, _ = p.windowed_sentiment(profile, now, TUNING)
    mean_later, texts_later, _ = p.windowed_sentiment(profile, now + 4 * 1800, TUNING)
    assert mean_now > 0.2 and texts_now > 0.9
    assert texts_later < 0.05 and abs(mean_later) < abs(mean_now)
    week = p.affinity_scores(profile, now + 7 * 86400, TUNING)["books"]
    fresh = p.affinity_scores(profile, now, TUNING)["books"]
    assert 0 < week < fresh


def test_forgetting_sentiment_keeps_behaviour_only():
    profile = Profile()
    feed(profile, "toys", "review", [0.8, 0.8])
    p.forget_sentiment(profile)
    assert profile.sentiment.weight == 0 and profile.affinities["toys"].sentiment_weight == 0
    assert profile.affinities["toys"].weight != 0


def test_category_vectors_share_their_parent():
    dim = 32
    skincare = p.category_vector("Beauty/Skincare", dim)
    makeup = p.category_vector("beauty/makeup", dim)
    garden = p.category_vector("Garden", dim)
    assert skincare.dtype == np.float32 and skincare.shape == (dim,)
    assert abs(np.linalg.norm(skincare) - 1) < 1e-5
    assert float(skincare @ makeup) > float(skincare @ garden) + 0.2


def test_profile_vector_is_normalized_float32_and_points_to_top_affinities():
    vector = p.vector_of({"beauty/skincare": 2.0, "garden": -0.5}, 16)
    assert vector.dtype == np.float32 and vector.shape == (16,)
    assert abs(float(np.linalg.norm(vector)) - 1) < 1e-5
    assert float(vector @ p.category_vector("beauty/skincare", 16)) > 0.5
    assert float(vector @ p.category_vector("garden", 16)) < 0
    assert not p.vector_of({}, 16).any()


def test_rating_maps_to_a_signed_signal():
    assert p.rating_signal(5) == 1.0 and p.rating_signal(1) == -1.0 and p.rating_signal(3) == 0.0
