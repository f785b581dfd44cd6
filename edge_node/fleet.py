"""The use cases facing the control plane: what the Sync stream applies, and what it gathers
to send upstream (counts and aggregates only).

The sync agent (edge_node.sync.agent) calls these (and, for the privacy log, the privacy use
case edge_node.privacy.PrivacyLog) and translates to and from protobuf;
a following worker applies what the leader published through :meth:`Fleet.follow`. Nothing
here knows gRPC.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Protocol

import msgspec

from edge_node.adaptation import Answer, EdgeAdaptation
from edge_node.app_sources import AppsInUse
from edge_node.aspects.book import TopicBook
from edge_node.config import EdgeSettings
from edge_node.errors import EdgeError
from edge_node.fleet_state import FleetState
from edge_node.health import Health, NodeHealth
from edge_node.link import SyncLink
from edge_node.metrics import EdgeMetrics
from edge_node.node_state import NodeState
from edge_node.personalization.cohorts import CohortBook, CohortCell, CohortPrior
from edge_node.personalization.cooccurrence import Neighbours, PairBook
from edge_node.personalization.experiments import Experiment, ExperimentBook
from edge_node.personalization.segments import SegmentBook
from edge_node.personalization.triggers import Rule, Transition, TriggerBook
from edge_node.serving import ModelId, Serving
from sentiedge_core.access import AppSet
from sentiedge_core.adaptation import Round as AdaptationRound
from sentiedge_core.bundle import MANIFEST, read_manifest, sha256_file
from sentiedge_core.cooccurrence import NeighbourTable, PairWindow
from sentiedge_core.inference import SentimentModel
from sentiedge_core.segments import SegmentSet
from sentiedge_core.topics import TopicSet

__all__ = ["ClosedWindows", "Fleet", "Health", "ModelFiles", "ModelId"]
log = logging.getLogger("edge_node.sync")
MAX_PENDING_TRIGGERS = 1000


class ClosedWindows(msgspec.Struct, kw_only=True):
    """The closed windows not yet receipted: cohort cells and experiment counts, aggregates only."""

    last_closed: int
    window_s: int
    cohorts: list[tuple[int, str, str, CohortCell]]  # (window, tenant, cohort key, cell)
    experiments: list[tuple]  # (window, experiment, arm, cohort, cell)
    segments: list = []  # sentiedge_core.segments.Summary: per learned segment, or seed clusters
    cooccurrence: list[PairWindow] = []  # item co-occurrence per tenant (its own windows)
    cooccurrence_last_closed: int = 0


class ModelFiles(Protocol):
    """What these use cases need of the assigned bundles on disk (edge_node.sync.model_updates)."""

    async def fetch(self, sha: str, bundle_sha: str, size: int,
                    download: Callable[[int], AsyncIterator[bytes]]) -> Path: ...

    async def load(self, path: Path) -> SentimentModel: ...

    def applied_bundled(self) -> None: ...

    def applied(self, sha: str) -> None: ...


class Fleet:
    def __init__(self, settings: EdgeSettings, *, state: NodeState, metrics: EdgeMetrics,
                 cohorts: CohortBook, experiments: ExperimentBook, segments: SegmentBook, triggers: TriggerBook,
                 neighbours: Neighbours, pairs: PairBook, topic_book: TopicBook, apps: AppsInUse,
                 adaptation: EdgeAdaptation, updates: ModelFiles, serving: Serving, publications: FleetState,
                 link: SyncLink, health: NodeHealth) -> None:
        self.settings = settings
        self.state = state
        self.metrics = metrics
        self.cohorts = cohorts
        self.experiments = experiments
        self.segments = segments
        self.triggers = triggers
        self.neighbours = neighbours
        self.pairs = pairs
        self.topic_book = topic_book
        self.apps = apps
        self.adaptation = adaptation
        self.updates = updates
        self.served = serving
        self.publications = publications
        self.link = link
        self.node_health = health
        self._topic_tenants: set[str] = set()  # tenants whose topic sets the control plane sent

    # --- what this edge is ------------------------------------------------------------------
    def serving(self) -> ModelId:
        return self.served.identity()

    def bundled(self) -> ModelId | None:
        """The bundle this edge was installed with (EDGE_MODEL_DIR), where a rollback may return."""
        path = self.settings.model_path
        try:
            manifest = read_manifest(path)
            return ModelId(manifest.name, manifest.version, sha256_file(path / MANIFEST))
        except (EdgeError, OSError):
            return None

    def health(self) -> Health:
        return self.node_health.health()

    # --- the link's state ----------------------------------------------------------------------
    def sync_connected(self, connected: bool) -> None:
        self.link.connected(connected)

    def welcomed(self, window_error: str) -> None:
        self.link.welcomed(window_error)

    def outbox_pending(self) -> int:
        return self.link.outbox_pending()

    # --- applied from the control plane -----------------------------------------------------
    def apply_apps(self, apps: AppSet) -> bool:
        """The fleet's app set, persisted; False (ignored) when EDGE_APPS_FILE pins the apps."""
        if self.settings.apps_file:
            log.debug("apps from the control plane ignored: EDGE_APPS_FILE is set")
            return False
        self.apps.use(apps, persist=True)
        self.publications.share("apps", apps)
        return True

    def apply_neighbours(self, table: NeighbourTable) -> None:
        """A tenant's item-neighbour table from the control plane (the collaborative signal)."""
        before = self.neighbours.version(table.tenant)
        self.neighbours.apply(table)
        # every tenant's table: a publication holds one payload per kind
        self.publications.share("neighbours", [msgspec.to_builtins(t) for t in self.neighbours.tables.values()])
        self.metrics.neighbours_version.labels(table.tenant).set(table.version)
        if table.version != before:
            log.info("item neighbours of tenant %s v%d: %d items", table.tenant, table.version, len(table.items))

    async def install_model(self, target: ModelId, *, bundled: bool, bundle_sha: str, size: int,
                            download: Callable[[int], AsyncIterator[bytes]]) -> None:
        """Fetch (or, for ``bundled``, return to the installed bundle), verify, load, warm up and
        swap in an assigned model. Raises EdgeError (or any load error): the current one serves on."""
        if bundled:  # a rollback to what this edge was installed with: nothing to download
            path = self.settings.model_path
            mine = self.bundled()
            if mine is None or mine.sha != target.sha:
                raise EdgeError(f"this edge's bundled model ({path}) is not {target.name} {target.version} "
                                f"({target.sha[:12]})")
            log.info("model assignment %s %s: returning to the bundled model in %s", target.name, target.version, path)
        else:
            limit = self.settings.max_bundle_bytes
            if size > limit:
                raise EdgeError(f"bundle is {size} bytes, over this edge's limit of {limit} (EDGE_MAX_BUNDLE_BYTES)")
            log.info("model assignment %s %s (%s): downloading", target.name, target.version, target.sha[:12])
            path = await self.updates.fetch(target.sha, bundle_sha, size, download)
        model = await self.updates.load(path)
        # EDGE_DEEP_STAGE: loaded and its golden examples checked here, before any worker is told to swap
        deep_stage = await self.served.prepare_deep(model)
        if (model.name, model.version) != (target.name, target.version):
            raise EdgeError(f"bundle is {model.name} {model.version}, assignment says {target.name} {target.version}")
        # Other workers of this node swap first and the leader last, so once the leader serves it
        # (and ACKs) every worker does.
        self.publications.share("model", {"path": str(path), "sha": target.sha})
        await self.publications.workers_serve(target.sha)
        await self.served.swap(model, target.sha, deep_stage)
        if bundled:
            self.updates.applied_bundled()
        else:
            self.updates.applied(target.sha)

    # --- gathered for upstream --------------------------------------------------------------
    def closed_windows(self, acked_until: int | None, now: float, pairs_acked_until: int | None = None
                       ) -> ClosedWindows:
        """Windows closed after ``acked_until`` (receipted up to there) and still within the horizon;
        co-occurrence windows (their own length) closed after ``pairs_acked_until``."""
        cohorts = self.cohorts
        window_s = int(cohorts.window_s)
        last_closed = cohorts.window_of(now) - window_s
        first_kept = last_closed - int(cohorts.horizon_s // window_s) * window_s
        acked = last_closed - window_s if acked_until is None else acked_until
        cells: list[tuple] = []
        experiments: list[tuple] = []
        segments: list = []
        for window in range(max(acked + window_s, first_kept), last_closed + 1, window_s):
            cells.extend((window, tenant, key, cell) for (tenant, key), cell in cohorts.export(window).items())
            experiments.extend((window, *row) for row in self.experiments.export(window, cohorts.legacy_tenant))
            segments.extend(self.segments.export(window))
        pairs_closed, pairs = self.pairs.closed(pairs_acked_until, now)
        return ClosedWindows(last_closed=last_closed, window_s=window_s, cohorts=cells, experiments=experiments,
                             segments=segments, cooccurrence=pairs, cooccurrence_last_closed=pairs_closed)

    def pending_triggers(self) -> list[dict]:
        """Trigger transitions not yet receipted upstream, kept in the store (bounded: the oldest
        go first); this worker's new ones are added first."""
        transitions = self.take_transitions()
        if not transitions:
            return self.state.pending_triggers
        with self.state.transaction():
            pending = self.state.pending_triggers
            next_id = self.state.trigger_seq
            for transition in transitions:
                next_id += 1
                pending.append({**msgspec.structs.asdict(transition), "id": next_id})
            pending = pending[-MAX_PENDING_TRIGGERS:]
            self.state.pending_triggers = pending
            self.state.trigger_seq = next_id
        return pending

    def take_transitions(self) -> list[Transition]:
        """Trigger activations and clearings since the last call (the caller keeps them until receipted)."""
        out = []
        transitions = self.triggers.transitions
        while transitions:
            out.append(transitions.popleft())
        return out

    def apply_priors(self, priors: dict, recent: dict) -> None:
        """Cohort priors over the horizon, and the merged recent windows trigger rules read."""
        self._use_priors(priors, recent)
        self.publications.share("priors", {"priors": priors,
                                           "recent": [[w, t, k, c] for (w, t, k), c in recent.items()]})

    def _use_priors(self, priors: dict, recent: dict) -> None:
        self.cohorts.set_remote(priors)
        self.cohorts.set_remote_windows(recent)

    def apply_rules(self, rules: list, version: int) -> None:
        self.triggers.set_rules(rules, version)
        self.publications.share("rules", {"version": version, "rules": rules})

    def apply_topics(self, sets: list[TopicSet], version: int) -> None:
        """Every tenant's topics (the whole state): a tenant no longer in it has none any more."""
        self._use_topics(sets)
        self.publications.share("topics", {"version": version, "sets": sets})

    def _use_topics(self, sets: list[TopicSet]) -> None:
        tenants = {s.tenant for s in sets}
        for gone in self._topic_tenants - tenants:
            self.topic_book.set(TopicSet(tenant=gone))
        for topic_set in sets:
            self.topic_book.set(topic_set)
        self._topic_tenants = tenants

    def apply_experiments(self, experiments: list, version: int) -> None:
        self.experiments.set(experiments, version)
        self.publications.share("experiments", {"version": version, "experiments": experiments})

    def apply_segments(self, segments: SegmentSet) -> None:
        """The learned segments the control plane published (centroids and labels)."""
        self.publications.share("segments", segments)
        before = self.segments.version
        if self.segments.apply(segments):
            # Said once per published version (a set still seeding is re-sent often: debug only).
            level = logging.INFO if segments.segments and segments.version != before else logging.DEBUG
            log.log(level, "learned segments v%d: %s", segments.version,
                    ", ".join(f"{g.id} {g.label}" for g in segments.segments) or f"seeding (k={segments.k})")
        self.metrics.segments_version.set(self.segments.version)

    async def adaptation_round(self, task: AdaptationRound) -> Answer:
        """Train this edge's update for an adaptation round (off the event loop)."""
        answer = await asyncio.to_thread(self.adaptation.answer, task, self.served.model)
        self.metrics.adaptation_rounds.labels(answer.status).inc()
        return answer

    # --- what the leading worker published, applied by a following one ------------------------
    def follow(self, kind: str, data) -> None:
        """Apply what the leader applied and published (``kind``, as FleetState returns it); a
        model is the follower's to load (edge_node.follower)."""
        if kind == "apps":
            self.apps.use(msgspec.convert(data, AppSet))
        elif kind == "rules":
            self.triggers.set_rules(msgspec.convert(data["rules"], list[Rule]), data["version"])
        elif kind == "experiments":
            self.experiments.set(msgspec.convert(data["experiments"], list[Experiment]), data["version"])
        elif kind == "priors":
            try:
                priors = msgspec.convert(data["priors"], dict[str, dict[str, CohortPrior]])
            except msgspec.ValidationError:  # published before per-tenant priors: the next one will do
                return
            self._use_priors(priors, {(row[0], row[1], row[2]): msgspec.convert(row[3], CohortCell)
                                      for row in data["recent"] if len(row) == 4})
        elif kind == "segments":
            self.apply_segments(msgspec.convert(data, SegmentSet))
        elif kind == "topics":
            self._use_topics(msgspec.convert(data["sets"], list[TopicSet]))
        elif kind == "neighbours":
            for table in msgspec.convert(data, list[NeighbourTable]):
                self.neighbours.use(table)
