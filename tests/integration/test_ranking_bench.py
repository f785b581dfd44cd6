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
