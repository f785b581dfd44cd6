import pytest

from edge_node.personalization.cohorts import ALL, CohortBook, cohort_key, daypart
from edge_node.records import Member
from edge_node.store import EdgeStore

WINDOW = 1800.0
NOW = 1_800_000_000.0  # a window boundary


@pytest.fixture
def book(tmp_path):
    store = EdgeStore(tmp_path, retention_s=86400)
    yield CohortBook(store, window_s=WINDOW, min_size=3, max_per_user=2, horizon_s=86400, prior_cache_s=0)
    store.close()


def add(book, user, key, sentiment=0.0, texts=1, categories=None, at=NOW + 10, tenant="shop"):
    with book.store.transaction():
        return book.contribute(user, key, at, Member(texts=texts, negative=int(sentiment < 0), events=1,
                                                    sentiment_sum=sentiment, categories=categories or {}), NOW + 10,
                               tenant=tenant)


def test_keys_and_dayparts():
    assert cohort_key("EU", "Mobile", "evening") == "eu/mobile/evening"
    assert cohort_key(None, "", "night") == "unknown/unknown/night"
    assert cohort_key("us/east", "tv", "morning") == "us-east/tv/morning"
    assert daypart(NOW - NOW % 86400 + 8 * 3600) == "morning"
    assert daypart(NOW - NOW % 86400 + 8 * 3600, tz_offset_minutes=10 * 60) == "evening"


def test_small_cohorts_are_withheld_and_large_ones_exported(book):
    for user in ("u1", "u2"):
        add(book, user, "eu/mobile/evening", -0.5)
    window = book.window_of(NOW + 10)
    assert book.cells(window, "shop")["eu/mobile/evening"].users == 2
    assert book.export(window) == {}
    assert book.prior("eu/mobile/evening", NOW + 10, "shop") is None
    add(book, "u3", "eu/mobile/evening", -0.5)
    exported = book.export(window)
    assert set(exported) == {("shop", "eu/mobile/evening"), ("shop", ALL)}
    cell = exported[("shop", "eu/mobile/evening")]
    assert (cell.users, cell.texts, cell.negative) == (3, 3, 3)
    assert cell.sentiment_sum == pytest.approx(-1.5)


def test_one_user_counts_once_per_cell_and_is_clipped(book):
    for _ in range(10):
        add(book, "loud", "eu/web/night", -1.0, categories={"shoes": 5.0})
    cell = book.cells(book.window_of(NOW + 10), "shop")["eu/web/night"]
    assert cell.users == 1 and cell.texts == 10
    assert cell.sentiment_sum == pytest.approx(-1.0)  # clipped
    assert cell.categories["shoes"] == pytest.approx(3.0)  # clipped


def test_a_user_joins_a_bounded_number_of_cohorts_per_window(book):
    assert add(book, "u", "a/x/night") and add(book, "u", "b/x/night")
    assert not add(book, "u", "c/x/night")
    assert add(book, "u", "a/x/night")  # already a member: still counts there
    assert "c/x/night" not in book.cells(book.window_of(NOW + 10), "shop")


def test_withdrawal_takes_a_user_back_out_of_open_windows(book):
    for user in ("u1", "u2", "u3"):
        add(book, user, "eu/mobile/evening", 0.8, categories={"books": 1.0})
    with book.store.transaction():
        assert book.withdraw("u2", NOW + 20) == 2  # its cohort and its tenant-wide cell
    cell = book.cells(book.window_of(NOW + 10), "shop")["eu/mobile/evening"]
    assert (cell.users, cell.texts) == (2, 2)
    assert cell.sentiment_sum == pytest.approx(1.6)
    assert book.export(book.window_of(NOW + 10)) == {}  # now under the minimum size


def test_priors_average_over_members(book):
    for user in ("u1", "u2", "u3", "u4"):
        add(book, user, "eu/mobile/evening", 0.5, categories={"books": 2.0})
    prior = book.prior("eu/mobile/evening", NOW + 10, "shop")
    assert prior.users == 4 and prior.mean_sentiment == pytest.approx(0.5)
    assert prior.scores()["books"] > 0
    assert book.prior(ALL, NOW + 10, "shop").users == 4


