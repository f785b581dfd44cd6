"""``edge-node serve --workers N``: several processes serve one node (one node id, one data dir).

The supervisor (the process ``edge-node serve`` starts as) binds the public and admin sockets,
holds the data directory's lock, and spawns N workers — spawned, not forked: ONNX Runtime's
and gRPC's threads do not survive a fork. Each worker serves both sockets (the kernel spreads
connections over the processes accepting on them) with its own event loop, model and store
connection; the store (SQLite in WAL mode) is shared, every multi-record change is one SQLite
transaction, and no decoded record is cached in memory between requests.

Worker 0 leads: it alone runs the sync agent (one Sync stream per node), purges expired
records, and persists what the control plane streams (rules, experiments, priors, segments,
the app set, the model it swapped to); the other workers follow it from the store
(:mod:`edge_node.fleet_state`). A worker that dies is started again; one that keeps dying at
start-up stops the node. SIGTERM (or SIGINT) drains every worker and exits 0; workers exit
when the supervisor disappears.
"""

from __future__ import annotations

import errno
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from pathlib import Path

from edge_node.role import Role

# A worker's life once its process is set up: serve(flags, role, sockets, shared) runs the same
# app and servers as a single-process node on the supervisor's sockets (edge_node.cli.serve_worker).
ServeWorker = Callable[[dict, Role, list[socket.socket], object], None]

log = logging.getLogger("edge_node.workers")
RESTART_WINDOW_S = 30.0  # a worker that dies this soon after starting counts as failing at start-up
MAX_EARLY_DEATHS = 3


def worker_count(wanted: int) -> int:
    """``EDGE_WORKERS``: 0 means one per CPU core this process may run on."""
    if wanted > 0:
        return wanted
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def bind(host: str, port: int, backlog: int, wait_s: float = 10.0) -> socket.socket:
    """Listen on the port; while it is taken, retry for ``wait_s`` (the workers of a node killed
    just before close their listeners within a moment of noticing)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    deadline = time.monotonic() + wait_s
    while True:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            break
        except OSError as exc:
            sock.close()
            if exc.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def _die_with_parent() -> None:
    """Linux: SIGTERM this worker as soon as the supervisor dies (even by SIGKILL); the
    worker's own check of its parent covers other systems within a poll interval."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _worker(serve: ServeWorker, flags: dict, role: Role, sockets: list[socket.socket], shared) -> None:
    """A worker's process: tied to the supervisor, then ``serve``."""
    _die_with_parent()
    # Its own process group: a terminal's Ctrl-C reaches the supervisor only, which then stops
    # every worker once (a second signal would make uvicorn skip the graceful drain).
    os.setpgrp()
    serve(flags, role, sockets, shared)


class Supervisor:
    def __init__(self, settings, flags: dict, count: int, backlog: int, serve: ServeWorker) -> None:
        """``serve`` runs in each spawned worker, so it is a module-level function (pickled by name)."""
        self.settings = settings
        self.serve = serve
        self.flags = flags
        self.count = count
        self.backlog = backlog
        self.stopping = False
        self.context = multiprocessing.get_context("spawn")
        self.processes: list[BaseProcess | None] = [None] * count
        self.started: list[float] = [0.0] * count
        self.early_deaths = 0
        # Shared memory of the node's workers: [0] the leader's last publication number
        # (edge_node.fleet_state), [1] 1 while the data disk is full (readiness is the node's).
        self.shared = self.context.Array("q", 2, lock=False)

    def _start(self, index: int, sockets: list[socket.socket]) -> None:
        process = self.context.Process(target=_worker, args=(self.serve, self.flags, Role(index, self.count),
                                                             sockets, self.shared),
                                       name=f"edge-worker-{index}", daemon=False)
        process.start()
        self.processes[index] = process
        self.started[index] = time.monotonic()
        log.info("worker %d started (pid %d)%s", index, process.pid, " — leads: runs the sync agent" if index == 0
                 else "")

    def _stop(self, *_) -> None:
        self.stopping = True

    def run(self) -> int:
        from edge_node.store import lock_directory

        settings = self.settings
        lock = lock_directory(settings.data_path)  # one node per data directory; the workers share it
        # prometheus_client's multiprocess files: in memory (/dev/shm) where there is one, never in
        # the data dir (a full data disk must not take the metrics, and the workers, with it).
        shm = Path("/dev/shm")
        metrics_dir = Path(tempfile.mkdtemp(prefix="sentiedge-metrics-", dir=shm if shm.is_dir() else None))
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)  # the spawned workers inherit it
        sockets = [bind(settings.host, settings.port, self.backlog)]
        if settings.admin_port:
            sockets.append(bind(settings.admin_host, settings.admin_port, self.backlog))
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        log.info("serving one node with %d workers on %s:%d", self.count, settings.host, settings.port)
        code = 0
        try:
            for index in range(self.count):
                self._start(index, sockets)
            while not self.stopping:
                time.sleep(0.2)
                code = self._reap(sockets)
                if code:
                    break
        finally:
            self._drain()
            for s in sockets:
                s.close()
            shutil.rmtree(metrics_dir, ignore_errors=True)
            os.close(lock)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return code

    def _reap(self, sockets: list[socket.socket]) -> int:
        """Start again any worker that died; 1 when workers keep dying at start-up."""
        for index, process in enumerate(self.processes):
            if process is None or process.is_alive() or self.stopping:
                continue
            early = time.monotonic() - self.started[index] < RESTART_WINDOW_S
            self.early_deaths = self.early_deaths + 1 if early else 0
            log.error("worker %d (pid %d) exited with %s%s", index, process.pid, process.exitcode,
                      "; starting it again" if self.early_deaths < MAX_EARLY_DEATHS else "")
            if self.early_deaths >= MAX_EARLY_DEATHS:
                log.error("workers keep failing at start-up (see above): stopping the node")
                return 1
            self._start(index, sockets)
        return 0

    def _drain(self, timeout_s: float = 30.0) -> None:
        """SIGTERM every worker (each drains its connections and closes its store), then wait."""
        for process in self.processes:
            if process is not None and process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for process in self.processes:
            if process is None:
                continue
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.error("worker pid %d did not stop in %.0f s: killed", process.pid, timeout_s)
                process.kill()
                process.join(5)
        log.info("all workers stopped")


def metrics_dir() -> Path | None:
    value = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return Path(value) if value else None
