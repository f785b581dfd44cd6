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

from typing import Any

import msgspec

from edge_node.node_state import NodeState

KINDS = ("apps", "rules", "experiments", "priors", "segments", "topics", "model")


class FleetState:
    def __init__(self, state: NodeState) -> None:
        self.state = state
        self._seen: dict[str, int] = {}
        self._last = -1

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
