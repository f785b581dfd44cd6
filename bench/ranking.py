"""Replay benchmark of the edge's ranking on a real public ratings log (``make bench-ranking``).

Data: MovieLens "latest-small" (GroupLens, 2016 snapshot: 100,004 ratings of 9,066 movies by 671
users, 1995-2016, with genres) as shipped in Debian's ``r-cran-dslabs`` package (the R package
dslabs, Artistic-2.0; the MovieLens data itself is under GroupLens' usage licence: research use,
no commercial use, cite Harper & Konstan 2015 — fine for a benchmark, never for shipping). The
.deb is fetched with ``apt-get download`` (no R needed) and its lazy-load database read with the
``rdata`` package. See docs/ranking.md.

Protocol
* Per user, chronological: the last 20% of a user's ratings are the test period, the 10% before
  them the validation period, the rest training. A seeded 10% of users are *cold start*: only
  their first 2 ratings are kept for training (the rest of their training history is dropped
  for every method).
* Relevant = a held-out rating >= 4. Each user's candidates: their held-out positives and 100
  items sampled uniformly from the catalogue they never rated.
* The edge: every training rating is replayed as a ``rating`` event (value clipped to 1-5,
  category = the genre path "Action/Adventure") through ``Ingestor.ingest`` with the history's
  own clock (``backfill``), in-process on a real disk store; then ``Personalizer.rank`` ranks
  every user's candidates at the time the user comes back, with the shipped defaults
  (diversity limit, exploration slots, the cold-start rule). Candidate popularity = training rating counts.
* The collaborative signal runs as deployed, in-process: users are spread over 3 edges (by id),
  each edge's baskets are counted when their window closes (pairs and items of at least 3 users
  leave it), a control plane's NeighbourBook on a real SQLite store merges the 3 edges' windows
  under the one-node bound (a pair one node reports stands unless the others see its items well)
  and builds the item-neighbour table, which every edge applies; each user is ranked at their own
  edge from their profile's recent items.
* The ranker is tuned on the validation period (training replayed without it): a grid over the
  blend and the exploration slots, the best NDCG@10 with catalogue coverage at least ALS's (what
  ships), the cold-start rule's popularity weight (paired with popularity on the cold-start users,
  with its standard error) and, before the validation table is applied, popularity's weight for
  a tenant with no table (the same constraint). Then, for the cold-start rule with ~10x the users,
  every user's first 2 (4, 8, 16, 32) training events replayed alone and ranked with the validation
  table; and the control plane's similarity measure and top-M, each table built from the same
  merged counts. Then the test period is ranked with the training and validation periods replayed,
  and, for the cold start with ~10x the users again, with every user's first 2 events alone.
* The HTTP slice (``--http-slice N``, bench/ranking_http.py): the first N test users through a
  real ``edge-node serve`` over HTTP, which must answer as the in-process edge does.
* Baselines on the same split and candidates: random, popularity, implicit ALS, EASE (the
  strongest central item-item model we know of for this kind of data), a central item-kNN without
  the privacy rules, and a LightFM hybrid (collaborative + genre features; make bench-ranking
  installs it, bench/install_lightfm.py). ALS's and EASE's settings are picked on validation.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
import zlib
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # 2 shared cores: no thread pools

import msgspec  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_node.personalization.ranking import ColdStart, Weights  # noqa: E402

DSLABS_DIRS = [Path("/usr/lib/R/site-library/dslabs"), ROOT / "build/bench-data/dslabs/usr/lib/R/site-library/dslabs"]
CACHE = ROOT / "build/bench-data/movielens.npz"
K = 10
NEGATIVES = 100
TEST_SHARE, VAL_SHARE, COLD_SHARE, COLD_EVENTS = 0.2, 0.1, 0.1, 2
DAY = 86400.0
TENANT = "bench"
# The collaborative signal's setup (see docs/ranking.md): users spread over NODES edges, each
# edge's closed windows leave with pairs of at least MIN_USERS users, merged by the control plane.
NODES = 3
MIN_USERS = 3  # the edges' cohort minimum (EDGE_COHORT_MIN_SIZE) for this replay's 671 users
# One co-occurrence window spans the whole replayed log (1970-2038): 671 users over 20 years
# are about 0.1 active users a day, so a day's window would hold no pair of 3 users; a busy
# edge's day does. Each user's basket keeps their latest PAIR_MAX_ITEMS chosen items.
PAIR_WINDOW_S = float(2 ** 31)
PAIR_MAX_ITEMS = 200
# ... and that one window stands for ~7,000 days: the per-window bound of pairs sent (20,000 at an
# edge and at the control plane) is lifted with it.
MAX_PAIRS = 1_000_000
TOP_M, SHRINK = 50, 5.0  # CP_NEIGHBOURS_TOP_M, CP_NEIGHBOURS_SHRINK
# The ranker's defaults: the best validation NDCG@10 with coverage >= ALS's; of the configurations
# within TIE of it, the one with the most exploration slots (the slot is what lets a ranking learn,
# and an offline replay cannot show that).
TIE = 0.005


# ---------------------------------------------------------------------------------------- data
def _dslabs_dir() -> Path:
    for d in DSLABS_DIRS:
        if (d / "data/Rdata.rdx").exists():
            return d
    target = ROOT / "build/bench-data"
    target.mkdir(parents=True, exist_ok=True)
    print("fetching Debian's r-cran-dslabs (MovieLens) with apt-get download ...", flush=True)
    subprocess.run(["apt-get", "download", "r-cran-dslabs"], cwd=target, check=True)
    deb = sorted(target.glob("r-cran-dslabs_*.deb"))[-1]
    subprocess.run(["dpkg-deb", "-x", str(deb), str(target / "dslabs")], check=True)
    return DSLABS_DIRS[1]


def _read_lazyload(directory: Path, name: str):
    """One object of an R package's lazy-load database (data/Rdata.rdx + .rdb)."""
    import bz2
    import lzma  # noqa: E401

    import rdata

    warnings.simplefilter("ignore")
    index = rdata.conversion.convert(rdata.parser.parse_data(
        gzip.decompress((directory / "data/Rdata.rdx").read_bytes()), extension=".rds"))
    offset, length = (int(v) for v in index["variables"][name])
    with open(directory / "data/Rdata.rdb", "rb") as f:
        f.seek(offset)
        blob = f.read(length)
    kind = blob[4:5]
    raw = (lzma.decompress(blob[5:]) if kind == b"Z" else bz2.decompress(blob[5:]) if kind == b"2"
           else blob[5:] if kind == b"0" else zlib.decompress(blob[4:]))
    return rdata.conversion.convert(rdata.parser.parse_data(raw, extension=".rds"))


