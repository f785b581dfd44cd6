"""The state of this edge's link to the control plane, as the rest of the node reads it:
connected or not, when it last caught up with the privacy log (fail closed past
EDGE_FAIL_CLOSED_AFTER_S), the privacy requests filed here and not yet receipted."""

from __future__ import annotations

import logging
import time
from typing import Protocol

from edge_node.config import EdgeSettings
from edge_node.metrics import EdgeMetrics
from edge_node.node_state import NodeState
from edge_node.role import Role
from edge_node.store import EdgeStore

log = logging.getLogger("edge_node.sync")


class Agent(Protocol):
    """What the link reads of the leading worker's Sync stream (edge_node.sync.agent)."""

    @property
    def connected(self) -> bool: ...

    @property
    def last_success(self) -> float: ...


class SyncLink:
    def __init__(self, settings: EdgeSettings, *, state: NodeState, store: EdgeStore, metrics: EdgeMetrics,
                 role: Role) -> None:
        self.settings = settings
        self.state = state
        self.store = store
        self.metrics = metrics
        self.role = role
        self.agent: Agent | None = None  # the leading worker's stream, once built (edge_node.wiring)
        self._backlog_stalled = False

    def sync_state(self) -> str:
        """The Sync stream as /readyz reports it (a following worker reports the leader's)."""
        if not self.settings.control_plane:
            return "standalone"
        connected = self.agent.connected if self.agent is not None else self.state.sync_connected
        return "connected" if connected else "disconnected"

    def last_sync(self) -> float:
        """When the node last caught up with the privacy log: the leader's stream knows; a
        following worker reads it from the store on every call, so the moment the leader catches
        up (or falls behind) every worker answers alike."""
        if self.agent is not None:
            return self.agent.last_success
        return self.state.sync_last_success or 0.0

    def personal_allowed(self) -> bool:
        """False while failing closed: too long without a sync with the privacy log."""
        if not self.settings.control_plane:
            return True
        allowed = time.time() - self.last_sync() <= self.settings.fail_closed_after_s
        self.metrics.serving_personal.set(int(allowed))
        return allowed

    def connected(self, connected: bool) -> None:
        """The stream came up or went down."""
        self.metrics.sync_connected.set(int(connected))
        if self.role.shared:  # the other workers report it in /readyz
            self.state.sync_connected = connected

    def welcomed(self, window_error: str) -> None:
        """The control plane's verdict on this edge's window settings at the stream's start ("":
        none): logged once when it appears or changes, shown by /readyz and a gauge until it goes."""
        if window_error and window_error != self.state.sync_warning:
            log.error("the control plane refuses what this edge aggregates: %s", window_error)
        elif not window_error and self.state.sync_warning:
            log.info("the control plane accepts this edge's windows again")
        self.metrics.window_mismatch.set(int(bool(window_error)))
        if window_error != self.state.sync_warning:
            self.state.sync_warning = window_error

    def warnings(self) -> list[str]:
        """Named warnings for /readyz (every worker reads the leader's): what keeps this edge's
        numbers from counting upstream without stopping it from serving."""
        warning = self.state.sync_warning if self.settings.control_plane else ""
        return warning.split("; ") if warning else []

    def outbox_pending(self) -> int:
        """Privacy requests filed here and not yet receipted upstream."""
        pending = self.store.outbox_pending()
        self.metrics.outbox_pending.set(pending)
        return pending

    def privacy_backlog_s(self, now: float) -> float:
        """How long the oldest request made here has waited for the control plane's receipt (0:
        none waits), into the metrics too."""
        oldest = self.store.oldest_queued_at()
        age = 0.0 if oldest is None else max(now - oldest, 0.0)
        self.metrics.outbox_oldest.set(age)
        return age

    def privacy_backlog(self) -> tuple[float, bool]:
        """(the oldest waiting request's age, whether it is past EDGE_PRIVACY_BACKLOG_MAX_S);
        logged once each time the backlog stalls."""
        age = self.privacy_backlog_s(time.time())
        stalled = age > self.settings.privacy_backlog_max_s
        if stalled and not self._backlog_stalled:
            log.warning("privacy backlog stalled: the oldest of %d deletions/withdrawals made here has waited %.0f s "
                        "for the control plane's receipt (EDGE_PRIVACY_BACKLOG_MAX_S=%g)", self.store.outbox_pending(),
                        age, self.settings.privacy_backlog_max_s)
        self._backlog_stalled = stalled
        return age, stalled
