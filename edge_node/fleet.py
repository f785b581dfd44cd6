"""EdgeNode's use cases facing the control plane: what the Sync stream applies, and what it
gathers to send upstream (counts and aggregates only).

A mixin of :class:`edge_node.node.EdgeNode`; the sync agent (edge_node.sync.agent) calls only
these and translates to and from protobuf. Nothing here knows gRPC.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol

import msgspec

from edge_node.errors import EdgeError
from edge_node.personalization.cohorts import CohortCell
from edge_node.personalization.triggers import Transition
from sentiedge_core.access import AppSet
from sentiedge_core.bundle import MANIFEST, read_manifest, sha256_file
from sentiedge_core.cooccurrence import NeighbourTable, PairWindow
from sentiedge_core.privacy import DELETE_USER, policy_version_problem

if TYPE_CHECKING:
    from edge_node.config import EdgeSettings
    from edge_node.metrics import EdgeMetrics
    from edge_node.node_state import NodeState
    from edge_node.personalization.cohorts import CohortBook
    from edge_node.personalization.cooccurrence import Neighbours, PairBook
    from edge_node.personalization.experiments import ExperimentBook
    from edge_node.personalization.segments import SegmentBook
    from edge_node.personalization.triggers import TriggerBook
    from edge_node.privacy import PrivacyBook
    from edge_node.quality import QualityBook
    from edge_node.role import Role
    from edge_node.store import EdgeStore
    from sentiedge_core.inference import SentimentModel

log = logging.getLogger("edge_node.sync")
MAX_PENDING_TRIGGERS = 1000


class ModelId(NamedTuple):
    name: str
    version: str
    sha: str  # the manifest's sha256


class Health(msgspec.Struct, kw_only=True):
    model: ModelId
    serving_personal: bool
    outputs: dict  # recent prediction counts against the model's reference (drift)
    quality: dict  # model -> counts of sampled, labelled predictions


class ClosedWindows(msgspec.Struct, kw_only=True):
    """The closed windows not yet receipted: cohort cells and experiment counts, aggregates only."""

    last_closed: int
    window_s: int
    cohorts: list[tuple[int, str, CohortCell]]  # (window, cohort key, cell)
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


class FleetUseCases:
    if TYPE_CHECKING:  # what this mixin uses of EdgeNode (edge_node/node.py), for readers and the type checker
        settings: EdgeSettings
        role: Role
        model_sha: str
        store: EdgeStore
        state: NodeState
        metrics: EdgeMetrics
        privacy: PrivacyBook
        quality: QualityBook
        cohorts: CohortBook
        experiments: ExperimentBook
        segments: SegmentBook
        triggers: TriggerBook
        updates: ModelFiles
        neighbours: Neighbours
        pairs: PairBook

        @property
        def model(self) -> SentimentModel: ...

        def personal_allowed(self) -> bool: ...

        def model_outputs(self) -> dict: ...

        def set_apps(self, apps: AppSet, *, persist: bool = False) -> None: ...

        def _publish(self, kind: str, payload) -> None: ...

        async def workers_serve(self, sha: str, timeout_s: float = 120.0) -> None: ...

        async def swap_model(self, model: SentimentModel, sha: str) -> None: ...

    # --- what this edge is ------------------------------------------------------------------
    def serving(self) -> ModelId:
        return ModelId(self.model.name, self.model.version, self.model_sha)

    def bundled(self) -> ModelId | None:
        """The bundle this edge was installed with (EDGE_MODEL_DIR), where a rollback may return."""
        path = self.settings.model_path
        try:
            manifest = read_manifest(path)
            return ModelId(manifest.name, manifest.version, sha256_file(path / MANIFEST))
        except (EdgeError, OSError):
            return None

    def health(self) -> Health:
        return Health(model=self.serving(), serving_personal=self.personal_allowed(), outputs=self.model_outputs(),
                      quality=self.quality.counts())

    # --- the link's state, for the metrics --------------------------------------------------
    def sync_connected(self, connected: bool) -> None:
        self.metrics.sync_connected.set(int(connected))
        if self.role.shared:  # the other workers report it in /readyz
            self.state.sync_connected = connected

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
        if stalled and not getattr(self, "_backlog_stalled", False):
            log.warning("privacy backlog stalled: the oldest of %d deletions/withdrawals made here has waited %.0f s "
                        "for the control plane's receipt (EDGE_PRIVACY_BACKLOG_MAX_S=%g)", self.store.outbox_pending(),
                        age, self.settings.privacy_backlog_max_s)
        self._backlog_stalled = stalled
        return age, stalled

    # --- applied from the control plane -----------------------------------------------------
    def apply_apps(self, apps: AppSet) -> bool:
        """The fleet's app set, persisted; False (ignored) when EDGE_APPS_FILE pins the apps."""
        if self.settings.apps_file:
            log.debug("apps from the control plane ignored: EDGE_APPS_FILE is set")
            return False
        self.set_apps(apps, persist=True)
        self._publish("apps", apps)
        return True

    def apply_privacy_update(self, seq: int, kind: int, subject: str, purposes: list[str], at: float,
                             request_id: str, policy_version: str = "") -> str | None:
        """The privacy log's update ``seq``, applied exactly once and in order: None when it may
        be acknowledged (applied now, or a replay of one applied before: its receipt is sent
        again, nothing is applied twice), else why it was refused with nothing written (a gap
        in the sequence, or a store that failed; the control plane sends it again)."""
        cursor = self.state.privacy_cursor
        if seq <= cursor:
            log.warning("privacy update %d replayed (cursor %d): not applied again, receipt resent", seq, cursor)
            return None
        if seq != cursor + 1:
            log.error("privacy update %d out of order (cursor %d): refused", seq, cursor)
            return f"out of order: expected sequence {cursor + 1}, got {seq}; nothing applied"
        try:
            self.apply_privacy(seq, kind, subject, purposes, at, request_id,
                               lambda: setattr(self.state, "privacy_cursor", seq), policy_version=policy_version)
        except Exception as exc:  # the store failed: refused, the cursor stays, sent again on reconnect
            log.exception("could not apply privacy update %d", seq)
            return str(exc) or type(exc).__name__
        return None

    def apply_privacy(self, seq: int, kind: int, subject: str, purposes: list[str], at: float, request_id: str,
                      after: Callable[[], None], policy_version: str = "") -> None:
        """Erase a subject or withdraw consent as the log says, ``after`` in the same transaction
        (the cursor). A withdrawal records the policy version the user withdrew under (filed by
        the edge where they did); an operator's request carries none, and each purpose keeps the
        version the user last agreed to. Raises when the store fails: nothing applied, the update
        is refused."""
        now = time.time()
        if kind == DELETE_USER:
            self.privacy.delete_subject(subject, now, request_id=request_id, file_upstream=False, after=after)
            self.metrics.privacy_actions.labels("deleted_remote").inc()
        else:
            self.privacy.set_subject_consent(subject, {p: False for p in purposes},
                                             policy_version if not policy_version_problem(policy_version) else None,
                                             at, now,
                                             request_id=request_id, file_upstream=False, after=after)
            self.metrics.privacy_actions.labels("consent_withdrawn_remote").inc()
        self.metrics.sync_cursor.set(seq)

    def apply_neighbours(self, table: NeighbourTable) -> None:
        """A tenant's item-neighbour table from the control plane (the collaborative signal)."""
        before = self.neighbours.version(table.tenant)
        self.neighbours.apply(table)
        self._publish("neighbours", msgspec.to_builtins(table))
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
        if (model.name, model.version) != (target.name, target.version):
            raise EdgeError(f"bundle is {model.name} {model.version}, assignment says {target.name} {target.version}")
        # Other workers of this node swap first and the leader last, so once the leader serves it
        # (and ACKs) every worker does.
        self._publish("model", {"path": str(path), "sha": target.sha})
        await self.workers_serve(target.sha)
        await self.swap_model(model, target.sha)
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
