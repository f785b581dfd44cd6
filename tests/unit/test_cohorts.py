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


def add(book, user, key, sentiment=0.0, texts=1, categories=None, at=NOW + 10):
    with book.store.transaction():
        return book.contribute(user, key, at, Member(texts=texts, negative=int(sentiment < 0), events=1,
                                                    sentiment_sum=sentiment, categories=categories or {}), NOW + 10)


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
    assert book.cells(window)["eu/mobile/evening"].users == 2
    assert book.export(window) == {}
    assert book.prior("eu/mobile/evening", NOW + 10) is None
    add(book, "u3", "eu/mobile/evening", -0.5)
    exported = book.export(window)
    assert set(exported) == {"eu/mobile/evening", ALL}
    cell = exported["eu/mobile/evening"]
    assert (cell.users, cell.texts, cell.negative) == (3, 3, 3)
    assert cell.sentiment_sum == pytest.approx(-1.5)


def test_one_user_counts_once_per_cell_and_is_clipped(book):
    for _ in range(10):
        add(book, "loud", "eu/web/night", -1.0, categories={"shoes": 5.0})
    cell = book.cells(book.window_of(NOW + 10))["eu/web/night"]
    assert cell.users == 1 and cell.texts == 10
    assert cell.sentiment_sum == pytest.approx(-1.0)  # clipped
    assert cell.categories["shoes"] == pytest.approx(3.0)  # clipped


def test_a_user_joins_a_bounded_number_of_cohorts_per_window(book):
    assert add(book, "u", "a/x/night") and add(book, "u", "b/x/night")
    assert not add(book, "u", "c/x/night")
    assert add(book, "u", "a/x/night")  # already a member: still counts there
    assert "c/x/night" not in book.cells(book.window_of(NOW + 10))


def test_withdrawal_takes_a_user_back_out_of_open_windows(book):
    for user in ("u1", "u2", "u3"):
        add(book, user, "eu/mobile/evening", 0.8, categories={"books": 1.0})
    with book.store.transaction():
        assert book.withdraw("u2", NOW + 20) == 2  # its cohort and the node-wide cell
    cell = book.cells(book.window_of(NOW + 10))["eu/mobile/evening"]
    assert (cell.users, cell.texts) == (2, 2)
    assert cell.sentiment_sum == pytest.approx(1.6)
    assert book.export(book.window_of(NOW + 10)) == {}  # now under the minimum size


def test_priors_average_over_members(book):
    for user in ("u1", "u2", "u3", "u4"):
        add(book, user, "eu/mobile/evening", 0.5, categories={"books": 2.0})
    prior = book.prior("eu/mobile/evening", NOW + 10)
    assert prior.users == 4 and prior.mean_sentiment == pytest.approx(0.5)
    assert prior.scores()["books"] > 0
    assert book.prior(ALL, NOW + 10).users == 4
