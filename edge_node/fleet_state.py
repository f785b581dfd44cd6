"""What the control plane streams, shared by the workers of one node (``--workers N``).

Only the leading worker holds the Sync stream. Whatever it applies that lives in memory —
rules, experiments, cohort priors and merged windows, learned segments, topic sets, the app
set, the model it swapped to — it also publishes here: one store value per kind with a sequence
number. Every other worker polls (:meth:`FleetState.changed`, a few store reads) and applies
what changed, so all workers answer alike within a poll interval — and before that: the
leader also sets a number in shared memory, which a following worker checks before every
request and, when it moved, applies the publications first. With one worker nothing is
published and nothing polled.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import msgspec

from edge_node.node_state import NodeState
from edge_node.role import SOLE, Role

KINDS = ("apps", "rules", "experiments", "priors", "segments", "topics", "neighbours", "model")
log = logging.getLogger("edge_node")


class FleetState:
    def __init__(self, state: NodeState, role: Role = SOLE, shared=None) -> None:
        self.state = state
        self.role = role
        # Shared memory of the node's workers (the supervisor's): [0] the number of the leader's
        # last publication.
        self._shared = shared
        self._seen: dict[str, int] = {}
        self._last = -1
        self._noticed = -1

    def share(self, kind: str, payload: Any) -> None:
        """The leading worker shares what it applied with the others (no-op with one worker)."""
        if self.role.shared and self.role.leader:
            seq = self.publish(kind, payload)
            if self._shared is not None:  # after the commit: a follower that sees it reads the store
                self._shared[0] = seq

    def news(self) -> bool:
        """Whether the leader published since the last call said so (one integer read of shared memory)."""
        if self._shared is None or self._shared[0] == self._noticed:
            return False
        self._noticed = self._shared[0]
        return True

    async def workers_serve(self, sha: str, timeout_s: float = 120.0) -> None:
        """The leader, after a swap: wait until every other worker serves ``sha`` too (each says
        so in the store), so an ACK means the whole node serves it; past ``timeout_s`` the
        stragglers are logged (they keep trying) and the leader goes on."""
        if not (self.role.shared and self.role.leader):
            return
        deadline = time.monotonic() + timeout_s
        while lagging := [i for i in range(1, self.role.count) if self.state.worker_serving(i) != sha]:
            if time.monotonic() > deadline:
                log.error("workers %s do not serve %s yet after %.0f s; they keep trying", lagging, sha[:12],
                          timeout_s)
                return
            await asyncio.sleep(0.1)

    def publish(self, kind: str, payload: Any) -> int:
        """Share what the leader applied (the leader is the only writer: no race on the number);
        returns the publication's number."""
        return self.state.publish(kind, msgspec.to_builtins(payload))

    def forget(self, kind: str) -> None:
        """Return ``kind`` again from the next :meth:`changed` (applying it failed here)."""
        self._seen.pop(kind, None)
        self._last = -1

    def changed(self) -> list[tuple[str, Any]]:
        """(kind, data) of everything published since the last call, in ``KINDS`` order."""
        seq = self.state.fleet_seq
        if seq == self._last:
            return []
        out = []
        for kind in KINDS:
            entry = self.state.publication(kind)
            if entry is not None and entry["seq"] != self._seen.get(kind):
                self._seen[kind] = entry["seq"]
                out.append((kind, entry["data"]))
        self._last = seq
        return out
