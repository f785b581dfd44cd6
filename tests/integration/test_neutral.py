"""The neutral class through the real bundle and app: the manifest lists it, the neutral head is
verified like every other file, a neutral text keeps its two-way score, and it moves no profile
mood and no cohort sentiment (it still counts as behaviour)."""

import json
import shutil

import msgspec
import numpy as np
import pytest
from litestar.testing import TestClient

from edge_node.config import load_settings
from edge_node.http.app import create_app
from sentiedge_core.bundle import MANIFEST, read_manifest, sha256_file
from sentiedge_core.errors import BundleError
from sentiedge_core.inference import NEUTRAL, SentimentModel
from tests.credentials import edge_app


def neutral_golden(model) -> list[str]:
    return [g.text for g in model.manifest.golden if g.label == NEUTRAL]


def test_the_bundle_serves_three_labels_and_names_them(model):
    assert model.label_set == ["negative", "neutral", "positive"]
    assert model.manifest.stage("transformer").neutral in model.manifest.files
    texts = neutral_golden(model)
    assert len(texts) >= 3  # golden examples include neutral ones, checked at every load
    results = model.score(texts + ["I absolutely love it, best purchase ever!", "Broken on arrival, awful."])
    assert [r.label for r in results[: len(texts)]] == [NEUTRAL] * len(texts)
    assert [r.label for r in results[len(texts):]] == ["positive", "negative"]
    for r in results[: len(texts)]:
        assert -1.0 <= r.score <= 1.0 and 1 / 3 < r.confidence <= 1.0 and r.stage == "transformer"


def test_the_neutral_head_never_changes_the_score(model):
    """Same texts with the neutral heads taken away: identical scores, only labels differ."""
    texts = neutral_golden(model) + ["it was fine I guess", "The soup was cold."]
    with_head = model.score(texts)
    stage = model.transformer_stage
    saved = stage.neutral, [e.neutral for e in stage.exits]
    stage.neutral = None
    for e in stage.exits:  # 1.7+: each early exit judges the texts it answers with a head of its own
        e.neutral = None
    try:
        without = model.score(texts)
    finally:
        stage.neutral = saved[0]
        for e, head in zip(stage.exits, saved[1], strict=True):
            e.neutral = head
    assert [r.score for r in with_head] == [r.score for r in without]
    assert all(r.label in ("negative", "positive") for r in without)


def _copy_with_head(model, tmp_path, head: dict):
    root = tmp_path / "bundle"
    shutil.copytree(model.root, root)
    name = model.manifest.stage("transformer").neutral
    (root / name).write_text(json.dumps(head))
    manifest = read_manifest(root)
    manifest.files[name] = sha256_file(root / name)
    (root / MANIFEST).write_bytes(msgspec.json.encode(manifest))
    return root


@pytest.mark.parametrize("head, message", [
    ({"weights": [[0.0] * 3] * 3, "bias": [0.0, 0.0, 0.0]}, "3 rows of width"),
    ({"weights": [[float("nan")] * 384] * 3, "bias": [0.0, 0.0, 0.0]}, "not a readable neutral head|non-finite"),
    ({"weights": [[0.0] * 384] * 3, "bias": [0.0, 0.0, 0.0], "temperature": 0}, "non-positive temperature"),
])
def test_a_malformed_neutral_head_is_refused_by_name(model, tmp_path, head, message):
    root = _copy_with_head(model, tmp_path, head)
    with pytest.raises(BundleError, match=message):
        SentimentModel(root, check_golden=False)


def test_a_tampered_neutral_head_fails_its_digest(model, tmp_path):
    root = tmp_path / "bundle"
    shutil.copytree(model.root, root)
    path = root / model.manifest.stage("transformer").neutral
    head = json.loads(path.read_text())
    head["bias"][1] += 5.0  # everything neutral
    path.write_text(json.dumps(head))
    with pytest.raises(BundleError, match="sha256|digest"):
        SentimentModel(root)


def test_a_neutral_text_moves_no_mood_and_no_cohort_sentiment(model, tmp_path):
    settings = load_settings({"EDGE_DATA_DIR": str(tmp_path / "edge"), "EDGE_COHORT_MIN_SIZE": "1",
                              "EDGE_COHORT_PRIOR_REFRESH_S": "0"})
    text = neutral_golden(model)[0]
    with TestClient(create_app(settings, model=model)) as c:
        c.headers.update(edge_app(settings.data_path).server())
        assert c.put("/v1/users/nora/consent", json={"purposes": {"sentiment": True, "personalization": True,
                                                                  "cohort_analytics": True},
                                                     "policy_version": "v1"}).status_code == 200
        report = c.post("/v1/users/nora/events", json={"events": [
            {"type": "review", "item_id": "parcel-1", "category": "delivery", "text": text},
            {"type": "review", "item_id": "parcel-2", "category": "delivery",
             "text": "Terrible, it came broken."}]}).json()
        assert report["accepted"] == 2 and report["texts_scored"] == 2
        first, second = (r["sentiment"] for r in report["results"])
        assert first["label"] == NEUTRAL and second["label"] == "negative"
        assert "text_ignored" not in report["results"][0] or report["results"][0]["text_ignored"] is None
        vector = c.get("/v1/users/nora/vector").json()
        assert vector["sentiment"]["texts"] == 1  # only the negative text entered the window
        assert np.isclose(vector["sentiment"]["negative_share"], 1.0) or vector["sentiment"]["mean"] < 0
        node = c.app.state.node
        cell = node.cohorts.cells(node.cohorts.window_of(node.now()), "dev")["all"]
        assert cell.events == 2 and cell.texts == 1 and cell.negative == 1
        assert 'sentiedge_predictions_total{label="neutral",stage="transformer"}' in c.get("/metrics").text


