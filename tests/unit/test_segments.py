"""Learned segments: the math, the edge's per-window sums, the control plane's rounds, and the
whole federated loop on a simulated population with planted clusters (real edge stores, a
real control-plane store), scored with scikit-learn against the planted truth and against
centralized k-means on the same vectors."""

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from control_plane.cohorts import CohortMerge
from control_plane.segments import SegmentBook as CpSegments
from control_plane.store import Store
from edge_node.personalization import profiles
from edge_node.personalization.segments import SegmentBook
from edge_node.records import Profile, SegmentCell, SegmentMember
from edge_node.store import EdgeStore
from sentiedge_core.segments import (
    Segment,
    SegmentSet,
    Summary,
    bounded,
    check_target,
    describe,
    kmeans,
    set_from_proto,
    set_to_proto,
    step,
    summary_from_proto,
    summary_to_proto,
)

TUNING = profiles.Tuning(sentiment_window_s=1800, half_life_s=7 * 86400, prior_weight=2.0)
DIM = 32
WINDOW = 60
T0 = 1_800_000_000  # a window boundary
# Planted segments: what each kind of user mostly does (15% of events go anywhere).
PLANTED = [["books/fiction", "travel/europe", "coffee"],
           ["beauty/skincare", "beauty/makeup", "fashion/shoes"],
           ["sports/running", "outdoor/hiking", "fitness"],
           ["electronics/phones", "games/console", "music"]]
NOISE = ["news", "weather", "deals", "home/kitchen", "garden"]


def planted_population(users_per_cluster: int, seed: int = 7) -> list[tuple[int, Profile]]:
    rng = np.random.default_rng(seed)
    out = []
    for truth, liked in enumerate(PLANTED):
        for _ in range(users_per_cluster):
            profile = Profile()
            for at in sorted(rng.uniform(T0 - 3 * 86400, T0 - 60, size=int(rng.integers(6, 16)))):
                category = str(rng.choice(liked)) if rng.random() < 0.85 else str(rng.choice(NOISE + sum(PLANTED, [])))
                profiles.apply_event(profile, category=category, kind=str(rng.choice(["view", "click", "purchase"])),
                                     sentiment=None, at=float(at), tuning=TUNING)
            out.append((truth, profile))
    return out


def edge(tmp_path, name: str, min_size: int = 5) -> SegmentBook:
    return SegmentBook(EdgeStore(tmp_path / name, retention_s=86400), TUNING, dimension=DIM, window_s=WINDOW,
                       min_size=min_size)


def control_plane(tmp_path, k: int = 4, min_size: int = 5, decay: float = 0.5) -> CpSegments:
    store = Store(tmp_path / "cp")
    return CpSegments(store, CohortMerge(store, min_size=min_size, horizon_s=86400, window_s=WINDOW), k=k, decay=decay,
                      round_delay_s=0, min_size=min_size)


def run_rounds(cp: CpSegments, edges: list[SegmentBook], members: list[list[tuple[str, Profile]]],
               rounds: int) -> list[int]:
    """Every user is active in every window; each window's sums go up, a round runs, the new
    set comes down. Returns the published version after each round."""
    versions = []
    for r in range(rounds):
        start = T0 + r * WINDOW
        for book, users in zip(edges, members, strict=False):
            book.apply(cp.current())
            with book.store.transaction():
                for subject, profile in users:
                    book.contribute(subject, profile, start + 1)
        closed = start + WINDOW + 1
        for i, book in enumerate(edges):
            cp.ingest(f"edge-{i}", book.export(start), closed)
        cp.advance(closed)
        versions.append(cp.current().version)
    for book in edges:
        book.apply(cp.current())
    return versions


