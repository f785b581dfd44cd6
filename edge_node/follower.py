"""Every worker of several (``--workers N``): shares its counts and trigger transitions, stops
when the supervisor is gone; a following worker also applies what the leader published
(edge_node.fleet_state), before each request and on every poll."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from pathlib import Path

from edge_node.fleet import Fleet, ModelFiles
from edge_node.fleet_state import FleetState
from edge_node.node_state import NodeState
from edge_node.peer_counts import FOLLOW_S, PeerCounts
from edge_node.role import Role
from edge_node.serving import Serving

log = logging.getLogger("edge_node")


class Follower:
    def __init__(self, role: Role, *, publications: FleetState, fleet: Fleet, serving: Serving,
                 updates: ModelFiles, peers: PeerCounts, state: NodeState) -> None:
        self.role = role
        self.publications = publications
        self.fleet = fleet
        self.serving = serving
        self.updates = updates
        self.peers = peers
        self.state = state
        self._parent = os.getppid()
        self._model_target: str | None = None
        self._model_task: asyncio.Task | None = None

    def catch_up(self, force: bool = False) -> None:
        """A following worker: apply whatever the leader published since the last call. Called
        before every request (a shared-memory number says whether anything was published: one
        integer read) and by the poll loop (``force``: the store itself is read)."""
        if not self.publications.news() and not force:
            return
        for kind, data in self.publications.changed():
            if kind == "model":
                if data["sha"] not in (self.serving.sha, self._model_target):
                    self._model_target = data["sha"]
                    self._model_task = asyncio.get_running_loop().create_task(self._follow_model(data))
            else:
                self.fleet.follow(kind, data)

    async def _follow_model(self, data) -> None:
        try:
            model = await self.updates.load(Path(data["path"]))
            await self.serving.swap(model, data["sha"])
            self.state.set_worker_serving(self.role.index, data["sha"])
        except Exception:
            log.exception("worker %d could not load the model the leader swapped to (%s)", self.role.index,
                          data["path"])
            self._model_target = None
            self.publications.forget("model")  # the next poll reads it again and tries again

    def announce(self) -> None:
        """Say which model this worker serves (the leader waits for every worker after a swap)."""
        self.state.set_worker_serving(self.role.index, self.serving.sha)

    async def run(self) -> None:
        """Every FOLLOW_S: follow the leader (a following worker), share this worker's counts."""
        while True:
            await asyncio.sleep(FOLLOW_S)
            try:
                if os.getppid() != self._parent:
                    log.error("the supervisor is gone: worker %d stops", self.role.index)
                    os.kill(os.getpid(), signal.SIGTERM)
                    return
                if not self.role.leader:
                    self.catch_up(force=True)
                now = time.time()
                self.peers.share_drift(self.serving.sha, *self.serving.drift.recent(now), now)
                self.fleet.pending_triggers()
                self.peers.share_exposure(time.time())
            except Exception:  # keep following; the next poll retries
                log.exception("worker %d could not follow the leader", self.role.index)

    async def close(self) -> None:
        if self._model_task is not None:
            self._model_task.cancel()
            try:
                await self._model_task
            except asyncio.CancelledError:
                pass
