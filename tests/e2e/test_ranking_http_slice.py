"""The replay benchmark's HTTP slice (bench/ranking_http.py) on a small log: a real ``edge-node
serve`` fed over HTTP (consent, events, /v1/rank) answers as the edge's code does in-process with
the same history and item-neighbour table — the same top 10, the same reasons, for warm users and
cold-start ones."""

import random
from types import SimpleNamespace

from bench import ranking, ranking_http
from sentiedge_core.cooccurrence import NeighbourTable

CATEGORIES = ["Action", "Drama/Romance", "Comedy", "Action/Sci-Fi", "Horror"]


def test_a_served_edge_ranks_the_replay_as_the_in_process_edge(tmp_path):
    rng = random.Random(5)
    genres = {i: rng.choice(CATEGORIES) for i in range(1, 121)}
    start = 1_300_000_000
    # Six users rated over weeks, two of them only twice (cold start): 5 stars for their favourite
    # genre, 1-3 for the rest.
    history = {u: [(i, 5.0 if genres[i] == CATEGORIES[u % 5] else float(rng.randint(1, 3)),
                    start + u * 1000 + n * 86400)
                   for n, i in enumerate(rng.sample(range(1, 121), 2 if u % 3 == 0 else 25))] for u in range(1, 7)}
    cases = [(u, rng.sample(range(1, 121), 30), set(), float(history[u][-1][2] + 86400)) for u in history]
    pop = {i: rng.randint(0, 50) for i in genres}
    table = NeighbourTable(tenant="bench", version=1,
                           items={str(i): [(str(j), 0.5) for j in range(i + 1, i + 4)] for i in range(1, 118)})
    out = ranking_http.run(tmp_path, ranking.ROOT, edge_factory=lambda d, env: ranking.Edge(d, env=env),
                           split=SimpleNamespace(genres=genres), history=history, cases=cases, pop=pop, table=table,
                           tenant="bench", users=6)
    assert out["users"] == 6 and out["dropped"] == 0
    assert out["same top 10 and reasons"] == 6, out["differences"]
    reasons = [reason for top in out["answers"]["http"].values() for _, reason in top]
    assert all(len(top) == 10 for top in out["answers"]["http"].values())
    # The answers carry every kind of signal the replay exercises, so "the same" says something.
    assert any(r.startswith("often chosen with") for r in reasons)
    assert any(r.startswith("because you rated") for r in reasons)
    assert any(r.startswith("exploring") for r in reasons)
