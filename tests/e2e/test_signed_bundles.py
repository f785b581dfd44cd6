"""Edges that trust only signed bundles refuse, and NACK, anything else — even bundles the
control plane accepted (a compromised control plane cannot push a model to them)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.cluster import cp_env, edge_env, eventually, operator, serving, variant
from tests.e2e.http import call

pytestmark = pytest.mark.e2e
CLI = str(Path(sys.executable).parent / "control-plane")


def sign(bundle: Path, key: Path) -> None:
    out = subprocess.run([CLI, "models", "sign", str(bundle), "--key", str(key)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_only_bundles_signed_by_a_trusted_key_are_served(spawn, bundle_dir, tmp_path):
    for name in ("release", "rogue"):
        out = subprocess.run([CLI, "models", "keygen", str(tmp_path / name)], capture_output=True, text=True)
        assert out.returncode == 0 and "EDGE_TRUSTED_KEYS=" in out.stdout
    first = variant(bundle_dir, tmp_path, "1.0.0-signed")
    sign(first, tmp_path / "release")
    _, cp = spawn("control-plane", "serve", env=cp_env())
    _, edge = spawn("edge-node", "serve", "--model-dir", str(first), env=edge_env(
        cp, "strict", tmp_path, EDGE_TRUSTED_KEYS=str(tmp_path / "release.pub")))

    def parked_with(version: str, reason: str) -> None:
        operator(cp, "models", "push", str(bundle))
        operator(cp, "models", "rollout", "sentiedge-sentiment", version)
        state = eventually(lambda: (s := operator(cp, "models", "status", "sentiedge-sentiment")["node_states"][0])
                           ["state"] == "parked" and s, what=f"{version} parked")
        assert reason in state["error"], state
        assert serving(edge) == "1.0.0-signed"

    bundle = variant(bundle_dir, tmp_path, "2.0.0-unsigned")
    parked_with("2.0.0-unsigned", "not signed")
    bundle = variant(bundle_dir, tmp_path, "3.0.0-rogue")
    sign(bundle, tmp_path / "rogue")
    parked_with("3.0.0-rogue", "does not trust")
    bundle = variant(bundle_dir, tmp_path, "4.0.0-altered")
    sign(bundle, tmp_path / "release")
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["license"] = "altered after signing"
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    parked_with("4.0.0-altered", "does not verify")
    assert call(edge, "POST", "/v1/sentiment", {"texts": ["still fine"]})[0] == 200

    good = variant(bundle_dir, tmp_path, "5.0.0-signed")
    sign(good, tmp_path / "release")
    operator(cp, "models", "push", str(good))
    operator(cp, "models", "rollout", "sentiedge-sentiment", "5.0.0-signed")
    eventually(lambda: serving(edge) == "5.0.0-signed", what="the signed bundle served")


def test_an_edge_refuses_to_start_on_an_unsigned_bundle(spawn, bundle_dir, tmp_path):
    subprocess.run([CLI, "models", "keygen", str(tmp_path / "release")], check=True, capture_output=True)
    with pytest.raises(RuntimeError, match="not signed"):
        spawn("edge-node", "serve", "--model-dir", str(bundle_dir),
              env={"EDGE_TRUSTED_KEYS": str(tmp_path / "release.pub")})
