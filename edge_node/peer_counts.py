"""The counts each worker of one node shares with the others (``--workers N``): recent
predictions (drift) and what rankings showed (exposure), so whichever worker answers a scrape
or a heartbeat reports the node's sums. With one worker only its own counts exist."""

from __future__ import annotations

import msgspec

from edge_node.node_state import NodeState
from edge_node.personalization.exposure import Counts, ExposureBook, Figures, combined, figures
from edge_node.role import Role

FOLLOW_S = 0.5  # how often a worker of several shares its counts and follows the leader


class PeerCounts:
    def __init__(self, state: NodeState, role: Role, exposure: ExposureBook) -> None:
        self.state = state
        self.role = role
        self.exposure = exposure
        self._exposure_shared = 0.0  # when this worker last shared its exposure counts

    def _others(self) -> list[int]:
        return [i for i in range(self.role.count) if i != self.role.index]

    def share_drift(self, sha: str, labels: list[int], bins: list[int], now: float) -> None:
        """This worker's recent prediction counts of model ``sha``."""
        self.state.share_drift(self.role.index, {"sha": sha, "at": now, "labels": labels, "bins": bins})

    def drift(self, sha: str, labels: list[int], bins: list[int], now: float) -> tuple[list[int], list[int]]:
        """This worker's counts (``labels``, ``bins``) plus every other worker's last shared counts
        for the same model."""
        for index in self._others():
            peer = self.state.worker_drift(index)
            if peer and peer["sha"] == sha and now - peer["at"] < 4 * FOLLOW_S + 5:
                labels = [a + b for a, b in zip(labels, peer["labels"], strict=False)]
                bins = [a + b for a, b in zip(bins, peer["bins"], strict=False)]
        return labels, bins

    def share_exposure(self, now: float) -> None:
        """This worker's exposure counts, for whichever worker answers a scrape (every few seconds, when changed)."""
        if not self.exposure.changed or now - self._exposure_shared < 5 * FOLLOW_S:
            return
        self.exposure.changed = False
        self._exposure_shared = now
        self.state.share_exposure(self.role.index, {"at": now, "windows": msgspec.to_builtins(
            self.exposure.recent(now), str_keys=True)})

    def exposure_figures(self, now: float) -> dict[str, Figures]:
        """Per tenant, over the recent windows: this worker's counts and every other worker's last shared ones."""
        parts = [self.exposure.recent(now)]
        for index in self._others():
            peer = self.state.worker_exposure(index)
            if peer and now - peer["at"] < 60:
                parts.append(msgspec.convert(peer["windows"], dict[int, dict[str, Counts]], strict=False))
        return {tenant: figures(counts) for tenant, counts in combined(parts).items()}
