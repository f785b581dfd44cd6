"""Language scope through the real app and model: a text in another language is answered
``unsupported_language`` and moves no profile or cohort; ``EDGE_LANGUAGES`` widens the scope."""

import pytest
from litestar.testing import TestClient

from edge_node.config import load_settings
from edge_node.http.app import create_app
from tests.credentials import edge_app

GERMAN = "Die App stürzt ständig ab, sehr ärgerlich"


def client_for(model, tmp_path, **env):
    settings = load_settings({"EDGE_DATA_DIR": str(tmp_path / "edge"), "EDGE_COHORT_MIN_SIZE": "1",
                              "EDGE_COHORT_PRIOR_REFRESH_S": "0", **env})
    client = TestClient(create_app(settings, model=model))
    return client, settings


def test_an_unsupported_language_is_named_not_guessed(model, tmp_path):
    client, settings = client_for(model, tmp_path)
    with client as c:
        c.headers.update(edge_app(settings.data_path).server())
        results = c.post("/v1/sentiment", json={"texts": [GERMAN, "love it 😍"]}).json()["results"]
        assert results[0] == {"label": "unsupported_language", "score": 0.0, "confidence": results[0]["confidence"],
                              "stage": "language", "model": model.name, "version": model.version, "language": "de"}
        assert results[0]["confidence"] >= 0.8 and results[1]["label"] == "positive" and "language" not in results[1]
        # In events: accepted as behaviour, but the text moves neither the profile's mood nor the cohort's.
        assert c.put("/v1/users/anna/consent", json={"purposes": {"sentiment": True, "personalization": True,
                                                                  "cohort_analytics": True},
                                                     "policy_version": "v1"}).status_code == 200
        report = c.post("/v1/users/anna/events", json={"events": [
            {"type": "review", "item_id": "app", "category": "apps", "text": GERMAN}]}).json()
        assert report["accepted"] == 1 and report["texts_scored"] == 0
        assert report["results"][0]["text_ignored"] == "unsupported_language"
        assert report["results"][0]["sentiment"]["language"] == "de"
        vector = c.get("/v1/users/anna/vector").json()
        assert vector["sentiment"]["texts"] == 0
        node = c.app.state.node
        cell = node.cohorts.cells(node.cohorts.window_of(node.now()), "dev")["all"]
        assert cell.texts == 0 and cell.events == 1
        metrics = c.get("/metrics").text
        assert 'sentiedge_predictions_total{label="unsupported_language",stage="language"}' in metrics


@pytest.mark.parametrize("languages", ["en,de", "*"])
def test_the_language_setting_widens_the_scope(model, tmp_path, languages):
    client, settings = client_for(model, tmp_path, EDGE_LANGUAGES=languages)
    with client as c:
        c.headers.update(edge_app(settings.data_path).server())
        (result,) = c.post("/v1/sentiment", json={"texts": [GERMAN]}).json()["results"]
        assert result["label"] in model.label_set and "language" not in result  # judged, not refused


def test_an_empty_language_list_is_refused():
    from edge_node.errors import ConfigError

    with pytest.raises(ConfigError, match="languages"):
        load_settings({"EDGE_LANGUAGES": " , "})
