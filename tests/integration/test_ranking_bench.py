"""The replay benchmark's fleet (bench/ranking.py) on a small log: three in-process edges send their
co-occurrence windows to a real control-plane merge, and the table it builds is not empty. A
change to the control plane's intake once refused the replay's one window and left the
benchmark ranking without a table, which only its figures showed."""

import numpy as np

from bench import ranking


def small_log(users: int = 30) -> dict[str, np.ndarray]:
    rows = []
    for u in range(users):
        for n, item in enumerate((1, 2, 3, 4, 5, 6, 7, 8, 9, 10)):
            rows.append((u, item, 4.5 if item <= 5 else 2.0, 1_300_000_000 + u * 3600 + n * 60))
    user, item, rating, ts = (np.asarray(c) for c in zip(*rows, strict=True))
    genres = np.asarray(["Drama|Romance" if i % 2 else "Action" for i in item], dtype=object)
    return {"user": user, "item": item, "rating": rating, "ts": ts, "genres": genres}


def test_the_benchmark_fleet_builds_a_neighbour_table(tmp_path):
    split = ranking.Split(small_log())
    fleet = ranking.Fleet(tmp_path, min_users=3)
    try:
        replayed = fleet.replay(split.train, split)
        assert replayed["accepted"] > 0 and replayed["dropped"] == 0
        shared = fleet.share_neighbours(split.train, top_m=50, shrink=5)
        assert shared["pairs_sent"] > 0
        assert shared["items"] > 0 and shared["neighbours"] > 0  # the merge kept what three edges agree on
    finally:
        for edge in fleet.edges:
            edge.close()


def test_the_central_item_knn_baseline_ranks_what_is_chosen_together_over_what_is_popular(tmp_path):
    log = small_log(40)
    split = ranking.Split(log)
    t = 1_300_000_000
    # Users 0-9 chose items 1, 2 and 3 together; users 10-39 items 4 and 5 (more popular, never with 1).
    history = {u: [(i, 5.0, t + i) for i in ((1, 2, 3) if u < 10 else (4, 5))] for u in range(40)}
    history[0] = [(1, 5.0, t)]  # the user ranked: only item 1
    pop = ranking.popularity_of(history)
    ranked = ranking.item_knn_baseline([(0, [4, 2, 5, 3], {2, 3}, t + 10)], history, split, pop)
    assert set(ranked[0][:2]) == {2, 3}  # popularity alone would put 4 and 5 first


def test_the_ease_baseline_ranks_what_is_chosen_together_over_what_is_popular(tmp_path):
    split = ranking.Split(small_log(40))
    t = 1_300_000_000
    history = {u: [(i, 5.0, t + i) for i in ((1, 2, 3) if u < 10 else (4, 5))] for u in range(40)}
    history[0] = [(1, 5.0, t)]
    pop = ranking.popularity_of(history)
    case = [(0, [4, 2, 5, 3], {2, 3}, t + 10)]
    ranked = ranking.ease_baseline(case, history, split, pop, lam=1.0, popularity=0.0)
    assert set(ranked[0][:2]) == {2, 3}
    # With popularity's weight far above EASE's scores, the popular items come first again.
    assert set(ranking.ease_baseline(case, history, split, pop, lam=1.0, popularity=10.0)[0][:2]) == {4, 5}


def test_the_ease_scores_are_steck_s_closed_form():
    # EASE (Steck 2019): B = I − P·diag(1/diag(P)), P = (XᵀX + λI)⁻¹, diag(B) = 0, scores X·B;
    # written here the textbook way, on a random interaction log of 12 users and 9 items.
    rng = np.random.default_rng(5)
    rows = [(u, int(i), 4.0, 1_300_000_000 + u * 3600 + n) for u in range(12)
            for n, i in enumerate(sorted(rng.choice(9, size=4, replace=False) + 1))]
    user, item, rating, ts = (np.asarray(c) for c in zip(*rows, strict=True))
    split = ranking.Split({"user": user, "item": item, "rating": rating, "ts": ts,
                           "genres": np.asarray(["Action"] * len(item), dtype=object)})
    history = {u: [(i, r, t) for uu, i, r, t in rows if uu == u] for u in range(12)}
    x = np.zeros((12, 9))
    for u, i, _, _ in rows:
        x[u, i - 1] = 1.0
    lam = 3.0
    p = np.linalg.inv(x.T @ x + lam * np.eye(9))
    b = np.eye(9) - p @ np.diag(1.0 / np.diag(p))
    np.fill_diagonal(b, 0.0)
    expected = x @ b
    score = ranking.ease_scorer(history, split, lam)
    for u in range(12):
        np.testing.assert_allclose(score(u, list(range(1, 10))), expected[u], atol=1e-9)


def test_the_cold_start_on_test_ranks_every_user_with_a_positive_against_popularity(tmp_path):
    # 30 users, each liking 5 of 12 shared items (pairs that many users choose together) and 5 of
    # their own: every user has held-out positives and 100 unrated candidates among 162 items.
    rows = [(u, item, 4.5, 1_300_000_000 + u * 3600 + n * 60) for u in range(30)
            for n, item in enumerate([(u + k) % 12 + 1 for k in range(5)] + [13 + u * 5 + k for k in range(5)])]
    user, item, rating, ts = (np.asarray(c) for c in zip(*rows, strict=True))
    log = {"user": user, "item": item, "rating": rating, "ts": ts,
           "genres": np.asarray(["Drama|Romance" if i % 2 else "Action" for i in item], dtype=object)}
    split = ranking.Split(log)
    history = split.history("test")
    fleet = ranking.Fleet(tmp_path / "fleet", min_users=3)
    try:
        fleet.replay(history, split)
        fleet.share_neighbours(history, top_m=50, shrink=5)
        table = fleet.table
        assert table is not None
    finally:
        fleet.close()
    cases = split.cases("test", seed=13)
    out = ranking.first_events_on_test(tmp_path / "first", table, cases, split, history,
                                       ranking.popularity_of(history), ranking.shipped_config())
    assert out["users"] == len(cases) > 0
    assert 0 <= out["popularity NDCG@10"] <= 1 and 0 <= out["shipped NDCG@10"] <= 1
    assert out["its standard error"] >= 0
    assert (tmp_path / "first").is_dir()
