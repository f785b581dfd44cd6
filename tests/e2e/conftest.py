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
        self.log_path = log
        self.health_url = health_url
        self._log = log.open("wb")
        self.proc = subprocess.Popen(args, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_healthy(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"process exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                with urllib.request.urlopen(self.health_url, timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"{self.health_url} not healthy after {timeout}s:\n{self.tail()}")

    def terminate(self, timeout: float = 30.0) -> int:
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


@pytest.fixture
def spawn(tmp_path, request):
    started: list[Process] = []

    def start(*args: str, health_path: str = "/readyz", env: dict[str, str] | None = None) -> tuple[Process, str]:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        full_env = os.environ | {"EDGE_PORT": str(port), "EDGE_HOST": "127.0.0.1",
                                 "EDGE_DATA_DIR": str(tmp_path / f"data-{port}")} | (env or {})
        exe = str(Path(sys.executable).parent / args[0])
        proc = Process([exe, *args[1:]], full_env, tmp_path / f"{args[0]}-{port}.log", base + health_path)
        started.append(proc)
        proc.wait_healthy()
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