def test_a_reviewer_may_label_a_sample_neutral(model, tmp_path):
    settings = load_settings({"EDGE_DATA_DIR": str(tmp_path / "edge"), "EDGE_LABEL_SAMPLE_RATE": "1"})
    with TestClient(create_app(settings, model=model)) as c:
        c.headers.update(edge_app(settings.data_path).server())
        assert c.put("/v1/users/omar/consent", json={"purposes": {"sentiment": True, "personalization": True},
                                                     "policy_version": "v1"}).status_code == 200
        report = c.post("/v1/users/omar/events", json={"events": [
            {"type": "review", "item_id": "x", "category": "delivery", "text": neutral_golden(model)[0]}]}).json()
        sample_id = report["results"][0]["sentiment"]["sample_id"]
        answer = c.post("/v1/labels", json={"sample_id": sample_id, "label": NEUTRAL})
        assert answer.status_code in (200, 201), answer.text
        assert answer.json()["agreed"] is True
        bad = c.post("/v1/labels", json={"sample_id": sample_id, "label": "meh"})
        assert bad.status_code == 400 and "neutral" in bad.json()["message"]


def _with_exit_head(model, tmp_path, head: dict | None, *, drop_final: bool = False):
    """A copy of the bundle whose first early exit carries ``head`` as its neutral head."""
    root = tmp_path / "exit-bundle"
    shutil.copytree(model.root, root)
    manifest = read_manifest(root)
    stage = manifest.stage("transformer")
    first = stage.exits[0]
    first.neutral = first.neutral or f"transformer-exit-{first.layer}-neutral.json"
    (root / first.neutral).write_text(json.dumps(head))
    manifest.files[first.neutral] = sha256_file(root / first.neutral)
    if drop_final:
        manifest.files.pop(stage.neutral)
        stage.neutral = ""
    (root / MANIFEST).write_bytes(msgspec.json.encode(manifest))
    return root, first


def test_an_exit_judges_the_texts_it_answers_with_its_own_neutral_head(model, tmp_path):
    """A neutral head on the first exit that calls everything neutral: exactly the texts that exit
    answers come out neutral, with the score they had; texts the fast stage answers, or that run
    on past the exit, keep their labels."""
    width = model.transformer_stage.exits[0].head.dimension
    root, first = _with_exit_head(model, tmp_path, {"weights": [[0.0] * width] * 3, "bias": [0.0, 9.0, 0.0]})
    changed = SentimentModel(root, check_golden=False)
    texts = ["I absolutely love it, best purchase ever!", "Broken on arrival, awful.", "it was fine I guess",
             "The soup was cold.", "where is my order?", "Great value for money.", "meh",
             "The hotel was lovely but the breakfast was a letdown."]
    before, after = model.score(texts), changed.score(texts)
    assert [r.score for r in before] == [r.score for r in after]
    answered_there = [bool(v.escalate) and int(model.transformer_stage.forward([t]).exit_layer[0]) == first.layer
                      for t, v in zip(texts, model.fast(texts), strict=True)]
    assert any(answered_there) and not all(answered_there)
    for b, a, there in zip(before, after, answered_there, strict=True):
        assert (a.label == NEUTRAL and a.confidence > 0.99) if there else a.label == b.label


@pytest.mark.parametrize("head, message", [
    ({"weights": [[0.0] * 5] * 3, "bias": [0.0, 0.0, 0.0]}, "3 rows of width"),
    ({"weights": "nope", "bias": []}, "not a readable neutral head"),
])
def test_a_malformed_exit_neutral_head_is_refused_by_name(model, tmp_path, head, message):
    root, first = _with_exit_head(model, tmp_path, head)
    with pytest.raises(BundleError, match=f"{first.neutral}.*{message}|{message}"):
        SentimentModel(root, check_golden=False)


def test_an_exit_neutral_head_needs_the_encoders_own(model, tmp_path):
    width = model.transformer_stage.exits[0].head.dimension
    root, _ = _with_exit_head(model, tmp_path, {"weights": [[0.0] * width] * 3, "bias": [0.0, 0.0, 0.0]},
                              drop_final=True)
    with pytest.raises(BundleError, match="exit's neutral head needs the transformer's own"):
        SentimentModel(root, check_golden=False)
