"""Drift: in-domain traffic is not flagged; a shift in what users write is, on the edge's
metrics and at the control plane, per node and overall."""

import pytest

from models.data import load_corpus
from sentiedge_core.bundle import read_manifest
from tests.e2e.cluster import cp_env, edge_env, eventually, metric, operator
from tests.e2e.http import call

pytestmark = pytest.mark.e2e


def test_a_shift_in_the_input_distribution_is_flagged(spawn, bundle_dir, tmp_path):
    _, cp = spawn("control-plane", "serve", env=cp_env())
    _, edge = spawn("edge-node", "serve", "--model-dir", str(bundle_dir), env=edge_env(cp, "edge-d", tmp_path))
    test = load_corpus().test
    in_domain = test.texts[:: max(1, len(test.texts) // 300)][:300]
    for start in range(0, len(in_domain), 30):
        assert call(edge, "POST", "/v1/sentiment", {"texts": in_domain[start:start + 30]})[0] == 200
    assert metric(edge, "sentiedge_drift") == 0.0
    assert metric(edge, 'sentiedge_drift_psi{what="labels"}') < 0.1

    angry = [f"Order {i}: this is awful, it broke immediately and support ignored me." for i in range(600)]
    for start in range(0, len(angry), 50):
        call(edge, "POST", "/v1/sentiment", {"texts": angry[start:start + 50]})
    assert metric(edge, "sentiedge_drift") == 1.0
    assert metric(edge, 'sentiedge_drift_psi{what="labels"}') > 0.2
    rows = eventually(lambda: (r := operator(cp, "models", "drift").get("rows")) and len(r) == 2
                      and all(x["drift"] for x in r) and r, what="drift flagged at the control plane")
    shipped = read_manifest(bundle_dir)
    assert {r["scope"] for r in rows} == {"edge-d", f"all {shipped.name} {shipped.version}"}


def test_sampled_predictions_can_be_labelled_and_disagreement_is_reported(spawn, bundle_dir, tmp_path):
    _, cp = spawn("control-plane", "serve", env=cp_env())
    _, edge = spawn("edge-node", "serve", "--model-dir", str(bundle_dir),
                    env=edge_env(cp, "edge-q", tmp_path, EDGE_LABEL_SAMPLE_RATE="1"))
    # Anonymous texts are never kept: only a consenting user's texts are sampled for review.
    anonymous = call(edge, "POST", "/v1/sentiment", {"texts": ["I love it."]})[1]["results"]
    assert anonymous[0].get("sample_id") is None
    assert call(edge, "PUT", "/v1/users/rev/consent", {"purposes": {"sentiment": True, "personalization": True},
                                                       "policy_version": "v1"})[0] == 200
    report = call(edge, "POST", "/v1/users/rev/events", {"events": [
        {"type": "review", "item_id": f"i{i}", "category": "Books", "text": text}
        for i, text in enumerate(["I love it.", "Horrible, never again.", "Great!"])]})[1]
    samples = [(r["sentiment"]["sample_id"], r["sentiment"]["label"]) for r in report["results"]]
    assert all(sid.startswith("smp-") for sid, _ in samples)
    flip = {"positive": "negative", "negative": "positive"}
    answers = [label for _, label in samples[:2]] + [flip[samples[2][1]]]  # the reviewer disagrees once
    for (sid, _), answer in zip(samples, answers, strict=False):
        status, body = call(edge, "POST", "/v1/labels", {"sample_id": sid, "label": answer})
        assert status == 200 and body["agreed"] == (answer == dict(samples)[sid])
    assert call(edge, "POST", "/v1/labels", {"sample_id": "smp-unknown", "label": "positive"})[0] == 404
    assert call(edge, "POST", "/v1/labels", {"sample_id": samples[0][0], "label": "meh"})[0] == 400
    def overall_row():  # heartbeats carry the counts; one may have left between two labels
        rows = operator(cp, "models", "quality").get("rows") or []
        row = next((r for r in rows if r["scope"] == "all"), None)
        return row if row is not None and int(row.get("labelled", 0)) >= 3 else None

    overall = eventually(overall_row, what="all three labels upstream")
    shipped = read_manifest(bundle_dir)
    assert overall["model"] == f"{shipped.name} {shipped.version}"
    assert (int(overall["labelled"]), int(overall["disagreements"])) == (3, 1)
    assert abs(overall["disagreement_rate"] - 1 / 3) < 1e-9
    # The sampled texts stay on the edge: nothing upstream carries them.
    sent = (tmp_path / "upstream-edge-q.jsonl").read_text()
    assert "never again" not in sent and "smp-" not in sent
