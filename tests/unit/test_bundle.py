import hashlib
import json
import shutil

import numpy as np
import pytest

from edge_node.errors import BundleError
from sentiedge_core.bundle import verify
from sentiedge_core.inference import SentimentModel
from tests.bundles import head_inside_graph


@pytest.fixture
def copy(bundle_dir, tmp_path):
    target = tmp_path / "bundle"
    shutil.copytree(bundle_dir, target)
    return target


def rewrite_manifest(root, change):
    manifest = json.loads((root / "manifest.json").read_text())
    change(manifest)
    (root / "manifest.json").write_text(json.dumps(manifest))


def test_release_bundle_verifies(copy):
    manifest = verify(copy)
    stage = manifest.stage("transformer")
    exit_files = {name for e in stage.exits for name in (e.head, e.rest, e.neutral)}
    assert exit_files  # early exits since 1.5.0: a head and the rest of the encoder for each; 1.7.0: a neutral head
    assert all(e.neutral for e in stage.exits)
    assert set(manifest.files) == {"fast.onnx", "fast-tokenizer.json", "transformer.onnx", "transformer-tokenizer.json",
                                   "transformer-head.json", "transformer-neutral.json", "deep-stage.json"} | exit_files
    assert manifest.labels == ["negative", "positive"]  # the binary head's rows
    assert manifest.label_set == ["negative", "neutral", "positive"] and stage.neutral == "transformer-neutral.json"
    assert manifest.stage("transformer").head == "transformer-head.json"


@pytest.mark.parametrize("head, message", [
    ({"weights": [[0.0] * 384], "bias": [0.0, 0.0]}, "2 rows"),
    ({"weights": [[0.0] * 384, [0.0] * 383], "bias": [0.0, 0.0]}, "equal"),
    ({"weights": [[0.0] * 16, [0.0] * 16], "bias": [0.0, 0.0]}, "no 'pooled' output of width 16"),
    ({"weights": [[float("nan")] * 384, [0.0] * 384], "bias": [0.0, 0.0]}, "not valid JSON|non-finite|readable"),
    ({"weights": "nope", "bias": []}, "not a readable classification head"),
])
def test_a_malformed_head_is_refused_naming_it(copy, head, message):
    raw = json.dumps(head, allow_nan=True).encode()
    (copy / "transformer-head.json").write_bytes(raw)
    rewrite_manifest(copy, lambda m: m["files"].update({"transformer-head.json": hashlib.sha256(raw).hexdigest()}))
    with pytest.raises(BundleError, match=message):
        SentimentModel(copy)


def test_the_head_applied_outside_the_graph_equals_its_margins(copy):
    model = SentimentModel(copy)
    texts = ["Great value for money.", "It broke after a day and support never answered."]
    pooled = model.transformer_stage.pooled(texts)
    assert pooled.shape == (2, model.transformer_stage.head.dimension)
    assert np.allclose(model.transformer_stage.margins_of(pooled), model.transformer_stage.margins(texts), atol=1e-4)


def test_a_changed_byte_is_refused_naming_the_file(copy):
    data = bytearray((copy / "fast.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "fast.onnx").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="fast.onnx has sha256"):
        SentimentModel(copy)


def test_a_missing_file_is_refused(copy):
    (copy / "transformer-tokenizer.json").unlink()
    with pytest.raises(BundleError, match="transformer-tokenizer.json is missing"):
        verify(copy)


@pytest.mark.parametrize("name", ["../outside.onnx", "/etc/passwd", "a/../../b", "..\\win.onnx"])
def test_path_traversal_in_a_file_name_is_refused(copy, name):
    rewrite_manifest(copy, lambda m: m["files"].update({name: "0" * 64}))
    with pytest.raises(BundleError, match="plain relative path|outside the bundle"):
        verify(copy)


@pytest.mark.parametrize("name", ["fast-tokenizer.json", "deep-stage.json"])
def test_a_stage_file_without_a_digest_is_refused(copy, name):
    rewrite_manifest(copy, lambda m: m["files"].pop(name))
    with pytest.raises(BundleError, match="does not list with a digest"):
        verify(copy)


def test_malformed_or_future_manifests_are_refused(copy):
    (copy / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        verify(copy)
    (copy / "manifest.json").write_text(json.dumps({"schema_version": 99}))
    with pytest.raises(BundleError, match="invalid manifest|schema 99"):
        verify(copy)


def test_a_directory_without_manifest_is_not_a_bundle(tmp_path):
    with pytest.raises(BundleError, match="manifest.json not found"):
        verify(tmp_path)


def test_golden_examples_that_no_longer_hold_are_refused(copy):
    def flip(m):
        m["golden"][0]["label"] = "negative" if m["golden"][0]["label"] == "positive" else "positive"

    rewrite_manifest(copy, flip)
    with pytest.raises(BundleError, match="fails 1 golden example"):
        SentimentModel(copy)


def test_a_bundle_with_its_head_inside_the_graph_still_serves_the_same(copy, tmp_path):
    """Bundles before 1.3 end their transformer graph in logits: rebuilt here from the shipped
    one (its head folded back into the graph), they load and give the same margins."""
    old = head_inside_graph(copy, tmp_path / "old")
    before, now = SentimentModel(old), SentimentModel(copy)  # golden examples pass on both
    assert before.transformer_stage.head is None
    texts = ["Great value for money.", "It broke after a day and support never answered."]
    assert np.allclose(before.transformer_stage.margins(texts), now.transformer_stage.margins(texts), atol=1e-4)
    with pytest.raises(BundleError, match="no separate head"):
        before.transformer_stage.pooled(texts)
