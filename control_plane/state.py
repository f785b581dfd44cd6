"""Everything the control plane knows, built from settings, plus who to wake when it changes.

Transport (gRPC servicers) depends on this; this never imports gRPC types.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets
import time
from typing import cast

from control_plane.adaptation import Adaptations, Defaults
from control_plane.apps import AppBook
from control_plane.audit import AuditLog
from control_plane.cohorts import CohortMerge
from control_plane.config import CpSettings
from control_plane.cooccurrence import NeighbourBook
from control_plane.errors import ConfigError, FailedPrecondition, InvalidArgument, NotFound, Unauthenticated
from control_plane.experiments import ExperimentBook
from control_plane.group_commit import AsyncGroupCommit, GroupCommit
from control_plane.history import History
from control_plane.ledger import Ledger
from control_plane.metrics import CpMetrics
from control_plane.model_quality import CanaryGate
from control_plane.node_auth import NodeAuth, bearer, is_loopback
from control_plane.nodes import NodeRegistry
from control_plane.probe import Probe
from control_plane.registry import Registry
from control_plane.rules import RuleBook
from control_plane.segments import SegmentBook
from control_plane.snapshot import Snapshot
from control_plane.store import Store
from control_plane.topics import TopicCatalog
from control_plane.trends import TrendRule, Trends
from control_plane.trigger_intake import TriggerIntake
from control_plane.webhooks import Sender, WebhookBook
from sentiedge_core import key_files, signing
from sentiedge_core.access import RateLimiter

log = logging.getLogger("control_plane")
NAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")


class ControlPlane:
    def _pseudonym_key(self, settings: CpSettings) -> bytes:
        """CP_PSEUDONYM_KEY; else a generated key: in ``pseudonym.key`` (0600) next to a SQLite
        store, in the shared database with PostgreSQL (replicas must hash alike). Refused when
        it is not the key the store was written with."""
        stored = self.store.stored_secret("pseudonym_fingerprint")
        fingerprint = stored.decode() if stored else None
        try:
            if settings.database_url and not settings.pseudonym_key:
                key = self.store.secret("pseudonym", lambda: secrets.token_hex(32).encode())
                why = key_files.mismatch(fingerprint, key, setting="CP_PSEUDONYM_KEY")
                if why is not None:
                    raise key_files.KeyRefused(why)
            else:
                key = key_files.choose_key(settings.pseudonym_key, settings.data_path / "pseudonym.key",
                                           legacy=self.store.stored_secret("pseudonym"), fingerprint=fingerprint,
                                           setting="CP_PSEUDONYM_KEY")
                self.store.forget_secret("pseudonym")  # moved out to pseudonym.key (or never used)
        except key_files.KeyRefused as exc:
            self.store.close()
            raise ConfigError(str(exc)) from None
        self.store.secret("pseudonym_fingerprint", lambda: key_files.fingerprint(key).encode())
        return key

    def __init__(self, settings: CpSettings) -> None:
        self.settings = settings
        self.store = Store(settings.data_path, settings.database_url)
        key = self._pseudonym_key(settings)
        self.ledger = Ledger(self.store, key)
        self.registry = Registry(self.store, settings.data_path, signing.trusted_keys(settings.trusted_keys))
        self.nodes = NodeRegistry(self.store, stale_after_s=settings.stale_after_s)
        self.cohorts = CohortMerge(self.store, min_size=settings.cohort_min_size,
                                   horizon_s=settings.cohort_horizon_hours * 3600,
                                   max_node_users=settings.max_node_cohort_users, growth=settings.cohort_growth,
                                   new_node_users=settings.new_node_cohort_users,
                                   growth_period_s=settings.cohort_growth_period_s,
                                   max_node_share=settings.max_node_share,
                                   window_s=settings.cohort_window_minutes * 60,
                                   max_node_cohorts=settings.max_node_cohorts_per_window)
        self.history = History(self.store, min_size=settings.cohort_min_size)  # imported backfill aggregates
        self.neighbours = NeighbourBook(self.store, self.cohorts, min_size=settings.cohort_min_size,
                                        horizon_s=settings.cooccurrence_horizon_days * 86400,
                                        top_m=settings.neighbours_top_m, max_items=settings.neighbours_max_items,
                                        shrink=settings.neighbours_shrink, min_nodes=settings.cooccurrence_min_nodes,
                                        max_node_share=settings.max_node_share,
                                        window_s=settings.cooccurrence_window_minutes * 60,
                                        rebuild_min_s=settings.neighbours_rebuild_min_s)
        self.segments = SegmentBook(self.store, self.cohorts, k=settings.segments, decay=settings.segment_decay,
                                    round_delay_s=settings.segment_round_delay_s, min_size=settings.cohort_min_size,
                                    seed_min_nodes=settings.segment_seed_min_nodes)
        self.adaptations = Adaptations(self.store, self.registry, Defaults(
            min_labels=settings.adapt_min_labels, round_timeout_s=settings.adapt_round_timeout_s,
            delta=settings.adapt_delta), settings.data_path, probe=Probe.load(settings.adapt_probe or None))
        self.canary_gate = CanaryGate(self.store, self.registry, min_labels=settings.canary_min_labels,
                                      audit=self.audit) if settings.canary_auto else None
        self.apps = AppBook(self.store)
        self.cohorts.legacy_tenant = self.apps.legacy_tenant  # owns the aggregates stored before tenants
        # Aggregates may name only tenants that exist (or none: rows from before tenants).
        self.cohorts.known_tenants = self._known_tenants
        self.loopback = is_loopback(settings.host)
        self.node_auth = NodeAuth(self.store, tls=settings.tls,
                                  allow_anonymous=self.loopback and not settings.tls and settings.allow_anonymous_nodes)
        self.filing_limit = RateLimiter(settings.filings_per_node_per_s, settings.filings_burst_per_node)
        self.audit_log = AuditLog(self.store)
        self.rules = RuleBook(self.store)
        self.topics = TopicCatalog(self.store)
        self.trends = Trends(self.store, self.cohorts, self.topics, TrendRule(
            recent_windows=settings.trend_recent_windows, baseline_windows=settings.trend_baseline_windows,
            min_mentions=settings.trend_min_mentions, alpha=settings.trend_alpha))
        self.webhooks = WebhookBook(self.store, allow_private=settings.webhook_allow_private)
        self.sender = Sender(self.store, timeout_s=settings.webhook_timeout_s, base_s=settings.webhook_retry_base_s,
                             max_s=settings.webhook_retry_max_s, max_attempts=settings.webhook_max_attempts,
                             allow_private=settings.webhook_allow_private)
        self.experiments = ExperimentBook(self.store, cap=self.cohorts.cap,
                                          exposures_per_user=settings.experiment_exposures_per_user,
                                          max_node_share=settings.max_node_share)
        self.experiments.legacy_tenant = self.apps.legacy_tenant
        self.experiments.known_tenants = self.cohorts.known_tenants
        self.experiments.horizon_s = settings.cohort_horizon_hours * 3600
        self.experiments.window_s = settings.cohort_window_minutes * 60
        self.experiments.max_node_cohorts = settings.max_node_cohorts_per_window
        self.tokens = self._tokens(settings)
        self.metrics = CpMetrics(self)
        self.cohorts.on_refused = lambda node, reason, n: self.metrics.refused.labels(node, reason).inc(n)
        self.neighbours.on_refused = lambda node, reason, n: self.metrics.pairs_refused.labels(node, reason).inc(n)
        self.trigger_intake = TriggerIntake(
            rules=self.rules.all, known_tenants=self.cohorts.known_tenants, quarantined=self.store.quarantined,
            horizon_s=settings.cohort_horizon_hours * 3600,
            on_refused=lambda node, reason, n: self.metrics.triggers_refused.labels(node, reason).inc(n))
        self._watchers: dict[str, set[asyncio.Event]] = {}
        # Bumped by every wake: the shared snapshot of what streams send is rebuilt once per change.
        self.generation = 0
        self.snapshot = Snapshot(self, max_age_s=settings.heartbeat_interval_s)
        self._receipts: GroupCommit[tuple[int, str], bool] = GroupCommit(self._store_receipts)
        self._stream_receipts = AsyncGroupCommit(self._receipts)
        self._loop: asyncio.AbstractEventLoop | None = None
        # Streams that were open when the process died are not open now.
        for node in self.store.nodes():
            if node.connected_since:
                node.connected_since = 0.0
                self.store.upsert_node(node)

    def _tokens(self, settings: CpSettings) -> dict[str, str]:
        tokens = {}
        for entry in filter(None, settings.admin_tokens.split(",")):
            name, _, token = entry.partition(":")
            tokens[token] = name.strip()
        if not tokens:
            path = settings.data_path / "admin.token"
            if not path.exists():
                path.write_text(secrets.token_urlsafe(24) + "\n")
                path.chmod(0o600)
                log.warning("no CP_ADMIN_TOKENS: generated an operator token in %s", path)
            tokens[path.read_text().strip()] = "admin"
        return tokens

    def operator(self, metadata) -> str:
        """The operator's name for a call's ``authorization: Bearer <token>`` metadata: a
        configured token, or an active (not revoked) one from ``tokens add``."""
        given = bearer(metadata)
        if given:
            for token, name in self.tokens.items():
                if hmac.compare_digest(token, given):
                    return name
            stored = self.store.token_name(hashlib.sha256(given.encode()).hexdigest())
            if stored is not None:
                return stored
        raise Unauthenticated("operator calls need 'authorization: Bearer <token>' with a valid token "
                              "(control-plane --token, CP_TOKEN, or the data dir's admin.token)")

    def add_token(self, name: str) -> str:
        if not NAME.match(name):
            raise InvalidArgument("a token name is 1-64 letters, digits, '.', '_', '-' or '@'")
        if name in self.tokens.values():
            raise InvalidArgument(f"{name!r} is a configured token (CP_ADMIN_TOKENS / admin.token)")
        token = secrets.token_urlsafe(32)
        if not self.store.add_token(name, hashlib.sha256(token.encode()).hexdigest(), self.now()):
            raise InvalidArgument(f"an active token named {name!r} exists; revoke it first")
        return token

    def revoke_token(self, name: str) -> None:
        if name in self.tokens.values():
            raise FailedPrecondition(f"{name!r} is configured (CP_ADMIN_TOKENS / admin.token): remove it there")
        if not self.store.revoke_token(name, self.now()):
            raise NotFound(f"no active token named {name!r}")

    def receipt(self, seq: int, node_id: str) -> None:
        """Record a node's receipt, returning once it is stored. Streams call this from worker
        threads; receipts arriving together are stored together (:class:`GroupCommit`)."""
        self._receipts.submit((seq, node_id))

    async def stream_receipt(self, seq: int, node_id: str) -> None:
        """The same from a Sync stream's event loop: no thread is held while the receipt waits
        for its write, so the ACKs of every stream that applied an update share a few writes."""
        await self._stream_receipts.submit((seq, node_id))

    def _store_receipts(self, receipts: list[tuple[int, str]]) -> list[bool]:
        """One transaction for a batch; then, once per request the batch touched, observe its
        completion time if the batch held its last receipt (batches run one at a time, so a
        completion is observed once)."""
        new = self.store.add_receipts(receipts, self.now())
        self.metrics.receipts.inc(sum(new))
        for seq in sorted({seq for (seq, _), is_new in zip(receipts, new, strict=True) if is_new}):
            entry = next(iter(self.store.privacy_after(seq - 1, 1)), None)
            if entry is not None and entry.seq == seq:
                status = self.ledger.status_of(entry)
                if status.state == "completed":
                    self.metrics.completion.observe(max(status.completed_at - entry.created_at, 0.0))
        return new

    def audit(self, who: str, action: str, detail: str, ok: bool = True) -> None:
        self.audit_log.write(self.now(), who, action, detail, ok)

    def development_app(self) -> None:
        """A loopback control plane with no apps makes one, so `make run` works from a clean clone."""
        if not self.loopback:
            return
        path = self.apps.development(self.settings.data_path / "dev-app.json",
                                     ["http://localhost:8080", "http://127.0.0.1:8080"], self.now())
        if path is not None:
            log.warning("no apps: registered the development app 'dev'; its keys are in %s", path)

    # --- waking streams ---------------------------------------------------------------------
    def watch(self, node_id: str, event: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()  # the streams' loop: wake_all may be called off it
        self._watchers.setdefault(node_id, set()).add(event)

    def unwatch(self, node_id: str, event: asyncio.Event) -> None:
        self._watchers.get(node_id, set()).discard(event)

    def wake_all(self) -> None:
        """Wake every Sync stream, this replica's and (PostgreSQL) every other replica's: they
        listen for the notification instead of waiting for the next heartbeat. Safe from the
        operator calls' worker threads."""
        self.wake_local()
        self.store.notify()

    def wake_local(self) -> None:
        """Wake this replica's streams only (what another replica's notification does)."""
        self.generation += 1
        loop = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is not None and running is not loop:
            loop.call_soon_threadsafe(self._wake_now)
        else:
            self._wake_now()

    def _wake_now(self) -> None:
        for events in list(self._watchers.values()):
            for event in list(events):
                event.set()

    def _known_tenants(self) -> set[str]:
        """Every tenant that ever had an app, from the shared snapshot's app set (read once per
        change, not once per heartbeat)."""
        _, apps, legacy = cast(tuple, self.snapshot.view(self.generation).resources["apps"][1])
        return {a.tenant_id for a in apps} | ({legacy} if legacy else set())

    def listen_to_replicas(self) -> None:
        """With PostgreSQL: wake this replica's streams when another replica changes something."""
        self.store.listen(self.wake_local, self.settings.database_url)

    def close(self) -> None:
        self.store.close()

    @staticmethod
    def now() -> float:
        return time.time()