def load() -> dict[str, np.ndarray]:
    if CACHE.exists():
        return dict(np.load(CACHE, allow_pickle=False))
    df = _read_lazyload(_dslabs_dir(), "movielens")
    genres = df["genres"].astype(str).to_numpy()
    data = {"user": df["userId"].to_numpy(dtype=np.int64), "item": df["movieId"].to_numpy(dtype=np.int64),
            "rating": df["rating"].to_numpy(dtype=np.float64), "ts": df["timestamp"].to_numpy(dtype=np.int64),
            "genres": np.array([g for g in genres], dtype=str)}
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(CACHE, **data)
    return data


def genre_path(genres: str) -> str:
    parts = [g for g in genres.split("|") if g and not g.startswith("(")]
    return "/".join(parts) if parts else "Unknown"


# --------------------------------------------------------------------------------------- split
class Split:
    def __init__(self, data: dict[str, np.ndarray], seed: int = 7) -> None:
        rng = np.random.default_rng(seed)
        order = np.lexsort((data["item"], data["ts"], data["user"]))
        users, items, ratings, ts = (data[k][order] for k in ("user", "item", "rating", "ts"))
        self.genres = {int(i): genre_path(g) for i, g in zip(data["item"], data["genres"], strict=False)}
        self.genre_sets = {i: frozenset(p.split("/")) for i, p in self.genres.items()}
        self.users = sorted(set(users.tolist()))
        self.cold = set(rng.choice(self.users, size=int(len(self.users) * COLD_SHARE), replace=False).tolist())
        self.train: dict[int, list[tuple[int, float, int]]] = {}  # user → [(item, rating, ts)] in time order
        self.val: dict[int, list[tuple[int, float, int]]] = {}
        self.test: dict[int, list[tuple[int, float, int]]] = {}
        bounds = np.flatnonzero(np.diff(users)) + 1
        for chunk in np.split(np.arange(len(users)), bounds):
            u = int(users[chunk[0]])
            rows = [(int(items[j]), float(ratings[j]), int(ts[j])) for j in chunk]
            n = len(rows)
            n_test = max(1, int(round(n * TEST_SHARE)))
            n_val = max(1, int(round(n * VAL_SHARE)))
            train = rows[: n - n_test - n_val]
            self.val[u] = rows[n - n_test - n_val: n - n_test]
            self.test[u] = rows[n - n_test:]
            self.train[u] = train[:COLD_EVENTS] if u in self.cold else train
            if u in self.cold:
                self.val[u] = rows[len(train): n - n_test]  # cold users are tuned like the others
        self.rated = {u: {i for i, _, _ in self.train[u] + self.val[u] + self.test[u]} for u in self.users}
        self.catalogue = np.array(sorted(self.genres))
        self.rng = rng

    def history(self, phase: str) -> dict[int, list[tuple[int, float, int]]]:
        """What is replayed before ranking ``phase``'s period."""
        if phase == "val":
            return self.train
        return {u: self.train[u] + ([] if u in self.cold else self.val[u]) for u in self.users}

    def period(self, phase: str) -> dict[int, list[tuple[int, float, int]]]:
        return self.val if phase == "val" else self.test

    def cases(self, phase: str, seed: int) -> list[tuple[int, list[int], set[int], float]]:
        """(user, candidates, positives, when the user comes back) for every user with a positive."""
        rng = np.random.default_rng(seed)
        out = []
        for u in self.users:
            held = self.period(phase)[u]
            positives = {i for i, r, _ in held if r >= 4.0}
            if not positives:
                continue
            negatives: list[int] = []
            while len(negatives) < NEGATIVES:
                for i in rng.choice(self.catalogue, size=NEGATIVES * 2).tolist():
                    if i not in self.rated[u] and i not in negatives:
                        negatives.append(i)
                        if len(negatives) == NEGATIVES:
                            break
            candidates = sorted(positives) + negatives
            rng.shuffle(candidates)
            out.append((u, candidates, positives, float(held[0][2])))
        return out


# ------------------------------------------------------------------------------------- metrics
def evaluate(rankings: dict[int, list[int]], cases, split: Split, popularity: dict[int, int],
             users: set[int] | None = None) -> dict[str, float]:
    chosen = [c for c in cases if users is None or c[0] in users]
    p = r = ndcg = mrr = ild = nov = 0.0
    exposure: dict[int, int] = {}
    n_users = len(split.users)
    for u, _candidates, positives, _ in chosen:
        ranked = rankings[u]
        top = ranked[:K]
        hits = [1.0 if i in positives else 0.0 for i in top]
        p += sum(hits) / K
        r += sum(hits) / len(positives)
        dcg = sum(h / math.log2(k + 2) for k, h in enumerate(hits))
        ideal = sum(1 / math.log2(k + 2) for k in range(min(len(positives), K)))
        ndcg += dcg / ideal
        first = next((k for k, i in enumerate(ranked) if i in positives), None)
        mrr += 0.0 if first is None else 1.0 / (first + 1)
        pairs = [(a, b) for x, a in enumerate(top) for b in top[x + 1:]]
        ild += sum(1 - len(split.genre_sets[a] & split.genre_sets[b]) / len(split.genre_sets[a] | split.genre_sets[b])
                   for a, b in pairs) / max(len(pairs), 1)
        nov += sum(-math.log2((popularity.get(i, 0) + 1) / (n_users + 1)) for i in top) / len(top)
        for i in top:
            exposure[i] = exposure.get(i, 0) + 1
    n = max(len(chosen), 1)
    pool = sorted({i for c in chosen for i in c[1]})
    counts = np.sort(np.array([exposure.get(i, 0) for i in pool], dtype=np.float64))
    m = len(counts)
    gini = float((2 * np.arange(1, m + 1) - m - 1).dot(counts) / (m * counts.sum())) if counts.sum() else 0.0
    return {"users": len(chosen), "P@10": p / n, "R@10": r / n, "NDCG@10": ndcg / n, "MRR": mrr / n,
            "coverage": len(exposure) / max(len(pool), 1), "ILD": ild / n, "novelty": nov / n, "gini": gini}


# ------------------------------------------------------------------------------------ baselines
def popularity_of(history) -> dict[int, int]:
    pop: dict[int, int] = {}
    for rows in history.values():
        for i, _, _ in rows:
            pop[i] = pop.get(i, 0) + 1
    return pop


