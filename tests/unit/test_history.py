"""The control plane's imported history: rows checked against its minimum size, one row per
tenant, day and cohort (an import again replaces), priors summed per cohort, live priors first."""

import pytest

from control_plane.cli_history import chunks
from control_plane.errors import InvalidArgument
from control_plane.history import MAX_ROWS_PER_CALL, History, with_history
from control_plane.store import Store
from sentiedge_core.cohorts import Aggregate
from sentiedge_core.daily import DailyRow


def row(day="2026-01-01", cohort="eu/mobile/evening", category="*", users=60, texts=80, negative=20, mean=0.25):
    return DailyRow(day=day, cohort=cohort, category=category, users=users, texts=texts, negative=negative,
                    sentiment_mean=mean)


@pytest.fixture
def history(tmp_path):
    store = Store(tmp_path)
    yield History(store, min_size=50)
    store.close()


def test_import_stores_days_and_priors_sum_them(history):
    rows = [row(), row(category="garden", users=55, texts=60, mean=0.5), row(day="2026-01-02", users=70, mean=-0.5)]
    done = history.import_rows("shop", rows, source="daily.parquet", at=1.0)
    assert done == {"rows": 3, "days": 2, "cohorts": 1, "aggregates": 2}
    [prior] = history.priors()
    assert (prior.cohort, prior.users, prior.texts, prior.negative) == ("eu/mobile/evening", 130, 160, 40)
    assert prior.sentiment_sum == pytest.approx(60 * 0.25 - 70 * 0.5)
    assert prior.categories == {"garden": pytest.approx(27.5)} and prior.window_seconds == 2 * 86400
    history.import_rows("shop", [row(users=90)], source="again.parquet", at=2.0)  # a day again: replaced
    [prior] = history.priors()
    assert prior.users == 160 and prior.categories == {}
    assert history.store.history_cells("shop") == 2


def test_import_refuses_small_rows_bad_tenants_and_oversized_calls(history):
    with pytest.raises(InvalidArgument, match="minimum size 50"):
        history.import_rows("shop", [row(), row(category="garden", users=49)], source="x", at=1.0)
    with pytest.raises(InvalidArgument, match="tenant"):
        history.import_rows("", [row()], source="x", at=1.0)
    with pytest.raises(InvalidArgument, match="rows in one call"):
        history.import_rows("shop", [row()] * (MAX_ROWS_PER_CALL + 1), source="x", at=1.0)
    assert history.priors() == [] and history.store.history_cells("shop") == 0  # nothing of a refused call kept


def test_live_priors_win_and_history_fills_the_rest_per_tenant():
    t = {"tenant": "shop"}
    live = [Aggregate(window_start=0, window_seconds=3600, cohort="eu/mobile/evening", users=80, **t)]
    past = [Aggregate(window_start=0, window_seconds=86400, cohort="eu/mobile/evening", users=500, **t),
            Aggregate(window_start=0, window_seconds=86400, cohort="us/desktop/night", users=300, **t)]
    assert [(a.cohort, a.users) for a in with_history(live, past)] == [("eu/mobile/evening", 80),
                                                                       ("us/desktop/night", 300)]
    other = [Aggregate(window_start=0, window_seconds=3600, cohort="eu/mobile/evening", users=80, tenant="clinic")]
    # another tenant's live prior of the same cohort hides nothing of this tenant's history
    assert [(a.tenant, a.users) for a in with_history(other, past[:1])] == [("clinic", 80), ("shop", 500)]


def test_history_priors_are_per_tenant(history):
    history.import_rows("shop", [row()], source="x", at=1.0)
    history.import_rows("clinic", [row(users=50)], source="y", at=1.0)
    priors = history.priors()  # one per tenant and cohort, never summed across tenants
    assert sorted((p.tenant, p.cohort, p.users) for p in priors) == [("clinic", "eu/mobile/evening", 50),
                                                                     ("shop", "eu/mobile/evening", 60)]


def test_cli_sends_whole_days_per_call():
    rows = [row(day=f"2026-01-0{d}", category=str(i)) for d in (1, 2, 3) for i in range(4)]
    calls = chunks(rows, per_call=9)
    assert [len(c) for c in calls] == [8, 4] and all(len({r.day for r in c}) == len(c) // 4 for c in calls)
    with pytest.raises(ValueError, match="more than one call takes"):
        chunks(rows, per_call=3)
