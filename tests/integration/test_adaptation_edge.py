"""The edge's side of federated adaptation through the real app, store and model: labels
arrive over HTTP with the server key, a round trains on them and answers with a clipped
update and a count, answers are stable, and erased users' samples never reach a round."""

import msgspec
import numpy as np
import pytest
from litestar.testing import TestClient

from edge_node.config import load_settings
from edge_node.http.app import create_app
from edge_node.quality import Sample
from sentiedge_core import adaptation
from sentiedge_core.adaptation import Round
from tests.credentials import edge_app

TEXTS = ["great value for money", "the app keeps crashing", "five stars, would buy again", "not bad at all",
         "refund took three weeks", "support fixed it in minutes", "arrived broken", "love the new update",
         "never ordering again", "exactly as described", "the strap snapped on day two", "so comfy and warm",
         "waited an hour on hold", "my kids adore it", "overpriced and flimsy", "fast shipping, nice packaging"]
POSITIVE = {0, 2, 3, 5, 7, 9, 11, 13, 15}


def make(model, tmp_path, **extra):
    settings = load_settings({"EDGE_DATA_DIR": str(tmp_path / "edge"), "EDGE_LABEL_SAMPLE_RATE": "1",
                              "EDGE_RATE_LIMIT_PER_ADDRESS": "0", "EDGE_ADAPT_MIN_LABELS": "10", **extra})
    app = create_app(settings, model=model)
    return app, settings


@pytest.fixture
def edge(model, tmp_path):
    app, settings = make(model, tmp_path)
    with TestClient(app) as client:
        client.headers.update(edge_app(settings.data_path).server())
        yield client, app.state.node


def label_texts(client, user, texts, offset=0):
    assert client.put(f"/v1/users/{user}/consent", json={"purposes": {"sentiment": True, "personalization": True},
                                                          "policy_version": "v1"}).status_code == 200
    r = client.post(f"/v1/users/{user}/events", json={"events": [
        {"type": "review", "item_id": f"i{i}", "category": "Shop", "text": t} for i, t in enumerate(texts)]})
    assert r.status_code == 200, r.text
    ids = [x["sentiment"]["sample_id"] for x in r.json()["results"]]
    for i, sample_id in enumerate(ids):
        truth = "positive" if (i + offset) % len(TEXTS) in POSITIVE else "negative"
        assert client.post("/v1/labels", json={"sample_id": sample_id, "label": truth}).status_code == 200
    return ids


def round_for(model, job="adapt-1", version=None, noise=0.0, **extra) -> Round:
    head = model.transformer_stage.head
    theta = adaptation.initial(head, model.manifest.cascade)
    return Round(job=job, round=0, rounds=1, name=model.name, version=version or model.version, manifest_sha="",
                 dimension=head.dimension,
                 theta=theta.tolist(), steps=5, regularization=0.03, clip=1.0, noise_multiplier=noise,
                 min_labels=extra.get("min_labels", 10))


def test_labels_over_http_become_a_clipped_update_and_a_count(edge, model):
    client, node = edge
    ids = label_texts(client, "ann", TEXTS[:8])
    declined = node.adaptation.answer(round_for(model), model)
    assert (declined.status, declined.count, declined.delta) == ("too_few_labels", 8, [])
    more = label_texts(client, "ben", TEXTS[8:], offset=8)
    ttl_before = node.store.ttl_left(f"sample|{ids[0]}")
    answer = node.adaptation.answer(round_for(model, job="adapt-2"), model)
    assert answer.status == "ok" and answer.count == 16
    delta = np.asarray(answer.delta)
    assert delta.shape == (adaptation.size(model.transformer_stage.head.dimension),)
    assert 0 < np.linalg.norm(delta) <= 1.0 + 1e-9
    # Features are kept inside each sample (so an erasure takes them), without extending its retention.
    sample = node.store.get(f"sample|{more[0]}", Sample)
    assert len(sample.pooled) == model.transformer_stage.head.dimension and sample.true_label
    assert node.store.ttl_left(f"sample|{ids[0]}") <= ttl_before
    # A labelling server key is needed: a client key cannot label.
    client.headers.pop("Authorization", None)
    assert client.post("/v1/labels", json={"sample_id": ids[0], "label": "positive"}).status_code in (401, 403)