def rank_by(scores_of, cases) -> dict[int, list[int]]:
    out = {}
    for u, candidates, _, _ in cases:
        s = scores_of(u, candidates)
        out[u] = [candidates[j] for j in np.argsort(-np.asarray(s, dtype=np.float64), kind="stable")]
    return out


def random_baseline(cases, seed: int):
    rng = np.random.default_rng(seed)
    return rank_by(lambda u, c: rng.random(len(c)), cases)


def popularity_baseline(cases, pop):
    return rank_by(lambda u, c: [pop.get(i, 0) for i in c], cases)


def _interactions(history, split: Split):
    from scipy.sparse import csr_matrix

    uix = {u: k for k, u in enumerate(split.users)}
    iix = {int(i): k for k, i in enumerate(split.catalogue)}
    rows, cols = [], []
    for u, events in history.items():
        for i, _, _ in events:
            rows.append(uix[u])
            cols.append(iix[i])
    m = csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(uix), len(iix)))
    m.sum_duplicates()
    m.data[:] = 1.0
    return m, uix, iix


def als_baseline(cases, history, split: Split, *, factors: int, alpha: float, reg: float = 0.05, seed: int = 1):
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    m, uix, iix = _interactions(history, split)
    with threadpool_limits(1):
        model = AlternatingLeastSquares(factors=factors, regularization=reg, alpha=alpha, iterations=15,
                                        random_state=seed, num_threads=1)
        model.fit(m, show_progress=False)
    U, V = model.user_factors, model.item_factors
    return rank_by(lambda u, c: V[[iix[i] for i in c]] @ U[uix[u]], cases)


def item_knn_baseline(cases, history, split: Split, pop, *, top_m: int = TOP_M, shrink: float = SHRINK):
    """Central item-to-item collaborative filtering on all the training data, without any of the
    privacy rules (no minimum of users, one node): the shipped similarity (shrunk cosine) over
    every pair of items, each item's top ``top_m`` read both ways, a candidate scored by the sum of
    its similarities to everything the user rated (popularity breaks ties). The reference for
    what the privacy rules cost the collaborative signal."""
    from scipy.sparse import csr_matrix

    m, uix, iix = _interactions(history, split)
    counts = (m.T @ m).tocoo()
    n = np.asarray(m.sum(axis=0)).ravel()
    keep = counts.row != counts.col
    r, c, v = counts.row[keep], counts.col[keep], counts.data[keep].astype(np.float64)
    sim = v / np.sqrt(n[r] * n[c]) * v / (v + shrink)
    full = csr_matrix((sim, (r, c)), shape=counts.shape)
    rows, cols, vals = [], [], []
    for i in range(full.shape[0]):
        start, end = full.indptr[i], full.indptr[i + 1]
        best = np.argsort(-full.data[start:end], kind="stable")[:top_m] + start
        rows += [i] * len(best)
        cols += full.indices[best].tolist()
        vals += full.data[best].tolist()
    top = csr_matrix((vals, (rows, cols)), shape=full.shape)
    table = top.maximum(top.T).tocsr()  # both ways
    log_pop = {i: 1e-9 * math.log1p(pop.get(i, 0)) for i in split.catalogue.tolist()}

    def score(u, candidates):
        mine = [iix[i] for i, _, _ in history[u]]
        s = np.asarray(table[mine][:, [iix[i] for i in candidates]].sum(axis=0)).ravel()
        return s + np.array([log_pop[i] for i in candidates])

    return rank_by(score, cases)


def ease_scorer(history, split: Split, lam: float):
    """EASE (Steck, WWW 2019: "Embarrassingly Shallow Autoencoders for Sparse Data"), central, on all
    the training interactions: the item-item weights B = I − P·diag(1/diag(P)) with
    P = (XᵀX + λI)⁻¹ and a zero diagonal; a user's score for an item is their row of X·B. A dense
    inverse over the catalogue (9,066 items: about 20 s and 2 GB here). Returns (user, items) →
    scores."""
    m, uix, iix = _interactions(history, split)
    gram = (m.T @ m).toarray().astype(np.float64)
    gram[np.diag_indices_from(gram)] += lam
    inverse = np.linalg.inv(gram)
    del gram
    weights = inverse / (-np.diag(inverse))
    weights[np.diag_indices_from(weights)] = 0.0
    scores = np.asarray(m @ weights)
    del inverse, weights

    def score(u: int, candidates: list[int]) -> np.ndarray:
        return scores[uix[u], [iix[i] for i in candidates]]

    return score


def ease_baseline(cases, history, split: Split, pop, *, lam: float, popularity: float, scorer=None):
    """EASE's scores plus ``popularity`` × log(1 + training count) (0: EASE alone)."""
    score = scorer or ease_scorer(history, split, lam)
    return rank_by(lambda u, c: score(u, c) + popularity * np.log1p([pop.get(i, 0) for i in c]), cases)


def tune_ease(cases, split: Split, pop) -> tuple[dict, dict[str, float]]:
    """EASE's λ and popularity blend picked on validation, and its validation figures with them."""
    best: tuple[dict, dict[str, float]] | None = None
    for lam in (50.0, 100.0, 200.0, 500.0, 1000.0):
        scorer = ease_scorer(split.history("val"), split, lam)
        for popularity in (0.0, 0.01, 0.03, 0.1):
            cfg = {"lam": lam, "popularity": popularity}
            m = evaluate(ease_baseline(cases, None, split, pop, scorer=scorer, **cfg), cases, split, pop)
            if best is None or m["NDCG@10"] > best[1]["NDCG@10"]:
                best = (cfg, m)
        del scorer
    assert best is not None
    return best


def lightfm_baseline(cases, history, split: Split, seed: int = 1):
    """A hybrid (collaborative + genre features) LightFM, WARP loss; None when it is not installed."""
    try:
        from lightfm import LightFM
    except ImportError:
        return None
    from scipy.sparse import csr_matrix, hstack, identity

    m, uix, iix = _interactions(history, split)
    names = sorted({g for s in split.genre_sets.values() for g in s})
    gix = {g: k for k, g in enumerate(names)}
    rows, cols = [], []
    for i, k in iix.items():
        for g in split.genre_sets[i]:
            rows.append(k)
            cols.append(gix[g])
    features = hstack([identity(len(iix), format="csr"),
                       csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(iix), len(names)))]).tocsr()
    model = LightFM(no_components=32, loss="warp", random_state=seed)
    model.fit(m.tocoo(), item_features=features, epochs=20, num_threads=1)
    return rank_by(lambda u, c: model.predict(uix[u], np.array([iix[i] for i in c]), item_features=features), cases)