def test_the_federated_loop_recovers_planted_segments_and_matches_centralized_kmeans(tmp_path):
    population = planted_population(60)
    rng = np.random.default_rng(1)
    placement = rng.integers(0, 3, size=len(population))  # each user lives on one of three edges
    edges = [edge(tmp_path, f"edge-{i}") for i in range(3)]
    members = [[(f"user-{j}", p) for j, (_, p) in enumerate(population) if placement[j] == i] for i in range(3)]
    cp = control_plane(tmp_path)

    versions = run_rounds(cp, edges, members, rounds=6)
    assert versions[0] == 1, "the first closed window seeds the centroids from the edges' seed clusters"
    assert versions[-1] == 6, "every later window is one mini-batch round"

    vectors = np.asarray([profiles.vector_of(profiles.affinity_scores(p, T0, TUNING), DIM) for _, p in population])
    federated = [int(edges[0].assign(v).id[1:]) for v in vectors]
    truth = [t for t, _ in population]
    central = KMeans(n_clusters=4, n_init=10, random_state=0).fit(vectors)
    assert adjusted_rand_score(truth, federated) >= 0.8
    assert adjusted_rand_score(central.labels_, federated) >= 0.9
    # Within tolerance of the centralized optimum on the same vectors: inertia at most 5% higher.
    centroids = np.asarray([g.centroid for g in cp.current().segments])
    inertia = float(((vectors - centroids[np.asarray(federated) - 1]) ** 2).sum())
    assert inertia <= 1.05 * central.inertia_

    # Each segment's label names its planted interests, read from member sums only.
    for segment in cp.current().segments:
        members_truth = [t for t, f in zip(truth, federated, strict=False) if f == int(segment.id[1:])]
        majority = max(set(members_truth), key=members_truth.count)
        named = segment.label.split(" + ")
        assert set(named) <= set(PLANTED[majority]) and named, (segment.label, PLANTED[majority])
        assert segment.last_users > 0 and segment.users > 0


def test_an_edge_keeps_one_membership_per_user_and_window_and_gives_it_back(tmp_path):
    book = edge(tmp_path, "e", min_size=2)
    centroids = [profiles.category_vector(c, DIM).tolist() for c in ("books", "beauty")]
    book.apply(SegmentSet(version=3, k=2, dimension=DIM, segments=[
        Segment(id="s1", label="books", centroid=centroids[0]),
        Segment(id="s2", label="beauty", centroid=centroids[1])]))
    now = T0 + 5
    reader, changer, other = Profile(), Profile(), Profile()
    for p, category in ((reader, "books"), (changer, "books"), (other, "books")):
        profiles.apply_event(p, category=category, kind="purchase", sentiment=None, at=now, tuning=TUNING)
    with book.store.transaction():
        for name, p in (("reader", reader), ("changer", changer), ("other", other)):
            book.contribute(name, p, now)
    cell = book.store.get(f"segc|{T0}|3|0", SegmentCell)
    assert cell.users == 3
    # The changer turns to beauty: their share moves, they are still one member. A burst of events
    # right after a placement is not placed again (book.refresh_s); the next one past it is.
    for _ in range(10):
        profiles.apply_event(changer, category="beauty", kind="purchase", sentiment=None, at=now + 1, tuning=TUNING)
    with book.store.transaction():
        book.contribute("changer", changer, now + 1)
    assert book.store.get(f"segc|{T0}|3|0", SegmentCell).users == 3, "placed a moment ago: not again yet"
    later = now + book.refresh_s + 1
    with book.store.transaction():
        book.contribute("changer", changer, later)
    assert book.store.get(f"segc|{T0}|3|0", SegmentCell).users == 2
    beauty = book.store.get(f"segc|{T0}|3|1", SegmentCell)
    assert beauty.users == 1
    assert book.store.get(f"segm|{T0}|changer", SegmentMember).index == 1
    # The sums are exactly the members' vectors.
    member = book.store.get(f"segm|{T0}|reader", SegmentMember)
    books = book.store.get(f"segc|{T0}|3|0", SegmentCell)
    assert np.allclose(books.vector_sum, 2 * np.asarray(member.vector), atol=1e-6)

    exported = book.export(T0)
    assert [(s.index, s.users) for s in exported] == [(0, 2)], "a centroid under the minimum size stays here"

    with book.store.transaction():
        assert book.withdraw("reader", later + 1) == 1
    books = book.store.get(f"segc|{T0}|3|0", SegmentCell)
    assert books.users == 1 and np.allclose(books.vector_sum, member.vector, atol=1e-6)
    assert book.store.get(f"segm|{T0}|reader", SegmentMember) is None
    assert book.export(T0) == [], "one member left: nothing leaves the node"


