"""The release bundle as a user gets it: accuracy on held-out data, long texts, calibration."""

import numpy as np
import pytest

from models.data import load_corpus
from models.metrics import report


@pytest.fixture(scope="module")
def samples():
    corpus = load_corpus()
    rng = np.random.default_rng(5)
    out = {}
    for source, n in (("rotten_tomatoes", 500), ("imdb", 150)):
        test = corpus.test.only(source)
        pick = rng.permutation(len(test))[:n]
        out[source] = ([test.texts[i] for i in pick], test.y[pick])
    return out


def test_held_out_accuracy_on_samples_of_each_test_split(model, samples):
    # Samples, not the full splits (that is models.evaluate's job); bounds sit below the
    # release targets by the sampling error of a few hundred texts.
    for source, floor in (("rotten_tomatoes", 0.80), ("imdb", 0.87)):
        texts, y = samples[source]
        results = model.score(texts)
        p = np.array([(r.score + 1) / 2 for r in results])
        assert report(p, y)["accuracy"] >= floor, source


def test_cascade_escalates_some_texts_but_not_all(model, samples):
    """The fast stage answers some short snippets alone (1.7.0's short route, fitted on tweets, product
    and news sentences too, escalates most of them) and most long reviews."""
    shares = {}
    for source, (texts, _) in samples.items():
        stages = [r.stage for r in model.score(texts)]
        shares[source] = stages.count("transformer") / len(stages)
    assert 0.5 < shares["rotten_tomatoes"] < 0.99
    assert 0.05 < shares["imdb"] < 0.5


def exact_accuracy(report: dict) -> float:
    c = report["confusion"]
    return (c["true_negative"] + c["true_positive"]) / sum(c.values())


def test_release_manifest_records_the_quality_gates(model):
    """The build's gates, recomputed exactly from the recorded confusion matrices (not rounded).

    The issue's targets: RT >= 0.84, IMDB >= 0.91, ECE <= 0.05, int8 within a point of fp32."""
    m = model.manifest.metrics
    assert exact_accuracy(m["test_int8"]["rotten_tomatoes"]["cascade"]) >= 0.84
    assert exact_accuracy(m["test_int8"]["imdb"]["cascade"]) >= 0.91
    for source in ("rotten_tomatoes", "imdb"):
        assert {"fast", "transformer"} <= set(m["test_fp32"][source])  # a 1.2 cascade reuses 1.1's stages
        for stage in m["test_fp32"][source]:
            drop = exact_accuracy(m["test_fp32"][source][stage]) - exact_accuracy(m["test_int8"][source][stage])
            assert drop <= 0.01, (source, stage)
        assert m["test_int8"][source]["cascade"]["ece"] <= 0.05


def test_long_texts_are_scored_whole_within_the_window_budget(model):
    verdict = "It was a wonderful, moving film and I loved it."
    filler = "The film runs for two hours and was shot in several cities. " * 150
    long_text = filler + verdict
    (result,) = model.score([long_text])
    assert result.label in {"positive", "negative"}
    encoder = model.transformer_stage.encoder
    assert len(encoder.windows_of(encoder.token_ids([long_text])[0])) == model.manifest.stage("transformer").max_windows


def test_out_of_domain_texts(model):
    texts = ["The delivery was late and the box was crushed.", "Customer support sorted it out in minutes, thanks!",
             "worst update ever, app keeps crashing", "Love my new running shoes, so comfortable"]
    assert [r.label for r in model.score(texts)] == ["negative", "positive", "negative", "positive"]


def test_scores_do_not_depend_on_the_batch_a_text_arrives_in(model, samples):
    texts = samples["rotten_tomatoes"][0][:40]
    together = model.score(texts)
    alone = [model.score([t])[0] for t in texts]
    assert any(r.stage == "transformer" for r in together)
    for a, b in zip(together, alone, strict=False):
        assert a.label == b.label and abs(a.score - b.score) < 1e-5


def test_everyday_short_texts_floor(model):
    """120 everyday short texts with clear polarity (tests/data, balanced, never used to fit or
    choose anything): a floor under the shipped bundle, not a target. 1.1.1 scored 0.77 (the fast
    stage answered "not bad at all" negative at 0.9999); 1.2.0 (thin evidence, mixed-domain stacker) 0.91."""
    import csv
    from pathlib import Path

    with (Path(__file__).resolve().parents[1] / "data" / "everyday_short.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) >= 100 and sum(r["label"] == "1" for r in rows) == len(rows) // 2
    results = model.score([r["text"] for r in rows])
    # the label as served: a neutral answer to a clear opinion is wrong
    accuracy = np.mean([r.label == ("positive" if row["label"] == "1" else "negative")
                        for r, row in zip(results, rows, strict=False)])
    assert accuracy >= 0.85, accuracy
    short = [r for r, row in zip(results, rows, strict=False) if len(row["text"].split()) <= 5]
    assert all(r.stage == "transformer" for r in short)  # thin evidence never ends at the fast stage