# ------------------------------------------------------------------------------------- the edge
class Edge:
    """One edge's ingest and ranking code, in-process, on a real disk store: the cohorts, the
    co-occurrence baskets (PairBook) and the item-neighbour tables (Neighbours) as a node wires them."""

    def __init__(self, directory: Path, *, pair_window_s: float = PAIR_WINDOW_S, pair_max_items: int = PAIR_MAX_ITEMS,
                 min_users: int = MIN_USERS, env: dict[str, str] | None = None) -> None:
        from edge_node.config import load_settings
        from edge_node.ingest import Ingestor
        from edge_node.personalization.cohorts import CohortBook
        from edge_node.personalization.cooccurrence import Neighbours, PairBook
        from edge_node.personalization.decisions import Personalizer
        from edge_node.personalization.profiles import Tuning
        from edge_node.privacy import PrivacyBook, Pseudonymizer
        from edge_node.store import EdgeStore

        s = self.settings = load_settings({"EDGE_DATA_DIR": str(directory), **(env or {})})
        self.store = EdgeStore(directory, retention_s=s.retention_s, hot_records=200_000)
        self.cohorts = CohortBook(self.store, window_s=s.cohort_window_minutes * 60, min_size=s.cohort_min_size,
                                  max_per_user=s.max_cohorts_per_user, horizon_s=s.cohort_horizon_hours * 3600,
                                  prior_cache_s=s.cohort_prior_refresh_s)
        self.tuning = Tuning(sentiment_window_s=s.sentiment_window_minutes * 60,
                             half_life_s=s.affinity_half_life_days * 86400, prior_weight=s.sentiment_prior_weight,
                             max_categories=s.max_categories_per_profile)
        self.pairs = PairBook(self.store, window_s=pair_window_s, min_users=min_users, max_items=pair_max_items,
                              max_pairs=MAX_PAIRS)
        self.neighbours = Neighbours(self.store, both_ways=s.collaborative_both_ways)
        self.privacy = PrivacyBook(self.store, self.cohorts, Pseudonymizer(b"b" * 32), pairs=self.pairs)

        async def no_texts(texts, subject, tenant=""):
            return []

        self.ingestor = Ingestor(self.privacy, self.cohorts, self.tuning, retention_s=s.retention_s, score=no_texts,
                                 pairs=self.pairs)
        self.weights = Weights(personal=s.weight_personal, cohort=s.weight_cohort, popularity=s.weight_popularity,
                               collaborative=s.weight_collaborative)
        self.personalizer = Personalizer(self.store, self.privacy, self.cohorts, self.tuning,
                                         dimension=s.vector_dim, weights=self.weights, cache_s=0,
                                         neighbours=self.neighbours,
                                         cold_start=ColdStart(events=s.cold_start_events,
                                                              popularity=s.weight_popularity_cold_start),
                                         no_table_popularity=s.weight_popularity_no_table)

    def replay(self, history, split: Split) -> dict[str, float]:
        """Every user's ratings as ``rating`` events, in calls of at most 100 events of one
        co-occurrence window, each at the time of its last event (the history's own clock)."""
        import datetime as dt

        from edge_node.ingest import Event

        accepted = dropped = calls = 0
        t0 = time.perf_counter()
        loop = asyncio.new_event_loop()
        for u, rows in history.items():
            if not rows:
                continue
            uid = f"u{u}"
            first = float(rows[0][2])
            self.privacy.set_consent(uid, {"personalization": True, "cohort_analytics": True}, "bench", first, first)
            chunks: list[list] = []
            for row in rows:
                if not chunks or len(chunks[-1]) == 100 or \
                        self.pairs.window_of(row[2]) != self.pairs.window_of(chunks[-1][-1][2]):
                    chunks.append([])
                chunks[-1].append(row)
            for chunk in chunks:
                events = [Event(type="rating", item_id=str(i), category=split.genres[i],
                                value=min(max(r, 1.0), 5.0),
                                timestamp=dt.datetime.fromtimestamp(t, dt.UTC)) for i, r, t in chunk]
                report = loop.run_until_complete(self.ingestor.ingest(uid, events, None, float(chunk[-1][2]),
                                                                      tenant=TENANT, backfill=True))
                accepted += report.accepted
                dropped += report.dropped
                calls += 1
        loop.close()
        return {"events": accepted + dropped, "accepted": accepted, "dropped": dropped, "calls": calls,
                "seconds": time.perf_counter() - t0}

    def close(self) -> None:
        self.store.close()


