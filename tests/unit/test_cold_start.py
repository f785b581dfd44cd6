"""The cold-start rule of /v1/rank: a user with fewer than ``ColdStart.events`` events gets no
exploration slot and popularity weighs ``ColdStart.popularity``; from then on the shipped blend."""

import asyncio

import pytest

from edge_node.ingest import Event, Ingestor
from edge_node.personalization import profiles as p
from edge_node.personalization.cohorts import CohortBook
from edge_node.personalization.decisions import Personalizer
from edge_node.personalization.ranking import Candidate, ColdStart, Weights
from edge_node.privacy import PrivacyBook, Pseudonymizer
from edge_node.store import EdgeStore

DAY = 86400.0
NOW = 1_800_000_000.0
TUNING = p.Tuning(sentiment_window_s=1800, half_life_s=7 * DAY, prior_weight=2.0)
CANDIDATES = [Candidate(id="book", category="Books", popularity=1)] + [
    Candidate(id=f"hit-{c}", category=c, popularity=1000) for c in ("Garden", "Toys", "Music")] + [
    Candidate(id=f"other-{n}", category=f"C{n}", popularity=10) for n in range(8)]


@pytest.fixture
def edge(tmp_path):
    store = EdgeStore(tmp_path, retention_s=30 * DAY)
    cohorts = CohortBook(store, window_s=1800, min_size=50, max_per_user=2, horizon_s=DAY)
    privacy = PrivacyBook(store, cohorts, Pseudonymizer(b"k" * 32))

    async def no_texts(texts, subject, tenant=""):
        return []

    ingestor = Ingestor(privacy, cohorts, TUNING, retention_s=30 * DAY, score=no_texts)
    personalizer = Personalizer(store, privacy, cohorts, TUNING, dimension=16, cache_s=0,
                                weights=Weights(personal=1.0, popularity=0.3),
                                cold_start=ColdStart(events=3, popularity=8.0))
    privacy.set_consent("ann", {"personalization": True}, "v1", NOW - 60, NOW - 60)

    def bought(n):
        events = [Event(type="purchase", item_id=f"b{k}", category="Books") for k in range(n)]
        asyncio.run(ingestor.ingest("ann", events, None, NOW, tenant="shop"))

    def top(user="ann"):
        _, items = personalizer.rank(user, None, CANDIDATES, limit=4, exploration_slots=1, max_per_category=3,
                                     now=NOW + 60, tenant="shop")
        return items[:4]

    yield bought, top
    store.close()


def test_a_user_with_fewer_events_is_ranked_by_popularity_without_an_exploration_slot(edge):
    bought, top = edge
    bought(2)
    items = top()
    assert not any(i.exploration for i in items)
    assert {i.id for i in items[:3]} == {"hit-Garden", "hit-Music", "hit-Toys"}  # popularity weighs 8
    bought(1)  # the third event: the shipped blend and the exploration slot from now on
    items = top()
    assert items[0].id == "book" and items[0].reason.startswith("because you")
    assert [i.exploration for i in items] == [False, False, False, True]


def test_a_user_without_a_profile_gets_no_exploration_slot_either(edge):
    _, top = edge
    assert not any(i.exploration for i in top("nobody"))
