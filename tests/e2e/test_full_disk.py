"""A real edge whose data directory is a small tmpfs (its own mount namespace, made with
`unshare`): filling the disk refuses writes with 507 and turns readiness off, deletions and
withdrawals still succeed from the reserve, and the edge recovers by itself when space returns."""

import errno
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.credentials import DevApp
from tests.e2e.conftest import Process, free_port
from tests.e2e.http import CREDENTIALS, call


def can_mount_tmpfs(tmp_path: Path) -> bool:
    if shutil.which("unshare") is None:
        return False
    target = tmp_path / "probe"
    target.mkdir()
    done = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                           f"mount -t tmpfs -o size=1m tmpfs {target}"], capture_output=True)
    return done.returncode == 0


@pytest.fixture
def small_disk_edge(tmp_path, bundle_dir):
    if not can_mount_tmpfs(tmp_path):
        pytest.skip("this machine cannot mount a tmpfs in a user namespace (unshare --user --mount), so no "
                    "small real disk can be made for the edge")
    data = tmp_path / "disk"
    data.mkdir()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = os.environ | {"EDGE_PORT": str(port), "EDGE_HOST": "127.0.0.1", "EDGE_DATA_DIR": str(data),
                        "EDGE_DISK_RESERVE_MB": "2", "EDGE_DISK_CHECK_INTERVAL_S": "0.5",
                        "EDGE_RATE_LIMIT_PER_ADDRESS": "0"}
    exe = str(Path(sys.executable).parent / "edge-node")
    script = f'mount -t tmpfs -o size=12m tmpfs "$EDGE_DATA_DIR" && exec "$0" serve --model-dir {bundle_dir}'
    proc = Process(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, exe], env,
                   tmp_path / "edge.log", base + "/readyz")
    proc.wait_healthy()
    inside = Path(f"/proc/{proc.proc.pid}/root") / str(data).lstrip("/")  # the tmpfs, seen from outside
    CREDENTIALS[base] = DevApp(inside / "dev-app.json").server()
    yield base, inside, tmp_path / "edge.log"
    assert proc.terminate() == 0


def fill(path: Path) -> None:
    with open(path, "wb", buffering=0) as fh:  # unbuffered: nothing is left to fail again at close
        try:
            while True:
                fh.write(b"\0" * (64 << 10))
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


def grant(base, user):
    return call(base, "PUT", f"/v1/users/{user}/consent",
                {"purposes": {"personalization": True, "sentiment": True}, "policy_version": "v1"})


def test_a_full_disk_refuses_writes_but_never_an_erasure_and_recovers(small_disk_edge):
    base, disk, log = small_disk_edge
    for user in ("keep-me", "erase-me", "withdraw-me"):
        assert grant(base, user)[0] == 200
        assert call(base, "POST", f"/v1/users/{user}/events",
                    {"events": [{"type": "purchase", "item_id": "x", "category": "books"}]})[0] == 200
    fill(disk / "filler")
    refused = None
    for n in range(5000):  # SQLite reuses free pages first: write new users until a page is needed
        status, body = grant(base, f"new-{n}")
        if status != 200:
            refused = (status, body)
            break
    assert refused is not None and refused[0] == 507, refused
    assert refused[1]["error"] == "insufficient_storage" and "disk is full" in refused[1]["message"]
    status, body = call(base, "GET", "/readyz")
    assert status == 503 and "disk is full" in body["message"]
    # Reads are answered, even those that would note bookkeeping (the first decision after an event).
    status, body = call(base, "GET", "/v1/personalize?user_id=keep-me")
    assert status == 200 and body["source"] == "user", body
    assert call(base, "POST", "/v1/sentiment", {"texts": ["still scoring on a full disk"]})[0] == 200
    # Deletions and withdrawals still succeed (the reserve makes room), and really erase.
    status, body = call(base, "DELETE", "/v1/users/erase-me")
    assert status == 200, body
    assert "profile" in body["erased"]
    status, body = call(base, "PUT", "/v1/users/withdraw-me/consent",
                        {"purposes": {"personalization": False}, "policy_version": "v1"})
    assert status == 200 and body["erased"] == ["profile"], body
    assert call(base, "GET", "/v1/users/erase-me/vector")[0] == 404
    metrics = call_text(base, "/metrics")
    assert "sentiedge_storage_full 1.0" in metrics and 'sentiedge_writes_refused_total{reason="disk_full"}' in metrics
    # Space comes back: the reserve is re-created, readiness returns, writes are accepted.
    (disk / "filler").unlink()
    deadline = time.monotonic() + 60
    while call(base, "GET", "/readyz")[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert call(base, "GET", "/readyz")[0] == 200
    assert grant(base, "after")[0] == 200
    assert (disk / "reserve.bin").stat().st_size == 2 << 20
    assert call(base, "GET", "/v1/users/keep-me/vector")[0] == 200  # nothing accepted was lost
    text = log.read_text()
    assert text.count("is full: writes are refused") == 1 and "disk space is back" in text


def call_text(base, path):
    import urllib.request

    with urllib.request.urlopen(base + path, timeout=10) as r:
        return r.read().decode()