def test_while_no_segments_exist_an_edge_sends_only_seed_clusters_of_the_minimum_size(tmp_path):
    book = edge(tmp_path, "e", min_size=5)
    book.apply(SegmentSet(version=0, k=4))  # on, not seeded yet
    population = planted_population(3)  # 12 users: at most two clusters of five
    with book.store.transaction():
        for j, (_, p) in enumerate(population):
            book.contribute(f"u{j}", p, T0 + 1)
    seeds = book.export(T0)
    assert seeds and all(s.seed and s.users >= 5 for s in seeds)
    assert sum(s.users for s in seeds) <= 12
    assert all(len(s.vector_sum) == DIM for s in seeds)

    off = edge(tmp_path, "off")
    with off.store.transaction():
        off.contribute("u0", population[0][1], T0 + 1)
    assert off.export(T0) == [] and off.store.get(f"segm|{T0}|u0", SegmentMember) is None, "segments off: nothing kept"


def test_a_set_of_another_dimension_is_not_used(tmp_path):
    book = edge(tmp_path, "e")
    assert not book.apply(SegmentSet(version=2, k=1, dimension=16, segments=[
        Segment(id="s1", label="x", centroid=[0.25] * 16)]))
    assert book.assign(np.ones(DIM, dtype=np.float32)) is None


def test_a_restarted_edge_assigns_with_the_set_it_had(tmp_path):
    book = edge(tmp_path, "e")
    book.apply(SegmentSet(version=2, k=1, dimension=DIM, segments=[Segment(id="s1", label="x", centroid=[0.1] * DIM)]))
    book.store.close()
    again = edge(tmp_path, "e")
    assert again.version == 2 and again.assign(np.ones(DIM, dtype=np.float32)).id == "s1"


def test_a_round_is_a_mini_batch_kmeans_step():
    segment = Segment(id="s1", label="", centroid=[0.0, 0.0], users=10.0, categories={"books": 1.0})
    batch = Summary(window_start=0, version=1, index=0, users=10, vector_sum=[10.0, 0.0], categories={"books": 30.0})
    moved = step(segment, batch, decay=1.0)
    # N = 10 + 10, rate = 10 / 20: halfway to the batch mean (1, 0).
    assert moved.centroid == pytest.approx([0.5, 0.0]) and moved.users == 20 and moved.last_users == 10
    assert moved.categories["books"] == pytest.approx((10 * 1.0 + 30.0) / 20)
    assert moved.label == "books"
    # Decay: history weighs less, so the centroid follows the batch further.
    assert step(segment, batch, decay=0.5).centroid[0] == pytest.approx(10 / 15)
    idle = step(segment, None, decay=0.5)
    assert idle.centroid == segment.centroid and idle.users == 5 and idle.last_users == 0


def test_weighted_kmeans_finds_separated_groups():
    points = np.asarray([[0, 0], [0.1, 0], [5, 5], [5.1, 5], [10, 0]], dtype=float)
    centers, labels = kmeans(points, np.asarray([1, 1, 1, 1, 5.0]), 3, seed=0)
    assert len(set(labels[:2])) == 1 and len(set(labels[2:4])) == 1 and len(set(labels)) == 3


def test_labels_come_from_liked_categories():
    assert describe({"books": 20.0, "travel": 10.0, "news": -5.0, "coffee": 1.0, "deals": 0.5}, 10)[0] == \
        "books + travel + coffee"
    assert describe({"news": -5.0}, 10)[0] == "no clear interest"
    assert describe({}, 0) == ("", {})


