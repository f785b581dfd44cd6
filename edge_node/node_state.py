"""The node's own bookkeeping in its store, one named and typed accessor per item.

What the sync agent, the fleet use cases and the workers of one node keep about themselves
(the privacy cursor, what the control plane receipted, what each worker serves and counts):
read and written here only, so no other module spells a store key.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from edge_node.store import EdgeStore


class NodeState:
    def __init__(self, store: EdgeStore) -> None:
        self._store = store

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._store.transaction():
            yield

    # --- the privacy log and the link to the control plane ------------------------------------
    @property
    def privacy_cursor(self) -> int:
        """The sequence number of the last privacy-log update applied here."""
        return int(self._store.value("privacy_cursor", 0))

    @privacy_cursor.setter
    def privacy_cursor(self, seq: int) -> None:
        self._store.set_value("privacy_cursor", seq)

    @property
    def node_secret(self) -> str:
        """The secret this node got for its enrollment token ("" before enrolling)."""
        return self._store.value("node_secret", "")

    @node_secret.setter
    def node_secret(self, secret: str) -> None:
        self._store.set_value("node_secret", secret)

    @property
    def sync_last_success(self) -> float | None:
        """When the node last caught up with the privacy log (None: never connected yet)."""
        at = self._store.value("sync_last_success")
        return None if at is None else float(at)

    @sync_last_success.setter
    def sync_last_success(self, at: float) -> None:
        self._store.set_value("sync_last_success", at)

    @property
    def sync_connected(self) -> bool:
        """Whether the leading worker's Sync stream is up (for the other workers' /readyz)."""
        return bool(self._store.value("sync_connected", False))

    @sync_connected.setter
    def sync_connected(self, connected: bool) -> None:
        self._store.set_value("sync_connected", connected)

    @property
    def sync_warning(self) -> str:
        """What the control plane's Welcome said is wrong with this node's settings ("": nothing)."""
        return self._store.value("sync_warning", "")

    @sync_warning.setter
    def sync_warning(self, warning: str) -> None:
        self._store.set_value("sync_warning", warning)

    @property
    def pseudonym_fingerprint(self) -> str | None:
        """The fingerprint of the pseudonym key the store was written with."""
        return self._store.value("pseudonym_fingerprint")

    @pseudonym_fingerprint.setter
    def pseudonym_fingerprint(self, fingerprint: str) -> None:
        self._store.set_value("pseudonym_fingerprint", fingerprint)

    # --- what the control plane receipted -------------------------------------------------------
    @property
    def cohorts_acked_until(self) -> int | None:
        """The last cohort window the control plane receipted (None: none yet)."""
        acked = self._store.value("cohorts_acked_until", self._store.value("cohorts_sent_until"))
        return None if acked is None else int(acked)

    @cohorts_acked_until.setter
    def cohorts_acked_until(self, window: int) -> None:
        self._store.set_value("cohorts_acked_until", window)

    @property
    def pairs_acked_until(self) -> int | None:
        """The last co-occurrence window the control plane receipted (None: none yet)."""
        acked = self._store.value("pairs_acked_until")
        return None if acked is None else int(acked)

    @pairs_acked_until.setter
    def pairs_acked_until(self, window: int) -> None:
        self._store.set_value("pairs_acked_until", window)

    @property
    def pending_triggers(self) -> list[dict]:
        """Trigger transitions not yet receipted upstream, oldest first, each with its ``id``."""
        return self._store.value("pending_triggers", [])

    @pending_triggers.setter
    def pending_triggers(self, pending: list[dict]) -> None:
        self._store.set_value("pending_triggers", pending)

    @property
    def trigger_seq(self) -> int:
        """The id of the last trigger transition queued."""
        return int(self._store.value("trigger_seq", 0))

    @trigger_seq.setter
    def trigger_seq(self, seq: int) -> None:
        self._store.set_value("trigger_seq", seq)

    # --- shared by the workers of one node ------------------------------------------------------
    def trigger_active(self, rule: str, cohort: str, tenant: str) -> bool:
        """The node's state of a trigger rule in a tenant's cohort (the workers' flips agree here)."""
        return bool(self._store.value(f"trigger_state|{rule}|{tenant}|{cohort}", False))

    def flip_trigger(self, rule: str, cohort: str, tenant: str, active: bool) -> bool:
        """True when this worker's flip changes the node's shared state of a rule in a tenant's cohort."""
        with self._store.transaction():
            if self.trigger_active(rule, cohort, tenant) == active:
                return False
            self._store.set_value(f"trigger_state|{rule}|{tenant}|{cohort}", active)
            return True

    def worker_serving(self, index: int) -> str | None:
        """The manifest sha worker ``index`` serves."""
        return self._store.value(f"serving|{index}")

    def set_worker_serving(self, index: int, sha: str) -> None:
        self._store.set_value(f"serving|{index}", sha)

    def worker_drift(self, index: int) -> dict | None:
        """Worker ``index``'s last shared prediction counts: sha, at, labels, bins."""
        return self._store.value(f"drift|{index}")

    def share_drift(self, index: int, counts: dict) -> None:
        self._store.set_value(f"drift|{index}", counts)

    def worker_exposure(self, index: int) -> dict | None:
        """Worker ``index``'s last shared exposure counts: at, windows."""
        return self._store.value(f"exposure|{index}")

    def share_exposure(self, index: int, counts: dict) -> None:
        self._store.set_value(f"exposure|{index}", counts)

    @property
    def fleet_seq(self) -> int:
        """The number of the leading worker's last publication."""
        return int(self._store.value("fleet_seq", 0))

    def publication(self, kind: str) -> dict | None:
        """The leading worker's last publication of ``kind``: seq, data."""
        return self._store.value(f"fleet|{kind}")

    def publish(self, kind: str, data: Any) -> int:
        """Store a publication of ``kind`` under the next number (one transaction); returns the number."""
        seq = self.fleet_seq + 1
        with self._store.transaction():
            self._store.set_value(f"fleet|{kind}", {"seq": seq, "data": data})
            self._store.set_value("fleet_seq", seq)
        return seq
