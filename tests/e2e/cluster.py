"""Helpers for e2e tests of a control plane with edges. Everything runs as in production:
mTLS between edges and the control plane (a test CA, one certificate per node id) and
operator tokens on every admin call."""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from sentiedge_core.bundle import sha256_file
from tests.e2e.http import call

KEY = "e2e-pseudonym-key-0123456789"
TOKEN = "ops:e2e-operator-token"
CLI = str(Path(sys.executable).parent / "control-plane")


@functools.cache
def certs() -> Path:
    """A CA, the control plane's certificate and the operator's, made once per test session."""
    from control_plane import certs as ca

    directory = Path(tempfile.mkdtemp(prefix="sentiedge-e2e-certs-"))
    ca.init(directory, [])
    ca.issue(directory, "ops")
    return directory


def cert(identity: str) -> tuple[str, str]:
    from control_plane import certs as ca

    path = certs() / f"{identity}.crt"
    if not path.exists():
        ca.issue(certs(), identity)
    return str(path), str(path.with_suffix(".key"))


def cp_env(**extra: str) -> dict:
    d = certs()
    return {"CP_PSEUDONYM_KEY": KEY, "CP_ADMIN_TOKENS": TOKEN, "CP_HEARTBEAT_INTERVAL_S": "0.5",
            "CP_TLS_CERT": str(d / "control-plane.crt"), "CP_TLS_KEY": str(d / "control-plane.key"),
            "CP_TLS_CLIENT_CA": str(d / "ca.crt"),
            "E2E_CA": str(d / "ca.crt"), "E2E_CERT": str(d / "ops.crt"), "E2E_KEY": str(d / "ops.key"), **extra}


def edge_env(cp: str, node_id: str, tmp_path, **extra: str) -> dict:
    crt, key = cert(node_id)
    return {"EDGE_CONTROL_PLANE": cp, "EDGE_NODE_ID": node_id, "EDGE_REGION": "eu", "EDGE_PSEUDONYM_KEY": KEY,
            "EDGE_SYNC_AUDIT_LOG": str(tmp_path / f"upstream-{node_id}.jsonl"), "EDGE_SYNC_BACKOFF_MAX_S": "1",
            "EDGE_TLS_CA": str(certs() / "ca.crt"), "EDGE_TLS_CERT": crt, "EDGE_TLS_KEY": key, **extra}


def operator_args(cp: str) -> list[str]:
    d = certs()
    return ["--target", cp, "--token", TOKEN.split(":", 1)[1], "--ca", str(d / "ca.crt"),
            "--cert", str(d / "ops.crt"), "--key", str(d / "ops.key")]


def operator(cp: str, *args: str) -> dict:
    out = subprocess.run([CLI, *operator_args(cp), "--json", *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def eventually(check, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def profile(edge: str, user: str, text: str) -> None:
    status, answer = call(edge, "PUT", f"/v1/users/{user}/consent", {
        "purposes": {"sentiment": True, "personalization": True, "cohort_analytics": True},
        "policy_version": "v1"})
    assert status == 200, answer
    status, report = call(edge, "POST", f"/v1/users/{user}/events", {"events": [
        {"type": "review", "item_id": "i1", "category": "Books", "text": text}]})
    assert status == 200 and report["accepted"] == 1, report


def has_vector(edge: str, user: str) -> bool:
    return call(edge, "GET", f"/v1/users/{user}/vector")[0] == 200


def variant(bundle_dir, tmp_path, version: str, padding: int = 0):
    """The shipped bundle under another version (optionally with a padding file listed in it)."""
    out = tmp_path / f"bundle-{version}"
    shutil.copytree(bundle_dir, out)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["version"] = version
    if padding:
        (out / "padding.bin").write_bytes(b"\0" * padding)
        manifest["files"]["padding.bin"] = sha256_file(out / "padding.bin")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return out


def serving(edge: str) -> str:
    return call(edge, "GET", "/readyz")[1]["version"]


def metric(edge: str, name: str) -> float:
    with urllib.request.urlopen(edge + "/metrics") as r:
        text = r.read().decode()
    found = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", text, re.M)
    return float(found.group(1)) if found else 0.0