def test_implausible_sums_are_bounded_or_refused():
    huge = Summary(window_start=0, version=1, index=0, users=10**6, vector_sum=[1e9] * 4,
                   categories={f"c{i}": 1e12 for i in range(500)})
    b = bounded(huge, cap=100, dimension=4)
    assert b.users == 100 and np.linalg.norm(b.vector_sum) == pytest.approx(100)
    assert len(b.categories) <= 32 and max(b.categories.values()) <= 300
    assert bounded(huge, cap=100, dimension=8) is None, "wrong dimension"
    assert bounded(Summary(window_start=0, version=1, index=0, users=5, vector_sum=[float("nan")] * 4), 100, 4) is None
    assert bounded(Summary(window_start=0, version=1, index=0, users=0, vector_sum=[0.0] * 4), 100, 4) is None


def test_segment_targets_are_checked():
    assert check_target("") is None and check_target("s3") is None and check_target("s64") is None
    assert "not a segment id" in check_target("s0") and "not a segment id" in check_target("books")


def test_the_wire_round_trips():
    s = Summary(window_start=60, version=2, index=1, seed=True, users=7, vector_sum=[0.5, -0.25],
                categories={"books": 3.0})
    assert summary_from_proto(summary_to_proto(s)) == s
    g = SegmentSet(version=4, k=2, dimension=2, updated_at=5.0, segments=[
        Segment(id="s1", label="books", centroid=[0.5, 0.5], users=3.5, last_users=3, categories={"books": 1.5})])
    assert set_from_proto(set_to_proto(g)) == g


# --- the control plane's side -----------------------------------------------------------------
def seed_sums(version: int = 0, users: int = 10) -> list[Summary]:
    return [Summary(window_start=T0, version=version, index=j, seed=True, users=users,
                    vector_sum=(users * np.eye(DIM)[j]).tolist(), categories={f"cat{j}": 2.0 * users})
            for j in range(4)]


def seed_from_two(cp, at: float) -> None:
    """Seeding needs seed clusters from two nodes (CP_SEGMENT_SEED_MIN_NODES): half from each."""
    cp.ingest("edge-0", seed_sums()[:2], at)
    cp.ingest("edge-1", seed_sums()[2:], at)


def test_seeding_waits_for_k_clusters_of_the_minimum_size(tmp_path):
    cp = control_plane(tmp_path)
    assert cp.current().version == 0 and cp.current().k == 4 and not cp.current().segments
    cp.ingest("edge-0", seed_sums()[:2], T0 + 61)
    assert not cp.advance(T0 + 62), "two clusters cannot seed four segments"
    cp.ingest("edge-1", seed_sums()[2:], T0 + 63)
    assert cp.advance(T0 + 64)
    seeded = cp.current()
    assert seeded.version == 1 and len(seeded.segments) == 4 and seeded.dimension == DIM
    assert sorted(g.label for g in seeded.segments) == ["cat0", "cat1", "cat2", "cat3"]
    assert not cp.advance(T0 + 65), "nothing pending: no new version"


