"""The collaborative signal on the edge: baskets on a real disk store, what leaves the node
(pairs of at least k users only), deletion and withdrawal, the ranking's use of the table, and
the exposure figures."""

import asyncio

import pytest

from edge_node.config import load_settings
from edge_node.errors import ConfigError
from edge_node.ingest import Event, Ingestor
from edge_node.personalization import profiles as p
from edge_node.personalization.cohorts import CohortBook
from edge_node.personalization.cooccurrence import Neighbours, PairBook, both_ways, recency_weights, scores
from edge_node.personalization.decisions import Personalizer
from edge_node.personalization.exposure import (
    Counts,
    ExplorationLog,
    Explored,
    ExposureBook,
    combined,
    figures,
    gini,
)
from edge_node.personalization.ranking import Candidate, Weights
from edge_node.privacy import PrivacyBook, Pseudonymizer
from edge_node.store import EdgeStore
from protos.sentiedge.v1 import sync_pb2
from sentiedge_core import cooccurrence as core

DAY = 86400.0
NOW = 1_800_000_000.0 // DAY * DAY + 3600  # an hour into a window
TUNING = p.Tuning(sentiment_window_s=1800, half_life_s=7 * DAY, prior_weight=2.0)


class Edge:
    def __init__(self, directory, k=3, max_items=50):
        self.store = EdgeStore(directory, retention_s=30 * DAY)
        self.cohorts = CohortBook(self.store, window_s=1800, min_size=k, max_per_user=2, horizon_s=DAY)
        self.pairs = PairBook(self.store, window_s=DAY, min_users=k, max_items=max_items)
        self.neighbours = Neighbours(self.store)
        self.exploration = ExplorationLog(self.store)
        self.privacy = PrivacyBook(self.store, self.cohorts, Pseudonymizer(b"k" * 32), pairs=self.pairs)
        self.clicks: list[str] = []

        async def no_texts(texts, subject, tenant=""):
            return []

        self.ingestor = Ingestor(self.privacy, self.cohorts, TUNING, retention_s=30 * DAY, score=no_texts,
                                 pairs=self.pairs, exploration=self.exploration,
                                 on_exploration_click=self.clicks.append)
        self.personalizer = Personalizer(self.store, self.privacy, self.cohorts, TUNING, dimension=16, cache_s=0,
                                         weights=Weights(personal=1.0, popularity=0.3, collaborative=1.0),
                                         neighbours=self.neighbours, exploration=self.exploration)

    def user(self, uid, *, personalization=True, cohort_analytics=True, tenant="shop"):
        self.privacy.set_consent(uid, {"personalization": personalization, "cohort_analytics": cohort_analytics},
                                 "v1", NOW - 60, NOW - 60)
        return uid

    def events(self, uid, *events, at=NOW, tenant="shop"):
        batch = [Event(type=kind, item_id=item, category="Books", value=value) for kind, item, value in events]
        return asyncio.run(self.ingestor.ingest(uid, batch, None, at, tenant=tenant))

    def subject(self, uid):
        return self.privacy.subject_of(uid)


@pytest.fixture
def edge(tmp_path):
    e = Edge(tmp_path)
    yield e
    e.store.close()


def chose(edge, uid, *items, at=NOW, tenant="shop"):
    edge.user(uid, tenant=tenant)
    edge.events(uid, *(("purchase", i, None) for i in items), at=at, tenant=tenant)


def closed(edge, now=NOW + DAY):
    return edge.pairs.closed(None, now)[1]


