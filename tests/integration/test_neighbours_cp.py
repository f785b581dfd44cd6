"""The item-neighbour tables on the control plane, on SQLite and a real PostgreSQL: windows
bounded and stored per node, merged per tenant under the one-node bound, versioned, pruned."""

from control_plane.cohorts import CohortMerge
from control_plane.cooccurrence import NeighbourBook
from sentiedge_core.cooccurrence import PairWindow

NOW = 1_800_000_000.0
DAY = 86400


def book(store, **overrides):  # noqa: F811
    cohorts = CohortMerge(store, min_size=3, horizon_s=DAY)
    settings = {"min_size": 3, "horizon_s": 30 * DAY, "top_m": 5, "max_items": 100, "shrink": 0.0, "min_nodes": 2,
                "max_node_share": 0.75, **overrides}
    return NeighbourBook(store, cohorts, **settings)


def window(tenant="shop", days_ago=1, items=None, pairs=()):
    return PairWindow(tenant=tenant, window_start=int((NOW - days_ago * DAY) // DAY * DAY), window_seconds=DAY,
                      items=items or {}, pairs=list(pairs))


def neighbours_of(b, tenant, item):
    table = b.store.neighbour_table(tenant)
    return dict(table[0].items.get(item, [])) if table else {}


def test_one_node_alone_fills_its_tenants_table_and_versions_move_only_on_change(store):  # noqa: F811
    b = book(store)
    tenants, clipped = b.ingest("edge-a", [window(items={"serum": 9, "cream": 6}, pairs=[("cream", "serum", 6)])],
                                NOW)
    assert tenants == ["shop"] and clipped == 0
    assert b.rebuild(NOW, tenants) == ["shop"]
    assert neighbours_of(b, "shop", "serum") == {"cream": round(6 / (9 * 6) ** 0.5, 5)}
    assert store.neighbour_table("shop")[0].version == 1
    b.ingest("edge-a", [window(items={"serum": 9, "cream": 6}, pairs=[("cream", "serum", 6)])], NOW + 1)  # a resend
    assert b.rebuild(NOW + 1, ["shop"]) == [] and store.neighbour_table("shop")[0].version == 1
    assert b.version() == (1, 1)


def test_tenants_never_meet(store):  # noqa: F811
    b = book(store)
    b.ingest("edge-a", [window("shop", items={"a": 5, "b": 5}, pairs=[("a", "b", 5)]),
                        window("clinic", items={"a": 5, "c": 5}, pairs=[("a", "c", 5)])], NOW)
    assert sorted(b.rebuild(NOW)) == ["clinic", "shop"]
    assert neighbours_of(b, "shop", "a") == {"b": 1.0} and neighbours_of(b, "clinic", "a") == {"c": 1.0}


def test_a_window_is_bounded_before_it_is_stored(store):  # noqa: F811
    b = book(store)
    _, clipped = b.ingest("rogue", [
        window(items={"a": 10**6, "b": 4, "tiny": 2}, pairs=[("a", "b", 10**6), ("a", "tiny", 2), ("a", "ghost", 9)]),
        window(days_ago=-1, items={"future": 9}),  # a window in the future
        window(days_ago=60, items={"old": 9}),  # past the horizon
        window(tenant="", items={"x": 9})], NOW)
    assert clipped == 4
    [(node, stored)] = store.pair_windows_since(0)
    assert node == "rogue" and stored.items == {"a": 100, "b": 4}  # the new node's cap; under k out
    assert stored.pairs == [("a", "b", 4)]  # at most either item's users; unknown items out


def test_one_node_cannot_make_two_items_neighbours_once_two_nodes_report(store):  # noqa: F811
    b = book(store)
    b.ingest("honest", [window(items={"a": 50, "b": 40, "c": 30}, pairs=[("a", "b", 30)])], NOW)
    b.ingest("honest2", [window(items={"a": 30, "b": 30}, pairs=[("a", "b", 3)])], NOW)
    b.ingest("rogue", [window(items={"a": 100, "c": 100}, pairs=[("a", "c", 100)])], NOW)
    b.rebuild(NOW)
    assert set(neighbours_of(b, "shop", "a")) == {"b"}  # only the rogue says "c": no neighbour
    b.ingest("rogue", [window(items={"a": 100, "b": 100}, pairs=[("a", "b", 100)])], NOW + 1)
    pairs, _ = b.merged("shop", NOW + 1)
    assert pairs[("a", "b")] <= (30 + 3) * (1 + 3)  # a pair others report too: the rogue's share bounded
    store.set_quarantine("honest", True)
    b.rebuild(NOW + 2)
    assert set(neighbours_of(b, "shop", "a")) == {"b"}  # honest2 and the rogue both report a-b ...
    store.set_quarantine("honest2", True)
    b.rebuild(NOW + 3)
    assert neighbours_of(b, "shop", "a") == {"b": 1.0}  # ... the rogue alone left: a one-node tenant, its cap


def test_windows_past_the_horizon_are_pruned_and_the_table_emptied(store):  # noqa: F811
    b = book(store, horizon_s=2 * DAY)
    b.ingest("edge-a", [window(items={"a": 5, "b": 5}, pairs=[("a", "b", 5)])], NOW)
    b.rebuild(NOW)
    assert b.prune(NOW + 5 * DAY) == ["shop"]
    table, _ = store.neighbour_table("shop")
    assert table.items == {} and table.version == 2 and store.pair_windows_since(0) == []


def test_a_lone_pair_stands_unless_the_others_see_a_third_of_its_users_of_one_of_its_items(store):  # noqa: F811
    """The rule and its stated bound: a pair only one node reports is left out exactly where the
    other nodes carry at least (1 - share)/share (a third at 0.75) of its users of an item."""
    b = book(store)
    b.ingest("honest", [window(items={"a": 60, "b": 30, "c": 9}, pairs=[("a", "b", 20), ("a", "c", 9)])], NOW)
    b.ingest("other", [window(items={"a": 19, "x": 9, "y": 9}, pairs=[("x", "y", 9)])], NOW)
    pairs, _ = b.merged("shop", NOW)
    assert set(pairs) == {("a", "b"), ("a", "c"), ("x", "y")}  # 19 < 60 / 3; x and y are the other's own
    b.ingest("other", [window(items={"a": 20, "x": 9, "y": 9}, pairs=[("x", "y", 9)])], NOW + 1)
    pairs, _ = b.merged("shop", NOW + 1)
    assert set(pairs) == {("x", "y")}  # 20 >= 60 / 3: the other sees "a" well and never with "b" or "c"


def test_the_book_builds_with_the_similarity_measure_it_is_given(store):  # noqa: F811
    b = book(store, measure=lambda users, n_a, n_b, shrink: users / max(n_a, n_b))
    b.ingest("edge-a", [window(items={"serum": 9, "cream": 6}, pairs=[("cream", "serum", 6)])], NOW)
    b.rebuild(NOW)
    assert neighbours_of(b, "shop", "serum") == {"cream": round(6 / 9, 5)}