def test_an_answer_is_resent_unchanged_so_noise_is_never_drawn_twice(edge, model):
    client, node = edge
    label_texts(client, "ann", TEXTS)
    first = node.adaptation.answer(round_for(model, job="adapt-noisy", noise=1.0), model)
    again = node.adaptation.answer(round_for(model, job="adapt-noisy", noise=1.0), model)
    assert first.status == "ok" and first.delta == again.delta
    other = node.adaptation.answer(round_for(model, job="adapt-other", noise=1.0), model)
    assert other.delta != first.delta, "fresh noise for a new round, drawn on the edge"


def test_erased_users_samples_never_reach_a_round(edge, model):
    client, node = edge
    label_texts(client, "ann", TEXTS[:8])
    label_texts(client, "ben", TEXTS[8:], offset=8)
    assert node.adaptation.answer(round_for(model, job="adapt-a"), model).count == 16
    assert client.delete("/v1/users/ben").status_code in (200, 202, 204)
    after = node.adaptation.answer(round_for(model, job="adapt-b"), model)
    assert (after.status, after.count) == ("too_few_labels", 8)
    # Withdrawing the sentiment purpose erases samples too.
    assert client.put("/v1/users/ann/consent", json={"purposes": {"sentiment": False, "personalization": True},
                                                     "policy_version": "v1"}).status_code == 200
    assert node.adaptation.answer(round_for(model, job="adapt-c"), model).count == 0


def test_an_edge_declines_rounds_it_cannot_or_may_not_take(edge, model, tmp_path):
    client, node = edge
    label_texts(client, "ann", TEXTS)
    other = node.adaptation.answer(round_for(model, job="adapt-x", version="0.0.1"), model)
    assert other.status == "not_serving" and "not 0.0.1" in other.error
    bad = round_for(model, job="adapt-y")
    bad = msgspec.structs.replace(bad, theta=bad.theta[:-1])
    assert node.adaptation.answer(bad, model).status == "failed"
    # The edge's own floor wins over a round that asks for fewer labels.
    assert node.adaptation.answer(round_for(model, job="adapt-z", min_labels=1), model).status == "ok"
    app, _ = make(model, tmp_path / "off", EDGE_ADAPT="false")
    with TestClient(app):
        off = app.state.node.adaptation.answer(round_for(model, job="adapt-off"), model)
    assert off.status == "not_serving" and "EDGE_ADAPT=false" in off.error


def test_the_labels_floor_cannot_be_set_below_ten(tmp_path):
    from edge_node.errors import ConfigError

    with pytest.raises(ConfigError, match="adapt_min_labels must be at least 10"):
        load_settings({"EDGE_DATA_DIR": str(tmp_path), "EDGE_ADAPT_MIN_LABELS": "1"})


def test_an_edge_keeps_its_own_privacy_budget_whatever_the_control_plane_asks(model, tmp_path):
    app, settings = make(model, tmp_path, EDGE_ADAPT_MAX_EPSILON="4")
    with TestClient(app) as client:
        client.headers.update(edge_app(settings.data_path).server())
        node = app.state.node
        label_texts(client, "ann", TEXTS)
        noiseless = node.adaptation.answer(round_for(model, job="adapt-plain"), model)
        assert noiseless.status == "budget_spent" and "only rounds with noise" in noiseless.error
        first = node.adaptation.answer(round_for(model, job="adapt-1", noise=3.0), model)
        assert first.status == "ok" and 3.0 < node.adaptation.spent(model.name) < 4.0
        again = node.adaptation.answer(round_for(model, job="adapt-1", noise=3.0), model)
        assert again.delta == first.delta and node.adaptation.spent(model.name) < 4.0, "a resend costs nothing"
        second = node.adaptation.answer(round_for(model, job="adapt-2", noise=3.0), model)
        assert second.status == "budget_spent" and "over EDGE_ADAPT_MAX_EPSILON 4" in second.error