def test_only_items_and_pairs_of_k_users_leave_the_node_once_the_window_closed(edge):
    for u in range(3):
        chose(edge, f"u{u}", "serum", "cream")
    chose(edge, "u9", "serum", "secret")  # one person's pair never leaves
    assert edge.pairs.closed(None, NOW)[1] == []  # the window is still open: nothing yet
    [window] = closed(edge)
    assert window.tenant == "shop" and window.window_start == int(NOW // DAY * DAY)
    assert window.items == {"serum": 4, "cream": 3}
    assert window.pairs == [("cream", "serum", 3)]
    assert "secret" not in str(window) and "u9" not in str(window)


def test_a_user_counts_once_per_pair_and_brings_at_most_max_items(tmp_path):
    edge = Edge(tmp_path, k=2, max_items=3)
    for u in range(2):
        edge.user(f"u{u}")
        for n, item in enumerate(["a", "b", "a", "c", "d"]):  # "a" twice: one user, one count
            edge.events(f"u{u}", ("view", item, None), at=NOW + n)
    [window] = closed(edge)
    assert window.items == {"a": 2, "c": 2, "d": 2}  # the 3 latest: "b" fell out of the basket
    assert sorted(window.pairs) == [("a", "c", 2), ("a", "d", 2), ("c", "d", 2)]
    edge.store.close()


def test_dislikes_low_ratings_and_consent_decide_what_counts(edge):
    edge.user("liker")
    edge.events("liker", ("rating", "good", 4.0), ("rating", "bad", 2.0), ("dislike", "worse", None),
                ("rating", "meh", 3.0))
    basket = edge.store.keys(f"cob|{edge.pairs.window_of(NOW)}|")
    assert len(basket) == 1
    profile = edge.store.profile(edge.subject("liker"))
    assert set(profile.items) == {"good", "meh"}  # a rating under 3 stars and a dislike are no choice
    edge.events("liker", ("dislike", "good", None), at=NOW + 5)
    assert set(edge.store.profile(edge.subject("liker")).items) == {"meh"}  # turned against it: out
    # cohort_analytics alone: a basket, no profile; personalization alone: recent items, no basket
    edge.user("counted", personalization=False)
    edge.events("counted", ("purchase", "x", None))
    edge.user("private", cohort_analytics=False)
    edge.events("private", ("purchase", "y", None))
    assert edge.store.profile(edge.subject("counted")) is None
    assert list(edge.store.profile(edge.subject("private")).items) == ["y"]
    assert len(edge.store.keys(f"cob|{edge.pairs.window_of(NOW)}|")) == 2


def test_deletion_and_withdrawal_take_a_basket_out_of_the_open_windows(edge):
    for u in range(3):
        chose(edge, f"u{u}", "serum", "cream")
    [before] = edge.pairs.closed(None, NOW + DAY)[1]  # counted once the window closed (still open for erasure)
    assert before.pairs == [("cream", "serum", 3)]
    erasure = edge.privacy.delete_user("u0", NOW + DAY + 1)
    assert "cooccurrence_contributions" in erasure.erased
    after = closed(edge, NOW + DAY + 2)
    assert after == [] or after[0].pairs == []  # 2 users left: under k, nothing leaves
    change = edge.privacy.set_consent("u1", {"cohort_analytics": False}, "v1", NOW + DAY + 3, NOW + DAY + 3)
    assert "cooccurrence_contributions" in change.erased
    assert edge.store.keys(f"cob|{edge.pairs.window_of(NOW)}|{edge.subject('u1')}") == []
    # a window that closed long ago holds no basket any more: nothing of anyone is kept past two windows
    assert not edge.pairs.add(edge.subject("u2"), "late", NOW, NOW + 3 * DAY, tenant="shop")


def test_closed_windows_are_sent_until_receipted(edge):
    for u in range(3):
        chose(edge, f"u{u}", "a", "b")
    window = int(NOW // DAY * DAY)
    last, sent = edge.pairs.closed(None, NOW + DAY)
    assert last == window and len(sent) == 1
    assert edge.pairs.closed(window - int(DAY), NOW + DAY)[1] == sent  # not receipted yet: again
    assert edge.pairs.closed(window, NOW + DAY)[1] == []  # receipted


def test_tenants_never_meet_in_a_window(edge):
    for u in range(3):
        chose(edge, f"s{u}", "a", "b", tenant="shop")
        chose(edge, f"c{u}", "a", "c", tenant="clinic")
    windows = {w.tenant: w for w in closed(edge)}
    assert windows["shop"].pairs == [("a", "b", 3)] and windows["clinic"].pairs == [("a", "c", 3)]


def test_the_table_lifts_neighbours_of_the_users_recent_items_with_its_reason(edge):
    edge.user("ann")
    edge.events("ann", ("purchase", "serum-1", None))
    candidates = [Candidate(id="lipstick", category="Makeup", popularity=90),
                  Candidate(id="serum-2", category="Skincare", popularity=5)]

    def ranked(tenant="shop"):
        _, items = edge.personalizer.rank("ann", None, candidates, limit=2, exploration_slots=0, max_per_category=3,
                                          now=NOW + 60, tenant=tenant)
        return items

    assert ranked()[0].id == "lipstick"  # no table yet: popularity and genre only
    edge.neighbours.apply(core.NeighbourTable(tenant="shop", version=1, items={"serum-1": [("serum-2", 0.8)]}))
    top = ranked()[0]
    assert top.id == "serum-2" and top.reason == "often chosen with serum-1" and top.signals.collaborative == 1.0
    assert ranked("clinic")[0].id == "lipstick"  # another tenant's table is never used
    assert Neighbours(edge.store).of("shop") == {"serum-1": [("serum-2", 0.8)]}  # persisted for a restart


def test_scores_sum_similarities_and_name_the_strongest_item():
    table = {"a": [("x", 0.5), ("y", 0.2)], "b": [("x", 0.1), ("y", 0.6)]}
    got = scores(table, {"a": 1.0, "b": 1.0}, ["x", "y", "z"])
    assert got == {"x": (pytest.approx(0.75), "a"), "y": (1.0, "b")}
    assert scores(table, {"c": 1.0}, ["x"]) == {}
    weights = recency_weights({"old": 1.0, "new": 3.0, "mid": 2.0})
    assert weights["new"] == 1.0 > weights["mid"] > weights["old"] == 0.5 ** (2 / 10)


def test_the_table_is_read_both_ways_unless_configured_otherwise(edge):
    """A popular item's own top M holds other popular items; a niche item that keeps the popular
    one among its neighbours is still its neighbour when the table is read both ways."""
    items = {"blockbuster": [("sequel", 0.9)], "niche": [("blockbuster", 0.4), ("sequel", 0.1)]}
    assert both_ways(items) == {"blockbuster": [("sequel", 0.9), ("niche", 0.4)],
                                "niche": [("blockbuster", 0.4), ("sequel", 0.1)],
                                "sequel": [("blockbuster", 0.9), ("niche", 0.1)]}
    assert both_ways({"a": [("b", 0.5)], "b": [("a", 0.5)]}) == {"a": [("b", 0.5)], "b": [("a", 0.5)]}  # once
    edge.user("ann")
    edge.events("ann", ("purchase", "blockbuster", None))
    candidates = [Candidate(id="lipstick", category="Makeup", popularity=90),
                  Candidate(id="niche", category="Toys", popularity=1)]
    edge.neighbours.apply(core.NeighbourTable(tenant="shop", version=1, items=items))

    def top(neighbours):
        edge.personalizer.neighbours = neighbours
        _, ranked = edge.personalizer.rank("ann", None, candidates, limit=2, exploration_slots=0,
                                           max_per_category=3, now=NOW + 60, tenant="shop")
        return ranked[0]

    lifted = top(edge.neighbours)
    assert lifted.id == "niche" and lifted.reason == "often chosen with blockbuster"
    one_way = Neighbours(edge.store, both_ways=False)  # the persisted table, the recent item's own list only
    assert one_way.lookup("shop") == items and top(one_way).id == "lipstick"
    edge.neighbours.apply(core.NeighbourTable(tenant="shop", version=2, items={"sequel": [("niche", 0.3)]}))
    assert edge.neighbours.lookup("shop") == {"sequel": [("niche", 0.3)], "niche": [("sequel", 0.3)]}  # rebuilt
    assert top(edge.neighbours).id == "lipstick"  # the new table no longer links blockbuster and niche


def test_without_a_neighbour_table_popularity_weighs_its_own_weight(edge):
    """The blend is tuned with the table; in a tenant with none (not received yet, or empty)
    a user ranked by their own profile gets popularity's no-table weight, and the blend's once a
    table is in force, whatever it says about the user. Another tenant's table does not count."""
    edge.user("ann")
    edge.events("ann", *(("purchase", f"book-{n}", None) for n in range(4)))
    candidates = [Candidate(id="novel", category="Books", popularity=1)] + [
        Candidate(id=f"hit-{n}", category=f"Toys{n}", popularity=1000) for n in range(3)]

    def top(personalizer=edge.personalizer):
        _, items = personalizer.rank("ann", None, candidates, limit=3, exploration_slots=0, max_per_category=3,
                                     now=NOW + 60, tenant="shop")
        return items[0]

    assert top().id == "novel"  # no rule (None): the blend's popularity 0.3 under the user's Books
    edge.personalizer.no_table_popularity = 2.0
    assert top().id.startswith("hit-") and top().reason == "popular right now"  # no table yet
    edge.neighbours.apply(core.NeighbourTable(tenant="clinic", version=1, items={"x": [("y", 0.5)]}))
    assert top().id.startswith("hit-")  # another tenant's table
    edge.neighbours.apply(core.NeighbourTable(tenant="shop", version=1, items={}))
    assert top().id.startswith("hit-")  # an empty table is none
    edge.neighbours.apply(core.NeighbourTable(tenant="shop", version=2, items={"other": [("thing", 0.5)]}))
    lifted = top()  # a table in force, silent about ann's items: the blend, her Books first
    assert lifted.id == "novel" and lifted.reason.startswith("because you bought Books")
    restarted = Personalizer(edge.store, edge.privacy, edge.cohorts, TUNING, dimension=16, cache_s=0,
                             weights=edge.personalizer.weights, neighbours=Neighbours(edge.store),
                             no_table_popularity=2.0)
    assert top(restarted).id == "novel"  # the persisted table counts after a restart
    with pytest.raises(ConfigError, match="weight_popularity_no_table"):
        load_settings({"EDGE_WEIGHT_POPULARITY_NO_TABLE": "-1"})


def test_items_no_pair_names_cannot_crowd_real_items_out_of_the_table():
    """A lone node's junk items (many users each, but in no pair that survives the merge) do not
    push the items of real pairs out of a table capped at max_items."""
    pairs = {("a", "b"): 9, ("b", "c"): 4}
    items = {"a": 10, "b": 12, "c": 6} | {f"junk-{i}": 100 for i in range(50)}
    table = core.top_neighbours(pairs, items, top_m=5, max_items=3, shrink=0)
    assert set(table) == {"a", "b", "c"}


def test_core_similarity_top_neighbours_and_the_wire():
    assert core.similarity(10, 10, 10, shrink=0) == 1.0
    assert core.similarity(10, 10, 10, shrink=10) == 0.5  # few users: shrunk
    table = core.top_neighbours({("a", "b"): 9, ("a", "c"): 3, ("b", "c"): 3}, {"a": 10, "b": 9, "c": 30},
                                top_m=1, max_items=3, shrink=5.0)
    assert [n for n, _ in table["a"]] == ["b"] and [n for n, _ in table["c"]] == ["b"]
    assert set(core.top_neighbours({("a", "b"): 9}, {"a": 10, "b": 9}, top_m=5, max_items=1, shrink=0)) == set()
    w = core.PairWindow(tenant="t", window_start=0, window_seconds=60, items={"a": 3, "b": 3}, pairs=[("a", "b", 3)])
    assert core.window_from_proto(sync_pb2.PairWindow.FromString(core.window_to_proto(w).SerializeToString())) == w
    t = core.NeighbourTable(tenant="t", version=2, built_at=1.0, items={"a": [("b", 0.5)]})
    assert core.table_from_proto(core.table_to_proto(t)) == t


def test_the_table_builder_takes_its_similarity_measure():
    """Shrunk cosine by default; a measure passed in (the benchmark compares others) orders the lists."""
    pairs, items = {("a", "b"): 9, ("a", "c"): 10}, {"a": 10, "b": 9, "c": 80}
    cosine = core.top_neighbours(pairs, items, top_m=1, max_items=3, shrink=0)
    assert cosine["a"] == [("b", round(core.similarity(9, 10, 9, 0), 5))]
    counts = core.top_neighbours(pairs, items, top_m=1, max_items=3, shrink=0, measure=lambda c, a, b, shrink: c)
    assert counts["a"] == [("c", 10)]  # the popular item co-occurs more often, less in proportion


def test_exposure_share_and_gini_over_the_offered_catalogue():
    book = ExposureBook(window_s=3600)
    for _ in range(3):
        book.observe("shop", ["a", "b", "c", "d"], ["a", "b"], NOW)
    f = figures(combined([book.recent(NOW)])["shop"])
    assert (f.catalogue, f.exposed, f.share) == (4, 2, 0.5)
    assert f.gini == pytest.approx(0.5)
    assert gini([1, 1, 1]) == 0.0 and gini([0, 0, 9]) == pytest.approx(2 / 3) and gini([]) == 0.0
    assert book.recent(NOW + 7200) == {}  # past the previous window: forgotten
    two = combined([{0: {"shop": Counts(offered={"a": 1}, shown={"a": 1})}},
                    {0: {"shop": Counts(offered={"b": 1}, shown={})}}])["shop"]
    assert figures(two).share == 0.5  # several workers' counts add up


def test_a_click_on_an_explored_item_counts_once(edge):
    edge.user("ann")
    edge.events("ann", ("purchase", "seen", None))
    edge.exploration.shown(edge.subject("ann"), ["new-1"], NOW)
    edge.events("ann", ("click", "other", None), at=NOW + 10)
    edge.events("ann", ("click", "new-1", None), at=NOW + 20)
    edge.events("ann", ("click", "new-1", None), at=NOW + 30)
    assert edge.clicks == ["shop"]
    edge.exploration.shown(edge.subject("ann"), ["new-2"], NOW + 40)
    assert "explored_items" in edge.privacy.delete_user("ann", NOW + 50).erased
    assert edge.store.get(f"explored|{edge.subject('ann')}", Explored) is None
