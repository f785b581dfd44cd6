"""The data disk, watched: the store's size budget (cold records evicted), a full disk
(writes refused with 507, said once per episode, shared by the workers of one node), space
coming back (the reserve held again), and the periodic purge of expired records."""

from __future__ import annotations

import asyncio
import logging

from edge_node.disk import DiskReserve
from edge_node.metrics import EdgeMetrics
from edge_node.store import EdgeStore

log = logging.getLogger("edge_node")


class DiskWatch:
    def __init__(self, store: EdgeStore, reserve: DiskReserve, *, metrics: EdgeMetrics, data_dir: str,
                 interval_s: float, shared=None) -> None:
        self.store = store
        self.reserve = reserve
        self.metrics = metrics
        self.data_dir = data_dir
        self.interval_s = interval_s
        # Shared memory of the node's workers (the supervisor's): [1] 1 while the data disk is full.
        self._shared = shared
        self._reported_full = False

    def write_refused(self, reason: str) -> None:
        """The store refused a write (``reason``); a full disk is said once per episode."""
        self.metrics.writes_refused.labels(reason).inc()
        if reason != "disk_full":
            return
        told = self._shared is not None and bool(self._shared[1])  # another worker of this node said it
        if self._shared is not None:
            self._shared[1] = 1
        if not self._reported_full and not told:  # said once per episode
            self._reported_full = True
            log.error("the disk of %s is full: writes are refused (507), deletions use the reserve; "
                      "readiness is false until space returns", self.data_dir)
        self.metrics.storage_full.set(1)

    def check_disk(self) -> None:
        """The store's size budget (cold records evicted), and after a full disk: ready again
        once the reserve could be re-created."""
        was_over = self.store.over_budget
        for kind, count in self.store.enforce_budget().items():
            if count:
                self.metrics.store_evictions.labels(kind).inc(count)
        if self.store.over_budget and not was_over:
            log.error("the store holds more than EDGE_STORE_MAX_BYTES=%d in records that are never evicted "
                      "(consent, suppressions, privacy work): new writes are refused (507) until it shrinks",
                      self.store.max_bytes)
        self.metrics.store_bytes.set(self.store.used_bytes())
        self.metrics.store_max_bytes.set(self.store.max_bytes)
        self.space_back()

    def _room(self) -> bool:
        """Free space beyond the reserve (a held reserve alone does not make a full disk writable)."""
        try:
            return self.reserve.free_bytes() >= max(self.reserve.size, 1 << 20)
        except OSError:
            return False

    def space_back(self) -> bool:
        """After a full disk: writes are accepted (and the node ready) again once the reserve is
        held again — re-created here, or by another worker of this node. True when not full."""
        node_full = self._shared is not None and bool(self._shared[1])
        if node_full:
            self.store.full = True  # another worker found the disk full: so is this one's
        if (self.store.full or not self.reserve.held) and self.reserve.ensure() and self._room():
            if self._reported_full or node_full:  # said once per node
                log.warning("disk space is back in %s: writes accepted again", self.data_dir)
            self.store.full = self._reported_full = False
            if self._shared is not None:
                self._shared[1] = 0
            self.metrics.storage_full.set(0)
        return not self.store.full

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await asyncio.to_thread(self.check_disk)
            except Exception:
                log.exception("disk check failed")


async def purge_expired(store: EdgeStore, metrics: EdgeMetrics, interval_s: float) -> None:
    """Every ``interval_s``: remove the records whose TTL ran out (one purge per node: the leader's)."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            removed = await asyncio.to_thread(store.expire)
            metrics.store_records.set(len(store))
            if removed:
                log.info("purged %d expired records", removed)
        except Exception:  # keep the loop alive; the next round retries
            log.exception("store maintenance failed")
