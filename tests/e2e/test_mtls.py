"""mTLS between edges and the control plane, with certificates from `control-plane certs`."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.cluster import KEY, TOKEN, eventually
from tests.e2e.http import call

pytestmark = pytest.mark.e2e
CLI = str(Path(sys.executable).parent / "control-plane")


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run([CLI, *args], capture_output=True, text=True, timeout=60)
    if check:
        assert out.returncode == 0, out.stderr
    return out


def test_edges_need_a_certificate_for_their_own_node_id(spawn, bundle_dir, tmp_path):
    certs = tmp_path / "certs"
    cli("certs", "init", "--dir", str(certs))
    for identity in ("edge-a", "edge-b", "ops"):
        cli("certs", "issue", identity, "--dir", str(certs))
    _, cp = spawn("control-plane", "serve", env={
        "CP_PSEUDONYM_KEY": KEY, "CP_ADMIN_TOKENS": TOKEN, "CP_HEARTBEAT_INTERVAL_S": "0.5",
        "CP_TLS_CERT": str(certs / "control-plane.crt"), "CP_TLS_KEY": str(certs / "control-plane.key"),
        "CP_TLS_CLIENT_CA": str(certs / "ca.crt"),
        "E2E_CA": str(certs / "ca.crt"), "E2E_CERT": str(certs / "ops.crt"), "E2E_KEY": str(certs / "ops.key")})
    operator = ["--target", cp, "--token", TOKEN.split(":", 1)[1], "--ca", str(certs / "ca.crt"),
                "--cert", str(certs / "ops.crt"), "--key", str(certs / "ops.key"), "--json"]

    def tls(identity: str, cert_of: str) -> dict:
        return {"EDGE_CONTROL_PLANE": cp, "EDGE_NODE_ID": identity, "EDGE_PSEUDONYM_KEY": KEY,
                "EDGE_TLS_CA": str(certs / "ca.crt"), "EDGE_TLS_CERT": str(certs / f"{cert_of}.crt"),
                "EDGE_TLS_KEY": str(certs / f"{cert_of}.key"), "EDGE_SYNC_BACKOFF_MAX_S": "1"}

    _, good = spawn("edge-node", "serve", "--model-dir", str(bundle_dir), env=tls("edge-a", "edge-a"))
    _, impostor = spawn("edge-node", "serve", "--model-dir", str(bundle_dir), env=tls("edge-c", "edge-b"),
                        syncs=False)
    proc, plain = spawn("edge-node", "serve", "--model-dir", str(bundle_dir), env={
        "EDGE_CONTROL_PLANE": cp, "EDGE_NODE_ID": "edge-plain", "EDGE_SYNC_BACKOFF_MAX_S": "1"}, syncs=False)
    eventually(lambda: call(good, "GET", "/readyz")[1]["sync"] == "connected", what="edge-a over mTLS")

    nodes = json.loads(cli(*operator, "nodes").stdout)["nodes"]
    assert [n["node_id"] for n in nodes] == ["edge-a"]  # the impostor and the plain edge never got in
    assert call(impostor, "GET", "/readyz")[1]["sync"] == "disconnected"
    assert call(plain, "GET", "/readyz")[1]["sync"] == "disconnected"
    logs = "".join(p.read_text(errors="replace") for p in tmp_path.glob("edge-node-*.log"))
    assert "PERMISSION_DENIED" in logs and "client certificate is for edge-b, not 'edge-c'" in logs

    # Operators: a client certificate and a token; without the certificate the handshake fails.
    deletion = json.loads(cli(*operator, "privacy", "delete", "someone").stdout)
    assert deletion["request_id"].startswith("req-")
    out = cli("--target", cp, "--token", TOKEN.split(":", 1)[1], "--ca", str(certs / "ca.crt"), "nodes", check=False)
    assert out.returncode == 1 and "UNAVAILABLE" in out.stderr
    assert "client certificate" in out.stderr and "--cert" in out.stderr, out.stderr  # the hint names the fix
    out = cli("--target", cp, "--token", TOKEN.split(":", 1)[1], "nodes", check=False)  # plain
    assert out.returncode == 1 and "UNAVAILABLE" in out.stderr and "--ca" in out.stderr, out.stderr