class Fleet:
    """``nodes`` edges (users spread by id) and a control plane's co-occurrence merge on a real
    SQLite store: each edge counts its users' baskets, exports its closed windows (minimum size
    applied), the control plane merges them under the one-node bound and builds the tenant's
    item-neighbour table, which every edge applies; each user is ranked at their own edge."""

    def __init__(self, directory: Path, *, nodes: int = NODES, pair_window_s: float = PAIR_WINDOW_S,
                 pair_max_items: int = PAIR_MAX_ITEMS, min_users: int = MIN_USERS) -> None:
        self.directory = directory
        self.min_users = min_users
        self.pair_window_s = pair_window_s
        self.edges = [Edge(directory / f"edge-{n}", pair_window_s=pair_window_s, pair_max_items=pair_max_items,
                           min_users=min_users) for n in range(nodes)]

    def edge_of(self, u: int) -> Edge:
        return self.edges[u % len(self.edges)]

    def replay(self, history, split: Split) -> dict[str, float]:
        reports = [edge.replay({u: rows for u, rows in history.items() if self.edge_of(u) is edge}, split)
                   for edge in self.edges]
        return {k: sum(r[k] for r in reports) for k in reports[0]}

    def share_neighbours(self, history, *, top_m: int, shrink: float, min_nodes: int = 2, measure=None) -> dict:
        """Every edge's closed windows → the control plane's merge → the table, applied at every edge
        (``measure``: the pairs' similarity, default the shipped shrunk cosine)."""
        from control_plane.cohorts import CohortMerge
        from control_plane.cooccurrence import NeighbourBook
        from control_plane.store import Store
        from sentiedge_core.cooccurrence import similarity

        times = [t for rows in history.values() for _, _, t in rows]
        now = max(times) + DAY
        store = Store(self.directory / f"cp-{time.monotonic_ns()}")
        try:
            # The replay's nodes are trusted and their traffic grew long ago: no new-node cap.
            cohorts = CohortMerge(store, min_size=self.min_users, horizon_s=now, new_node_users=10**9,
                                  max_node_users=10**9)
            book = NeighbourBook(store, cohorts, min_size=self.min_users, horizon_s=now, top_m=top_m,
                                 max_items=50_000, shrink=shrink, min_nodes=min_nodes, max_node_share=0.75,
                                 max_pairs=MAX_PAIRS, window_s=self.pair_window_s,  # the replay's one window
                                 measure=measure or similarity)
            sent = 0
            for n, edge in enumerate(self.edges):
                windows = sorted({edge.pairs.window_of(t) for rows in history.values() for _, _, t in rows})
                exported = [w for window in windows for w in edge.pairs.export(window)]
                sent += sum(len(w.pairs) for w in exported)
                book.ingest(f"edge-{n}", exported, now)
            book.rebuild(now)
            table = store.neighbour_table(TENANT)
        finally:
            store.close()
        self.table = table[0] if table is not None else None
        if table is not None:
            for edge in self.edges:
                edge.neighbours.apply(table[0])
        items = table[0].items if table else {}
        return {"pairs_sent": sent, "items": len(items), "neighbours": sum(len(ns) for ns in items.values())}

    def rank(self, cases, split: Split, pop: dict[int, int], config: Config | None = None):
        """Every case ranked at its user's edge with ``config`` (default: the shipped settings)."""
        from edge_node.personalization.ranking import Candidate

        out, reasons = {}, {}
        for u, candidates, _, when in cases:
            edge = self.edge_of(u)
            c = config or shipped_config()
            edge.personalizer.weights = c.weights
            edge.personalizer.cold_start = c.cold_start
            edge.personalizer.no_table_popularity = c.no_table_popularity
            edge.neighbours.both_ways = c.both_ways
            cands = [Candidate(id=str(i), category=split.genres[i], popularity=float(pop.get(i, 0)))
                     for i in candidates]
            _, items = edge.personalizer.rank(f"u{u}", None, cands, limit=K, exploration_slots=c.exploration_slots,
                                              max_per_category=c.max_per_category, now=when,
                                              diversity_depth=edge.settings.diversity_depth, tenant=TENANT)
            out[u] = [int(item.id) for item in items]
            reasons[u] = items[:K]
        self.last_reasons = reasons
        return out

    def clear_neighbours(self) -> None:
        from sentiedge_core.cooccurrence import NeighbourTable

        for edge in self.edges:
            edge.neighbours.apply(NeighbourTable(tenant=TENANT))

    def close(self) -> None:
        for edge in self.edges:
            edge.close()


