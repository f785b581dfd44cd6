"""Real processes on loopback: spawn, wait for health, kill in teardown, show the log on failure."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    def __init__(self, args: list[str], env: dict[str, str], log: Path, health_url: str) -> None:
        self.args = args
        self.env = env
        self.log_path = log
        self.health_url = health_url
        self._log = log.open("ab")
        self.proc = subprocess.Popen(args, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def healthy(self) -> bool:
        if self.health_url.startswith(("grpc://", "grpcs://")):
            import grpc
            from grpc_health.v1 import health_pb2, health_pb2_grpc

            target = self.health_url.split("://", 1)[1]
            if self.health_url.startswith("grpcs://"):  # mTLS: the test's client certificate
                ca, cert, key = (Path(self.env[k]).read_bytes() for k in ("E2E_CA", "E2E_CERT", "E2E_KEY"))
                channel_cm = grpc.secure_channel(target, grpc.ssl_channel_credentials(ca, key, cert))
            else:
                channel_cm = grpc.insecure_channel(target)
            with channel_cm as channel:
                try:
                    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
                except grpc.RpcError:
                    return False
                return reply.status == health_pb2.HealthCheckResponse.SERVING
        try:
            with urllib.request.urlopen(self.health_url, timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def restart(self) -> None:
        """Start the same command again (same port, same data) after a stop or a kill."""
        if self.proc.poll() is None:
            raise RuntimeError("still running")
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(self.args, env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        self.wait_healthy()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self._log.close()

    def wait_healthy(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"process exited with {self.proc.returncode}:\n{self.tail()}")
            if self.healthy():
                return
            time.sleep(0.2)
        raise TimeoutError(f"{self.health_url} not healthy after {timeout}s:\n{self.tail()}")

    def terminate(self, timeout: float = 30.0) -> int:
        if self._log.closed:
            return self.proc.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def tail(self, lines: int = 40) -> str:
        if not self._log.closed:
            self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def _edge_credentials(base: str, env: dict, data_dir: Path, cp_apps: dict, wait: bool = True) -> None:
    """Register the headers the tests' calls to this edge carry, and (``wait``) wait until it
    accepts them: an edge that will never sync (no credential) is not waited for."""
    from tests.credentials import DevApp
    from tests.e2e.http import CREDENTIALS, call

    if "EDGE_APPS_FILE" in env:
        app = DevApp(Path(env["EDGE_APPS_FILE"]))
    elif "EDGE_CONTROL_PLANE" in env:
        app = cp_apps.get(env["EDGE_CONTROL_PLANE"]) or next(iter(cp_apps.values()), None)
        if app is None:
            return  # a control plane this fixture did not start
    else:
        app = DevApp(data_dir / "dev-app.json")
    CREDENTIALS[base] = app.server()
    if not wait:
        return
    deadline = time.monotonic() + 60
    while call(base, "GET", "/v1/personalize")[0] == 401 and time.monotonic() < deadline:
        time.sleep(0.2)  # the app set arrives with the first Sync


@pytest.fixture
def spawn(tmp_path, request):
    from tests.credentials import DevApp

    started: list[Process] = []
    cp_apps: dict[str, DevApp] = {}

    def start(*args: str, health_path: str = "/readyz", env: dict[str, str] | None = None,
              syncs: bool = True, health_url: str = "") -> tuple[Process, str]:
        """``syncs=False``: an edge the control plane will refuse; its app set is not waited for."""
        port = free_port()
        if args[0] == "control-plane":
            base = f"127.0.0.1:{port}"
            full_env = os.environ | {"CP_PORT": str(port), "CP_HOST": "127.0.0.1",
                                     "CP_DATA_DIR": str(tmp_path / f"cp-{port}")} | (env or {})
            health = f"grpcs://{base}" if "CP_TLS_CERT" in (env or {}) else f"grpc://{base}"
        else:
            base = f"http://127.0.0.1:{port}"
            # One worker process unless the test (or EDGE_WORKERS in the environment) asks for more:
            # `EDGE_WORKERS=2 pytest tests/e2e` runs the whole suite against multi-process nodes.
            full_env = {"EDGE_WORKERS": "1"} | os.environ | {
                "EDGE_PORT": str(port), "EDGE_HOST": "127.0.0.1", "EDGE_DATA_DIR": str(tmp_path / f"data-{port}")
            } | (env or {})
            health = health_url or base + health_path
        exe = str(Path(sys.executable).parent / args[0])
        proc = Process([exe, *args[1:]], full_env, tmp_path / f"{args[0]}-{port}.log", health)
        started.append(proc)
        proc.wait_healthy()
        if args[0] == "control-plane":
            dev = Path(full_env["CP_DATA_DIR"]) / "dev-app.json"
            if dev.exists():  # a loopback control plane registers a development app
                cp_apps[base] = DevApp(dev)
        elif args[:2] == ("edge-node", "serve") or args[0] == "edge-node":
            _edge_credentials(base, full_env, Path(full_env["EDGE_DATA_DIR"]), cp_apps, wait=syncs)
        return proc, base

    yield start
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for proc in started:
        proc.terminate()
        if failed:
            print(f"--- log tail of {proc.log_path.name} ---\n{proc.tail()}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(scope="module")
def served_edge(tmp_path_factory, bundle_dir):
    """One served edge for property-based tests (hypothesis runs many examples per test)."""
    from tests.credentials import DevApp
    from tests.e2e.http import call

    tmp = tmp_path_factory.mktemp("served")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = os.environ | {"EDGE_PORT": str(port), "EDGE_HOST": "127.0.0.1", "EDGE_DATA_DIR": str(tmp / "data"),
                        "EDGE_RATE_LIMIT_PER_ADDRESS": "0"}
    proc = Process([str(Path(sys.executable).parent / "edge-node"), "serve", "--model-dir", str(bundle_dir)], env,
                   tmp / "edge.log", base + "/readyz")
    try:
        proc.wait_healthy()
        spec = call(base, "GET", "/schema/openapi.json", headers={})[1]
        seen = sorted((m.upper(), p) for p, ops in spec["paths"].items() for m in ops if p.startswith("/v1/"))
        yield base, DevApp(tmp / "data" / "dev-app.json"), seen
    finally:
        proc.terminate()