def test_a_resent_window_counts_once_and_stale_or_foreign_sums_are_refused(tmp_path):
    cp = control_plane(tmp_path, decay=1.0)
    seed_from_two(cp, T0 + 61)
    cp.advance(T0 + 62)
    first = cp.current()
    s1 = next(g for g in first.segments if g.label == "cat0")
    index = int(s1.id[1:]) - 1
    batch = Summary(window_start=T0 + 60, version=1, index=index, users=10,
                    vector_sum=(10 * np.eye(DIM)[0]).tolist(), categories={"cat0": 20.0})
    cp.ingest("edge-0", [batch], T0 + 121)
    cp.ingest("edge-0", [batch], T0 + 122)  # the heartbeat was resent: no receipt reached the edge
    assert cp.advance(T0 + 123)
    after = next(g for g in cp.current().segments if g.id == s1.id)
    assert after.last_users == 10 and after.users == pytest.approx(20), "counted once"

    stale = Summary(window_start=T0 + 120, version=0, index=index, users=10, vector_sum=[0.0] * DIM)
    unknown = Summary(window_start=T0 + 120, version=2, index=9, users=10, vector_sum=[0.0] * DIM)
    small = Summary(window_start=T0 + 120, version=2, index=index, users=2, vector_sum=[0.0] * DIM)
    seed_late = seed_sums(version=2)[0]
    future = Summary(window_start=T0 + 10 * 86400, version=2, index=index, users=10, vector_sum=[0.0] * DIM)
    ancient = Summary(window_start=T0 - 10 * 86400, version=2, index=index, users=10, vector_sum=[0.0] * DIM)
    finer = Summary(window_start=T0 + 121, version=2, index=index, users=10, vector_sum=[0.0] * DIM)  # misaligned
    assert cp.ingest("edge-0", [stale, unknown, small, seed_late, future, ancient, finer], T0 + 181) == 7
    fresh = control_plane(tmp_path / "other")
    too_many = [Summary(window_start=T0, version=0, index=8, seed=True, users=10, vector_sum=[0.1] * DIM)]
    assert fresh.ingest("edge-0", too_many, T0 + 61) == 1, "an edge sends at most 2k seed clusters per window"
    assert not cp.advance(T0 + 182)


def test_a_quarantined_node_does_not_move_the_segments(tmp_path):
    cp = control_plane(tmp_path)
    seed_from_two(cp, T0 + 61)
    cp.advance(T0 + 62)
    before = cp.current()
    cp.store.set_quarantine("evil", True)
    poison = [Summary(window_start=T0 + 60, version=1, index=j, users=100, vector_sum=[-1.0] * DIM)
              for j in range(4)]
    cp.ingest("evil", poison, T0 + 121)
    assert not cp.advance(T0 + 122)
    assert cp.current().segments == before.segments


def test_segments_off_and_k_changes(tmp_path):
    store = Store(tmp_path / "cp")
    merge = CohortMerge(store, min_size=5, horizon_s=86400)
    off = CpSegments(store, merge, k=0, decay=0.5, round_delay_s=0, min_size=5)
    assert off.current().k == 0 and off.ingest("edge-0", seed_sums(), T0) == 0 and not off.advance(T0 + 1)
    four = CpSegments(store, merge, k=4, decay=0.5, round_delay_s=0, min_size=5)
    seed_from_two(four, T0 + 61)
    assert four.advance(T0 + 62) and four.current().version == 1
    three = CpSegments(store, merge, k=3, decay=0.5, round_delay_s=0, min_size=5)
    assert three.current().k == 3 and not three.current().segments and three.current().version == 2, \
        "a new k starts over (seeding again) under a newer version"


def test_rules_and_experiments_keep_their_segment_on_the_wire_both_ways():
    from edge_node.sync import convert as edge_convert
    from protos.sentiedge.v1 import sync_pb2
    from sentiedge_core import experiments, rules

    rule = rules.Rule(name="r", cohort="*/*/*", signal="event_volume", op=">", threshold=1, clear=0,
                      window_minutes=5, min_size=1, action="a", segment="s2")
    experiment = experiments.Experiment(name="e", salt="s", segment="s3", arms=[
        experiments.Arm(name="a", weight=1), experiments.Arm(name="h", weight=1, holdout=True)])
    assert rules.from_proto(rules.to_proto(rule)) == rule
    assert experiments.from_proto(experiments.to_proto(experiment)) == experiment
    # What an edge reads off the stream (this once dropped the segment).
    assert edge_convert.rules(sync_pb2.RuleSet(rules=[rules.to_proto(rule)])) == [rule]
    assert edge_convert.experiments(sync_pb2.ExperimentSet(experiments=[experiments.to_proto(experiment)])) == \
        [experiment]
