"""Slow and greedy clients against a real `edge-node serve` with systemd's old default of few
file descriptors: trickled headers and bodies are cut off with 408, connections past the cap get
503 at once, the admin listener keeps answering throughout, and the log stays small."""

import socket
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.conftest import Process, free_port
from tests.e2e.http import call

NOFILE = 256  # soft and hard: the public listener's cap shrinks to fit it
LIMITED = (f"import os, resource, sys; resource.setrlimit(resource.RLIMIT_NOFILE, ({NOFILE}, {NOFILE})); "
           "os.execv(sys.argv[1], sys.argv[1:])")


@pytest.fixture
def edge(tmp_path, bundle_dir):
    import os

    port, admin = free_port(), free_port()
    env = os.environ | {"EDGE_PORT": str(port), "EDGE_HOST": "127.0.0.1", "EDGE_ADMIN_PORT": str(admin),
                        "EDGE_DATA_DIR": str(tmp_path / "data"), "EDGE_HEADER_TIMEOUT_S": "2",
                        "EDGE_BODY_TIMEOUT_S": "3", "EDGE_RATE_LIMIT_PER_ADDRESS": "0"}
    exe = str(Path(sys.executable).parent / "edge-node")
    proc = Process([sys.executable, "-c", LIMITED, exe, "serve", "--model-dir", str(bundle_dir)], env,
                   tmp_path / "edge.log", f"http://127.0.0.1:{admin}/readyz")
    proc.wait_healthy()
    from tests.credentials import DevApp
    from tests.e2e.http import CREDENTIALS

    CREDENTIALS[f"http://127.0.0.1:{port}"] = DevApp(tmp_path / "data" / "dev-app.json").server()
    yield proc, port, admin, tmp_path / "edge.log"
    assert proc.terminate() == 0


def slow_connection(port: int) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", port), timeout=30)
    conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # and never the rest
    return conn


def answer(conn: socket.socket) -> bytes:
    try:
        return conn.recv(4096)
    except (ConnectionResetError, TimeoutError):
        return b""


def metric(admin: int, name: str) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=10).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def test_a_slowloris_flood_is_cut_off_and_the_admin_port_keeps_answering(edge):
    proc, port, admin, log = edge
    flood = []
    for _ in range(300):  # more than the descriptors the process has
        try:
            flood.append(slow_connection(port))
        except OSError:
            break
    # While the flood holds every public slot, health checks on the admin listener still answer.
    for _ in range(3):
        with urllib.request.urlopen(f"http://127.0.0.1:{admin}/healthz", timeout=10) as r:
            assert r.status == 200
    answers = [answer(conn) for conn in flood]  # each is cut off: 408 after the header deadline, or 503 at once
    for conn in flood:
        conn.close()
    assert all(a.startswith((b"HTTP/1.1 408", b"HTTP/1.1 503")) or a == b"" for a in answers)
    assert sum(a.startswith(b"HTTP/1.1 408") for a in answers) >= 16
    assert sum(a.startswith(b"HTTP/1.1 503") for a in answers) >= 1
    assert b"EDGE_HEADER_TIMEOUT_S" in next(a for a in answers if a.startswith(b"HTTP/1.1 408"))
    # Afterwards the public port serves again, and the flood was counted and logged in a few lines.
    deadline = time.monotonic() + 30
    while call(f"http://127.0.0.1:{port}", "GET", "/v1/personalize")[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert call(f"http://127.0.0.1:{port}", "GET", "/v1/personalize")[0] == 200
    assert metric(admin, 'sentiedge_slow_clients_total{what="headers"}') >= 16
    assert metric(admin, 'sentiedge_slow_clients_total{what="connections"}') >= 1
    text = log.read_text()
    assert text.count("took longer than") < 10 and "Traceback" not in text
    assert proc.proc.poll() is None


def test_a_trickled_body_is_cut_off_with_408(edge):
    _, port, admin, _ = edge
    from tests.e2e.http import CREDENTIALS

    key = CREDENTIALS[f"http://127.0.0.1:{port}"]["x-client-key"].encode()
    conn = socket.create_connection(("127.0.0.1", port), timeout=30)
    conn.sendall(b"POST /v1/sentiment HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
                 b"x-client-key: " + key + b"\r\ncontent-length: 1000\r\n\r\n{")
    closed, got = False, b""
    for _ in range(60):  # one byte every half second: 30 s if nobody stopped it
        try:
            conn.sendall(b" ")
            time.sleep(0.5)
        except (BrokenPipeError, ConnectionResetError):
            closed = True
            break
        conn.setblocking(False)
        try:
            got += conn.recv(4096)
        except BlockingIOError:
            pass
        finally:
            conn.setblocking(True)
        if got:
            break
    conn.close()
    assert closed or got.startswith(b"HTTP/1.1 408"), got
    assert metric(admin, 'sentiedge_slow_clients_total{what="body"}') >= 1
