"""One edge node's parts, as :func:`edge_node.wiring.build` made them: the HTTP layer and the
CLI reach every use case through this facade, and it starts and stops what runs in the
background (the store's purge, disk watching, the workers' following, the Sync stream)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from edge_node.adaptation import EdgeAdaptation
from edge_node.aspects.analyzer import AspectAnalyzer
from edge_node.aspects.book import TopicBook
from edge_node.config import EdgeSettings
from edge_node.disk_watch import DiskWatch, purge_expired
from edge_node.fleet import Fleet
from edge_node.follower import Follower
from edge_node.health import NodeHealth
from edge_node.identity import Identities
from edge_node.ingest import Events
from edge_node.link import SyncLink
from edge_node.metrics import EdgeMetrics
from edge_node.node_state import NodeState
from edge_node.personalization.cohorts import CohortBook
from edge_node.personalization.cooccurrence import Neighbours, PairBook
from edge_node.personalization.decisions import Personalizer
from edge_node.personalization.experiments import ExperimentBook
from edge_node.personalization.segments import SegmentBook
from edge_node.personalization.triggers import TriggerBook
from edge_node.privacy import PrivacyBook, PrivacyLog
from edge_node.quality import QualityBook
from edge_node.role import Role
from edge_node.serving import Serving
from edge_node.store import EdgeStore
from edge_node.sync.agent import SyncAgent
from edge_node.user_data import UserData
from sentiedge_core.access import Gatekeeper
from sentiedge_core.inference import SentimentModel


@dataclass(eq=False, kw_only=True)
class EdgeNode:
    settings: EdgeSettings
    role: Role  # worker ``index`` of ``count`` serving this node (edge_node.workers)
    metrics: EdgeMetrics
    store: EdgeStore
    state: NodeState
    access: Gatekeeper
    privacy: PrivacyBook
    privacy_log: PrivacyLog  # the control plane's privacy log, applied once and in order
    cohorts: CohortBook
    segments: SegmentBook
    pairs: PairBook
    neighbours: Neighbours
    experiments: ExperimentBook
    triggers: TriggerBook
    identities: Identities
    topic_book: TopicBook
    aspects: AspectAnalyzer
    quality: QualityBook
    adaptation: EdgeAdaptation
    personalizer: Personalizer
    serving: Serving  # the model served: scoring, swaps, drift
    link: SyncLink  # the link to the control plane as the node reads it (readiness, fail closed)
    health: NodeHealth  # heartbeat health and the /metrics gauges
    disk: DiskWatch
    users: UserData  # use cases on one user's data
    events: Events  # use cases of what users do
    fleet: Fleet  # use cases facing the control plane
    follower: Follower | None  # with several workers
    sync: SyncAgent | None  # the leading worker's Sync stream, with a control plane
    now: Callable[[], float] = time.time  # the clock the use cases are timed by
    _tasks: list[asyncio.Task] = field(default_factory=list)

    @property
    def model(self) -> SentimentModel:
        return self.serving.model

    async def start(self) -> None:
        await self.serving.start()
        if self.role.leader:  # one purge per node, not one per worker
            self._tasks.append(asyncio.create_task(
                purge_expired(self.store, self.metrics, self.settings.maintenance_interval_s),
                name="store-maintenance"))
        if self.follower is not None:
            self.follower.announce()
            self._tasks.append(asyncio.create_task(self.follower.run(), name="share-with-the-other-workers"))
        self._tasks.append(asyncio.create_task(self.disk.run(), name="disk-watch"))
        if self.sync is not None:
            self.sync.start()

    async def close(self) -> None:
        if self.sync is not None:
            await self.sync.stop()
        for task in self._tasks:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        if self.follower is not None:
            await self.follower.close()
        await self.serving.close()
        self.store.close()