# ------------------------------------------------------------------------------------------ run
def table(rows: list[tuple[str, dict[str, float]]]) -> str:
    cols = ["users", "P@10", "R@10", "NDCG@10", "MRR", "coverage", "ILD", "novelty", "gini"]
    out = ["| method | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for name, m in rows:
        out.append(f"| {name} | " + " | ".join(str(m[c]) if c == "users" else f"{m[c]:.3f}" for c in cols) + " |")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=0, help="only the first N users (0: all 671)")
    ap.add_argument("--json", type=Path, help="write the figures here too")
    ap.add_argument("--no-tune", action="store_true", help="rank with the shipped weights only")
    ap.add_argument("--http-slice", type=int, default=30, metavar="N",
                    help="also replay the first N test users through a real edge-node serve over HTTP and check "
                         "that it answers as the in-process edge does (0: skip; default 30)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    data = load()
    if args.users:
        keep = np.isin(data["user"], np.unique(data["user"])[: args.users])
        data = {k: v[keep] for k, v in data.items()}
    split = Split(data)
    print(f"MovieLens latest-small (dslabs): {len(data['user'])} ratings, {len(split.users)} users, "
          f"{len(split.catalogue)} items; cold-start users: {len(split.cold)}", flush=True)
    results: dict[str, dict] = {"setup": {"nodes": NODES, "min_users": MIN_USERS, "pair_window_s": PAIR_WINDOW_S,
                                          "pair_max_items": PAIR_MAX_ITEMS, "max_pairs": MAX_PAIRS, "top_m": TOP_M,
                                          "shrink": SHRINK}}
    work = Path(tempfile.mkdtemp(prefix="bench-ranking-"))
    try:
        # Validation: tune the ranker on the validation period (training replayed alone).
        val_cases = split.cases("val", seed=11)
        val_pop = popularity_of(split.history("val"))
        als_cfg, als_val = tune_als(val_cases, split, val_pop)
        results["als_config"] = als_cfg
        ease_cfg, ease_val = tune_ease(val_cases, split, val_pop)
        results["ease_config"] = ease_cfg
        print(f"validation: ALS {als_cfg} NDCG@10 {als_val['NDCG@10']:.4f}; EASE {ease_cfg} NDCG@10 "
              f"{ease_val['NDCG@10']:.4f}", flush=True)
        fleet = Fleet(work / "val")
        print(f"validation replay: {fleet.replay(split.history('val'), split)}", flush=True)
        tuned = None
        if not args.no_tune:
            no_table = search_no_table(fleet, val_cases, split, val_pop, min_coverage=als_val["coverage"])
            shared = fleet.share_neighbours(split.history("val"), top_m=TOP_M, shrink=SHRINK)
            print(f"validation neighbours: {shared}; ALS coverage {als_val['coverage']:.4f}", flush=True)
            tuned = search(fleet, val_cases, split, val_pop, min_coverage=als_val["coverage"])
            first_events = search_cold_start(work / "val-first", fleet.table, val_cases, split, val_pop)
            measures = search_similarity(fleet, split.history("val"), val_cases, split, val_pop)
            results["tuning"] = {"min_coverage (ALS on validation)": als_val["coverage"], "no_table": no_table,
                                 "ALS on validation": als_val, "EASE on validation": ease_val,
                                 "popularity on validation": evaluate(
                                     popularity_baseline(val_cases, val_pop), val_cases, split, val_pop),
                                 "central item-kNN on validation": evaluate(item_knn_baseline(
                                     val_cases, split.history("val"), split, val_pop), val_cases, split, val_pop),
                                 "first events": first_events, "similarity": measures,
                                 **{k: (v.label() if isinstance(v, Config) else v) for k, v in tuned.items()}}
        fleet.close()

        test_cases = split.cases("test", seed=13)
        history = split.history("test")
        pop = popularity_of(history)
        fleet = Fleet(work / "test")
        replay = fleet.replay(history, split)
        print(f"test replay: {replay}", flush=True)
        results["replay"] = replay
        rankings = {"random": random_baseline(test_cases, 3), "popularity": popularity_baseline(test_cases, pop)}
        rankings[f"ALS (implicit, {als_cfg['factors']}f)"] = als_baseline(test_cases, history, split, **als_cfg)
        rankings[f"EASE (central, λ {ease_cfg['lam']:.0f}, popularity {ease_cfg['popularity']})"] = ease_baseline(
            test_cases, history, split, pop, **ease_cfg)
        rankings["item-kNN (central, no privacy rules)"] = item_knn_baseline(test_cases, history, split, pop)
        lfm = lightfm_baseline(test_cases, history, split)
        if lfm is not None:
            rankings["LightFM hybrid"] = lfm
        else:
            print("LightFM is not installed (make bench-ranking installs it: bench/install_lightfm.py): "
                  "its row is left out", flush=True)
        rankings["sentiedge (shipped defaults, no neighbour table)"] = fleet.rank(test_cases, split, pop)
        rankings["(diagnostic) no neighbour table, without the no-table rule"] = fleet.rank(
            test_cases, split, pop, shipped_config(no_table_popularity=None))
        results["neighbours"] = fleet.share_neighbours(history, top_m=TOP_M, shrink=SHRINK)
        print(f"test neighbours: {results['neighbours']}", flush=True)
        shipped = shipped_config()
        rankings["sentiedge + collaborative (shipped defaults)"] = fleet.rank(test_cases, split, pop, shipped)
        shown = fleet.last_reasons
        if args.http_slice:
            results["http_slice"] = http_slice(work, split, history, test_cases, pop, fleet.table, args.http_slice,
                                               rankings["sentiedge + collaborative (shipped defaults)"])
        if tuned is not None:
            if tuned["best"] is not None and tuned["best"] != shipped:
                rankings["sentiedge + collaborative (validation's best with coverage >= ALS)"] = fleet.rank(
                    test_cases, split, pop, tuned["best"])
            rankings["sentiedge + collaborative (validation's best for NDCG alone)"] = fleet.rank(
                test_cases, split, pop, tuned["free"])
            # A diagnostic: the shipped ranker without its cold-start rule (exploration slot, shipped popularity).
            rankings["(diagnostic) shipped defaults without the cold-start rule"] = fleet.rank(
                test_cases, split, pop, msgspec.structs.replace(shipped, cold_start=ColdStart()))
            # ... and with the neighbour table read one way (each recent item's own list only).
            rankings["(diagnostic) shipped defaults, neighbour table read one way"] = fleet.rank(
                test_cases, split, pop, msgspec.structs.replace(shipped, both_ways=False))
        results["shipped"] = shipped.label()
        results["first events"] = first_events_on_test(work / "test-first", fleet.table, test_cases, split, history,
                                                       pop, shipped)
        examples = {str(u): [(i.id, split.genres[int(i.id)], i.reason) for i in items[:4]]
                    for u, items in list(shown.items())[:3]}
        results["reason_examples"] = examples
        fleet.close()
        warm = set(split.users) - split.cold
        rows, cold_rows = [], []
        for name, ranked in rankings.items():
            rows.append((name, evaluate(ranked, test_cases, split, pop, warm)))
            cold_rows.append((name, evaluate(ranked, test_cases, split, pop, split.cold)))
        all_rows = [(name, evaluate(ranked, test_cases, split, pop)) for name, ranked in rankings.items()]
        results["all"] = dict(all_rows)
        results["warm"] = dict(rows)
        results["cold"] = dict(cold_rows)
        print("\nAll test users\n" + table(all_rows))
        print("\nWarm users (> 2 training events)\n" + table(rows))
        print(f"\nCold-start users (<= {COLD_EVENTS} training events)\n" + table(cold_rows))
        print("\nreasons (first users, top 4):")
        for u, items in examples.items():
            for item in items:
                print(f"  u{u} {item[0]:>6} {item[1]:<32} {item[2]}")
        results["seconds"] = time.perf_counter() - t0
        print(f"\n{results['seconds']:.0f} s")
        if args.json:
            args.json.write_text(json.dumps(results, indent=1, default=str))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    slice_ = results.get("http_slice")
    return 1 if slice_ and (slice_["same top 10 and reasons"] != slice_["users"] or slice_["dropped"]) else 0


def http_slice(work: Path, split: Split, history, cases, pop, table, users: int, replayed) -> dict:
    """The slice through a real ``edge-node serve`` (bench/ranking_http.py), against the in-process edge."""
    from bench import ranking_http

    out = ranking_http.run(work / "http", ROOT, edge_factory=lambda d, env: Edge(d, env=env), split=split,
                           history=history, cases=cases, pop=pop, table=table, tenant=TENANT, users=users)
    http = {u: [int(i) for i, _ in top] for u, top in out.pop("answers")["http"].items()}
    # For the record, not a check: the replay above ran on the log's own clock (backfill) and day, the slice
    # on now (another day and user name: another exploration pick), so only most of a top is shared.
    out["top-10 overlap with the backfilled replay"] = round(
        sum(len(set(http[u]) & set(replayed[u][:K])) for u in http) / (K * max(len(http), 1)), 3)
    out["NDCG@10 (http)"] = round(evaluate(http, [c for c in cases if c[0] in http], split, pop)["NDCG@10"], 4)
    print(f"HTTP slice: {json.dumps({k: v for k, v in out.items() if k != 'differences'})}", flush=True)
    for u, both in list(out["differences"].items())[:3]:
        print(f"  differs for u{u}: {both}", flush=True)
    return out


class Config(msgspec.Struct, frozen=True, kw_only=True):
    """What the ranker is run with: the blend, the exploration slots, the diversity limit, the cold-start rule."""

    weights: Weights
    exploration_slots: int
    max_per_category: int
    cold_start: ColdStart
    both_ways: bool = True  # the neighbour table read both ways (EDGE_COLLABORATIVE_BOTH_WAYS)
    no_table_popularity: float | None = None  # popularity's weight without a table (EDGE_WEIGHT_POPULARITY_NO_TABLE)

    def label(self) -> str:
        w = self.weights
        return (f"personal={w.personal} cohort={w.cohort} popularity={w.popularity} collaborative={w.collaborative} "
                f"slots={self.exploration_slots} per-category={self.max_per_category} "
                f"cold-start<{self.cold_start.events}:popularity={self.cold_start.popularity}"
                + ("" if self.both_ways else " table-one-way")
                + ("" if self.no_table_popularity is None else f" no-table:popularity={self.no_table_popularity}"))


def shipped_config(**changes) -> Config:
    from edge_node.config import load_settings

    s = load_settings({})
    return Config(**{"weights": Weights(personal=s.weight_personal, cohort=s.weight_cohort,
                                        popularity=s.weight_popularity, collaborative=s.weight_collaborative),
                     "exploration_slots": s.exploration_slots, "max_per_category": s.max_per_category,
                     "cold_start": ColdStart(events=s.cold_start_events, popularity=s.weight_popularity_cold_start),
                     "both_ways": s.collaborative_both_ways, "no_table_popularity": s.weight_popularity_no_table,
                     **changes})


def search(fleet: Fleet, cases, split: Split, pop, *, min_coverage: float) -> dict:
    """A grid over the blend and the exploration slots on the validation period (cohort weight half
    the personal one; the collaborative weight 64, where the table's candidates decide, or 8, where
    genre and popularity can outweigh a weak neighbour; no exploration slot or 2 — one slot never
    reached ALS's coverage in a wider search; the shipped diversity limit and cold-start rule): the
    best NDCG@10 whose catalogue coverage is at least ``min_coverage`` (ALS's on validation) and
    the best regardless. Then, for the constrained best, the cold-start rule's popularity weight
    and the table read one way measured."""
    shipped = shipped_config()
    grid = {}
    for co in (64.0, 8.0):
        for p in (0.5, 1.0, 2.0):
            for q in (0.3, 0.6, 1.2):
                for slots in (0, 2):
                    w = Weights(personal=p, cohort=p / 2, popularity=q, collaborative=co)
                    config = msgspec.structs.replace(shipped, weights=w, exploration_slots=slots)
                    m = evaluate(fleet.rank(cases, split, pop, config), cases, split, pop)
                    grid[config] = (round(m["NDCG@10"], 4), round(m["coverage"], 4))
    allowed = [c for c, (_, cov) in grid.items() if cov >= min_coverage]
    best = max(allowed, key=lambda c: grid[c][0]) if allowed else None
    if best is not None:  # within TIE of the best (noise: its standard error is ~0.012), keep the most exploration
        near = [c for c in allowed if grid[c][0] >= grid[best][0] - TIE]
        best = max(near, key=lambda c: (c.exploration_slots, grid[c][0]))
    free = max(grid, key=lambda c: grid[c][0])
    print(f"validation grid ({len(grid)} configurations): constrained best {best and best.label()} "
          f"{best and grid[best]}; unconstrained best {free.label()} {grid[free]}; shipped "
          f"{grid.get(shipped)}", flush=True)
    # The cold-start rule: off, or on with popularity weighing as for everyone else or more (the
    # best for cold-start users is what ships as EDGE_WEIGHT_POPULARITY_COLD_START).
    # Against popularity on the same cold-start users: the paired difference and its standard error.
    cold, base, rule = {}, best or shipped, shipped.cold_start
    popular = ndcg_per_user(popularity_baseline(cases, pop), cases, split, split.cold)
    for events, popularity in ((0, rule.popularity), (rule.events, base.weights.popularity),
                               *((rule.events, w) for w in (2.0, 4.0, 8.0, 16.0, 64.0))):
        config = msgspec.structs.replace(base, cold_start=ColdStart(events=events, popularity=popularity))
        ranked = fleet.rank(cases, split, pop, config)
        cold[config.label()] = {"all": round(evaluate(ranked, cases, split, pop)["NDCG@10"], 4),
                                "cold": round(evaluate(ranked, cases, split, pop, split.cold)["NDCG@10"], 4),
                                **against(ranked, popular, cases, split, split.cold),
                                "coverage": round(evaluate(ranked, cases, split, pop)["coverage"], 4)}
    print(f"validation, the cold-start rule (NDCG@10): {cold}", flush=True)
    one_way = evaluate(fleet.rank(cases, split, pop, msgspec.structs.replace(base, both_ways=False)), cases, split, pop)
    one_way = (round(one_way["NDCG@10"], 4), round(one_way["coverage"], 4))
    print(f"validation, the neighbour table read one way (NDCG@10, coverage): {one_way}", flush=True)
    return {"best": best, "free": free, "grid": {c.label(): v for c, v in grid.items()}, "cold_start": cold,
            "shipped": grid.get(shipped), "one_way": one_way}


def search_no_table(fleet: Fleet, cases, split: Split, pop, *, min_coverage: float) -> dict:
    """Before any neighbour table: popularity's weight for users ranked by their own profile
    (EDGE_WEIGHT_POPULARITY_NO_TABLE) on the validation period, the rest as shipped: the best
    NDCG@10 whose coverage is at least ``min_coverage`` (ALS's, as for the blend); of the weights
    within TIE of it, the smallest (the user's own profile weighs most)."""
    shipped = shipped_config()
    grid = {}
    for w in (shipped.weights.popularity, 1.2, 2.0, 4.0, 8.0):
        m = evaluate(fleet.rank(cases, split, pop, msgspec.structs.replace(shipped, no_table_popularity=w)),
                     cases, split, pop)
        grid[w] = (round(m["NDCG@10"], 4), round(m["coverage"], 4))
    allowed = [w for w, (_, cov) in grid.items() if cov >= min_coverage]
    best = max(allowed, key=lambda w: grid[w][0]) if allowed else None
    if best is not None:
        best = min(w for w in allowed if grid[w][0] >= grid[best][0] - TIE)
    print(f"validation without a neighbour table (popularity weight: NDCG@10, coverage): {grid}; chosen {best}",
          flush=True)
    return {"grid": {str(w): v for w, v in grid.items()}, "best": best, "shipped": shipped.no_table_popularity}


def against(ranked: dict[int, list[int]], reference: dict[int, float], cases, split: Split, users: set[int]) -> dict:
    """The paired difference in NDCG@10 between ``ranked`` and a reference's per-user figures
    over ``users``, and its standard error."""
    mine = ndcg_per_user(ranked, cases, split, users)
    diff = np.array([mine[u] - reference[u] for u in mine])
    return {"- popularity": round(float(diff.mean()), 4),
            "its standard error": round(float(diff.std(ddof=1) / math.sqrt(len(diff))), 4)}


def search_cold_start(directory: Path, table, cases, split: Split, pop) -> dict:
    """The cold-start rule on validation with more users than the 63 cold ones: every user's
    first ``k`` training events replayed alone (users with at least ``k``), ranked with the
    validation table. At k = 2 (the cold start's definition, ~620 users) popularity's weight in
    the rule, paired with popularity; at every k the rule (no exploration slot, the shipped
    cold-start weight) against the blend, i.e. how many events the rule should cover. The table
    was built from the full training period, these users' later events included."""
    shipped = shipped_config()
    out: dict[int, dict] = {}
    for k in (COLD_EVENTS, 4, 8, 16, 32):
        users = {u for u in split.users if len(split.train[u]) >= k}
        chosen = [c for c in cases if c[0] in users]
        fleet = first_events_fleet(directory / f"first-{k}", split.train, users, k, table, split)
        try:
            popular = ndcg_per_user(popularity_baseline(chosen, pop), chosen, split, users)
            weights = (2.0, 4.0, 8.0, 16.0, 64.0) if k == COLD_EVENTS else (shipped.cold_start.popularity,)
            rules = {f"rule, popularity {w}": ColdStart(events=10**9, popularity=w) for w in weights}
            row: dict = {"users": len(chosen)}
            for name, rule in {**rules, "blend (no rule)": ColdStart()}.items():
                ranked = fleet.rank(chosen, split, pop, msgspec.structs.replace(shipped, cold_start=rule))
                m = evaluate(ranked, chosen, split, pop)
                row[name] = {"NDCG@10": round(m["NDCG@10"], 4), "coverage": round(m["coverage"], 4),
                             **against(ranked, popular, chosen, split, users)}
            out[k] = row
        finally:
            fleet.close()
        print(f"validation, users' first {k} events: {json.dumps(out[k])}", flush=True)
    return out


def first_events_fleet(directory: Path, history, users: set[int], k: int, table, split: Split) -> Fleet:
    """A fleet that has replayed only each of ``users``' first ``k`` events of ``history`` and
    applies ``table`` (if any): a cold start for every one of them."""
    fleet = Fleet(directory)
    try:
        fleet.replay({u: history[u][:k] for u in users}, split)
        for edge in fleet.edges if table is not None else ():
            edge.neighbours.apply(table)
    except BaseException:
        fleet.close()
        raise
    return fleet


def first_events_on_test(directory: Path, table, cases, split: Split, history, pop, config: Config) -> dict:
    """The cold start on the test period with ten times the users: every user's first
    ``COLD_EVENTS`` events replayed alone, ranked with the test table by ``config`` and by
    popularity: NDCG@10, coverage and the paired difference with its standard error. The table
    was built from every user's whole history, so it knows these users' later events (an
    advantage the 65 real cold-start users do not give it)."""
    users = {u for u in split.users if len(history[u]) >= COLD_EVENTS}
    chosen = [c for c in cases if c[0] in users]
    fleet = first_events_fleet(directory, history, users, COLD_EVENTS, table, split)
    try:
        popular = popularity_baseline(chosen, pop)
        ranked = fleet.rank(chosen, split, pop, config)
    finally:
        fleet.close()
    out = {"users": len(chosen), "popularity NDCG@10": round(evaluate(popular, chosen, split, pop)["NDCG@10"], 4),
           "shipped NDCG@10": round(evaluate(ranked, chosen, split, pop)["NDCG@10"], 4),
           **against(ranked, ndcg_per_user(popular, chosen, split, users), chosen, split, users)}
    print(f"test, every user's first {COLD_EVENTS} events alone: {json.dumps(out)}", flush=True)
    return out


def _power(e: float):
    return lambda c, a, b, shrink: c / (a * b) ** e * c / (c + shrink)


# The pairs' similarity measures compared on validation (c: the pair's users, a and b: its items'):
# the shipped cosine c/sqrt(ab) and the powers toward raw counts (0) and lift (1), Jaccard, all shrunk
# by c/(c + shrink); the shipped cosine with other top-M cuts.
MEASURES = {"cosine (shipped)": (None, TOP_M), "c/(ab)^0, raw counts": (_power(0.0), TOP_M),
            "c/(ab)^0.35": (_power(0.35), TOP_M), "c/(ab)^0.65": (_power(0.65), TOP_M),
            "c/ab, lift": (_power(1.0), TOP_M),
            "Jaccard c/(a+b-c)": (lambda c, a, b, shrink: c / (a + b - c) * c / (c + shrink), TOP_M),
            "cosine, top 10": (None, 10), "cosine, top 20": (None, 20), "cosine, top 200": (None, 200)}


def search_similarity(fleet: Fleet, history, cases, split: Split, pop) -> dict:
    """The control plane's similarity measure and top-M on validation: each builds the table from
    the same merged counts (every integrity bound as shipped), ranked with the shipped ranker and
    with no exploration slot (NDCG@10, coverage)."""
    shipped = shipped_config()
    out = {}
    for name, (measure, top_m) in MEASURES.items():
        fleet.share_neighbours(history, top_m=top_m, shrink=SHRINK, measure=measure)
        row = {}
        for slots in (shipped.exploration_slots, 0):
            m = evaluate(fleet.rank(cases, split, pop, msgspec.structs.replace(shipped, exploration_slots=slots)),
                         cases, split, pop)
            row[f"{slots} slots"] = (round(m["NDCG@10"], 4), round(m["coverage"], 4))
        out[name] = row
    print(f"validation, similarity measures (NDCG@10, coverage): {json.dumps(out)}", flush=True)
    return out


def ndcg_per_user(rankings: dict[int, list[int]], cases, split: Split, users: set[int]) -> dict[int, float]:
    """Each of ``users``' NDCG@10 (for paired differences between two rankers)."""
    return {c[0]: evaluate(rankings, [c], split, {})["NDCG@10"] for c in cases if c[0] in users}


def tune_als(cases, split: Split, pop) -> tuple[dict, dict[str, float]]:
    """ALS's factors and alpha picked on validation, and its validation figures with them."""
    best = None
    for factors in (32, 64):
        for alpha in (1.0, 10.0):
            cfg = {"factors": factors, "alpha": alpha}
            m = evaluate(als_baseline(cases, split.history("val"), split, **cfg), cases, split, pop)
            if best is None or m["NDCG@10"] > best[1]["NDCG@10"]:
                best = (cfg, m)
    return best


if __name__ == "__main__":
    raise SystemExit(main())