def test_each_tenant_has_its_own_cells_and_priors(book):
    """The same cohort key in two tenants is two cells: one tenant's users never reach the
    other's cells, priors or "all" cell."""
    for user in ("u1", "u2", "u3"):
        add(book, user, "eu/mobile/evening", -0.8, categories={"casino": 2.0}, tenant="casino")
    add(book, "p1", "eu/mobile/evening", 0.5, categories={"vitamins": 1.0}, tenant="pharmacy")
    window = book.window_of(NOW + 10)
    assert book.cells(window, "casino")["eu/mobile/evening"].users == 3
    assert book.cells(window, "pharmacy")["eu/mobile/evening"].users == 1
    assert set(book.export(window)) == {("casino", "eu/mobile/evening"), ("casino", ALL)}  # 1 < min size
    assert book.prior("eu/mobile/evening", NOW + 10, "casino").users == 3
    assert book.prior("eu/mobile/evening", NOW + 10, "pharmacy") is None
    assert book.prior(ALL, NOW + 10, "pharmacy") is None
    assert book.cells(window, "pharmacy")[ALL].categories == {"vitamins": pytest.approx(1.0)}


def test_a_withdrawal_takes_the_user_out_of_their_tenants_cells_only(book):
    for tenant in ("casino", "pharmacy"):
        for user in ("u1", "u2", "u3"):
            add(book, f"{tenant}-{user}", "eu/mobile/evening", 0.5, tenant=tenant)
    with book.store.transaction():
        assert book.withdraw("casino-u1", NOW + 20) == 2  # its cohort and its tenant's "all"
    window = book.window_of(NOW + 10)
    assert book.cells(window, "casino")["eu/mobile/evening"].users == 2
    assert book.cells(window, "casino")[ALL].users == 2
    assert book.cells(window, "pharmacy")["eu/mobile/evening"].users == 3


def test_a_full_window_is_full_per_tenant(tmp_path):
    store = EdgeStore(tmp_path, retention_s=86400)
    book = CohortBook(store, window_s=WINDOW, min_size=1, max_per_user=5, horizon_s=86400, prior_cache_s=0,
                      max_cohorts=2)
    try:
        for key in ("a/x/night", "b/x/night", "c/x/night"):
            add(book, "u", key, tenant="busy")
        add(book, "v", "z/x/night", tenant="quiet")  # the busy tenant's cells do not crowd it out
        window = book.window_of(NOW + 10)
        assert set(book.cells(window, "busy")) == {"a/x/night", "b/x/night", ALL}
        assert set(book.cells(window, "quiet")) == {"z/x/night", ALL}
    finally:
        store.close()


def test_cells_from_before_tenants_belong_to_the_legacy_tenant_or_to_none(book):
    from edge_node.records import CohortCell, Keys

    window = book.window_of(NOW + 10)
    with book.store.transaction():  # as the release before tenants wrote them: bare cohort keys
        book.store.put(f"cohorts|{window}", Keys(keys=["eu/web/night", ALL]), ttl=86400)
        for key in ("eu/web/night", ALL):
            book.store.put(f"cohort|{window}|{key}", CohortCell(users=5, texts=5), ttl=86400)
    assert book.export(window) == {}  # no legacy tenant: nobody's, never exported nor a prior
    assert book.prior("eu/web/night", NOW + 10, "shop") is None
    book.legacy_tenant = "shop"
    assert set(book.export(window)) == {("shop", "eu/web/night"), ("shop", ALL)}
    assert book.cells(window, "shop")["eu/web/night"].users == 5
    assert book.cells(window, "other") == {}


def test_remote_priors_are_per_tenant_and_untenanted_ones_are_the_legacy_tenants(book):
    from edge_node.personalization.cohorts import CohortPrior

    book.set_remote({"casino": {"eu/mobile/evening": CohortPrior(users=40)},
                     "": {"eu/mobile/evening": CohortPrior(users=7)}})
    assert book.prior("eu/mobile/evening", NOW + 10, "casino").users == 40
    assert book.prior("eu/mobile/evening", NOW + 10, "pharmacy") is None
    book.legacy_tenant = "pharmacy"
    book.set_remote({"": {"eu/mobile/evening": CohortPrior(users=7)}})
    assert book.prior("eu/mobile/evening", NOW + 10, "pharmacy").users == 7
    assert book.prior("eu/mobile/evening", NOW + 10, "casino") is None


def test_every_key_an_edge_builds_passes_the_control_planes_intake_check_and_others_do_not():
    from sentiedge_core.cohorts import DAYPARTS, key_problem

    for region, device in (("EU", "Mobile"), (" us-east ", None), ("a/b", "web / app"), ("İstanbul", "ΣΑΣ"),
                           (None, None), ("x" * 128, "tablet")):
        for part in DAYPARTS:
            assert key_problem(cohort_key(region, device, part)) is None, (region, device, part)
    assert key_problem(ALL) is None
    for bad in ("eu/mobile", "eu/mobile/evening/x", "EU/mobile/night", "eu/mobile/teatime", "eu//night",
                " eu/mobile/night", "e\x01u/mobile/night", "x" * 300 + "/mobile/night", "All"):
        assert key_problem(bad) is not None, bad
