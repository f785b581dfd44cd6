"""Everything one edge node runs, built from settings: store, privacy, cohorts, ingest,
decisions, metrics and the sentiment service. The HTTP layer only calls into this."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from pathlib import Path

import msgspec

from edge_node import app_sources
from edge_node.adaptation import Answer, EdgeAdaptation
from edge_node.aspects.analyzer import AspectAnalyzer
from edge_node.aspects.book import TopicBook
from edge_node.config import EdgeSettings
from edge_node.disk import DiskReserve
from edge_node.errors import BundleError, ConfigError, InvalidInput, LimitExceeded, NotReady
from edge_node.fleet import FleetUseCases
from edge_node.fleet_state import FleetState
from edge_node.identity import Identities
from edge_node.ingest import Ingestor, IngestReport, check_context, validate_event
from edge_node.metrics import EdgeMetrics
from edge_node.personalization.cohorts import CohortBook, CohortCell, CohortPrior
from edge_node.personalization.cooccurrence import Neighbours, PairBook
from edge_node.personalization.decisions import Personalizer
from edge_node.personalization.experiments import Experiment, ExperimentBook
from edge_node.personalization.exposure import Counts, ExplorationLog, ExposureBook, Figures, combined, figures
from edge_node.personalization.profiles import Tuning
from edge_node.personalization.ranking import COLLABORATIVE_REASON, ColdStart, Weights
from edge_node.personalization.segments import SegmentBook
from edge_node.personalization.triggers import Rule, TriggerBook
from edge_node.privacy import PrivacyBook, Pseudonymizer
from edge_node.quality import QualityBook
from edge_node.role import SOLE, Role
from edge_node.sentiment_service import SentimentService
from edge_node.store import EdgeStore
from edge_node.sync.agent import SyncAgent
from edge_node.sync.model_updates import ModelUpdates
from edge_node.user_data import UserDataUseCases
from sentiedge_core import key_files, monitoring, signing
from sentiedge_core.access import AppSet, Gatekeeper
from sentiedge_core.adaptation import Round as AdaptationRound
from sentiedge_core.bundle import MANIFEST, sha256_file
from sentiedge_core.cooccurrence import NeighbourTable
from sentiedge_core.inference import UNSUPPORTED, Sentiment, SentimentModel
from sentiedge_core.monitoring import DriftMonitor
from sentiedge_core.segments import SegmentSet
from sentiedge_core.topics import TopicSet

FOLLOW_S = 0.5  # how often a worker of several shares its counts and follows the leader
log = logging.getLogger("edge_node")


def pseudonym_key(store: EdgeStore, settings: EdgeSettings) -> bytes:
    """EDGE_PSEUDONYM_KEY, or the key generated into ``pseudonym.key`` (0600) on first start;
    refused when it is not the key the store was written with."""
    try:
        key = key_files.choose_key(settings.pseudonym_key, settings.data_path / "pseudonym.key",
                                   legacy=store.stored_secret("pseudonym"),
                                   fingerprint=store.value("pseudonym_fingerprint"), setting="EDGE_PSEUDONYM_KEY")
    except key_files.KeyRefused as exc:
        raise ConfigError(str(exc)) from None
    store.forget_secret("pseudonym")  # moved out to pseudonym.key (or never used)
    store.set_value("pseudonym_fingerprint", key_files.fingerprint(key))
    return key


def preflight(settings: EdgeSettings) -> None:
    """What would stop a node from starting, checked before the server binds its port, so
    `edge-node serve` reports it in one line (EdgeError) instead of a startup traceback:
    the store opens (and is not in use), the pseudonym key is the store's, the apps file reads."""
    store = EdgeStore(settings.data_path, retention_s=settings.retention_s)
    try:
        pseudonym_key(store, settings)
    finally:
        store.close()
    check_bundle(settings)
    check_ports(settings)
    if settings.apps_file:
        app_sources.from_file(Path(settings.apps_file))
    elif not settings.control_plane:  # written once here, so the workers of one node share one
        path = app_sources.development_app(settings.data_path, development_origins(settings))
        log.warning("no EDGE_APPS_FILE: serving the development app in %s (client key, token signing key pair and "
                    "a server key with every scope; mint a user token with: edge-node token USER --apps-file %s)",
                    path, path)


def check_ports(settings: EdgeSettings) -> None:
    """The ports are free, said before the model loads and workers start (a worker that
    fails to bind says only [Errno 98], with no address)."""
    import socket

    listeners = [(settings.host, settings.port, "EDGE_HOST / EDGE_PORT")]
    if settings.admin_port:
        listeners.append((settings.admin_host, settings.admin_port, "EDGE_ADMIN_HOST / EDGE_ADMIN_PORT"))
    for host, port, names in listeners:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            try:
                probe.bind((host, port))
            except OSError as exc:
                raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror} ({names})") from None


def check_bundle(settings: EdgeSettings) -> None:
    """The bundle the node would serve first is one, whole, and (with EDGE_TRUSTED_KEYS) signed
    by a trusted key: said in one line here rather than by a worker's start-up traceback."""
    from sentiedge_core import bundle

    assigned = ModelUpdates(settings.data_path / "models", settings.inference_threads).current() \
        if settings.control_plane else None
    path = Path(assigned or settings.model_path)
    if not (path / "manifest.json").is_file():
        raise ConfigError(f"{path} is not a model bundle (no manifest.json): check --model-dir / EDGE_MODEL_DIR")
    bundle.verify(path)
    if settings.trusted_keys:
        try:
            signing.verify(path, signing.trusted_keys(settings.trusted_keys))
        except BundleError as exc:
            raise BundleError(f"{path}: {exc.message} (EDGE_TRUSTED_KEYS; sign it with control-plane models sign)") \
                from None


def development_origins(settings: EdgeSettings) -> list[str]:
    return [f"http://localhost:{settings.port}", f"http://127.0.0.1:{settings.port}"]


class EdgeNode(FleetUseCases, UserDataUseCases):
    def __init__(self, settings: EdgeSettings, model: SentimentModel, model_sha: str = "", *,
                 role: Role = SOLE, shared=None) -> None:
        self.settings = settings
        role = role if role is not None else Role()
        self.role = role  # worker ``index`` of ``count`` serving this node (edge_node.workers)
        # Shared memory of the node's workers (the supervisor's): [0] the number of the leader's
        # last publication, [1] 1 while the data disk is full.
        self._shared = shared
        self._fleet_seen = -1
        self._model_target: str | None = None
        self._model_task: asyncio.Task | None = None
        self.model_sha = model_sha or sha256_file(model.root / MANIFEST)
        self.metrics = EdgeMetrics(low_confidence=settings.low_confidence)
        self.store = EdgeStore(settings.data_path, retention_s=settings.retention_s, fsync=settings.store_fsync,
                               outbox_max=settings.privacy_outbox_max, max_bytes=settings.store_max_bytes,
                               lock=not role.shared, hot_records=0 if role.shared else 100_000)
        self.fleet = FleetState(self.store)
        try:
            key = pseudonym_key(self.store, settings)
        except BaseException:
            self.store.close()
            raise
        self.cohorts = CohortBook(self.store, window_s=settings.cohort_window_minutes * 60,
                                  min_size=settings.cohort_min_size, max_per_user=settings.max_cohorts_per_user,
                                  horizon_s=settings.cohort_horizon_hours * 3600,
                                  prior_cache_s=settings.cohort_prior_refresh_s,
                                  max_categories=settings.max_categories_per_cohort,
                                  max_cohorts=settings.max_cohorts_per_window)
        self.reserve = DiskReserve(settings.data_path / "reserve.bin", int(settings.disk_reserve_mb * (1 << 20)))
        self.reserve.ensure()
        self.store.on_refused = self._write_refused
        self.tuning = Tuning(sentiment_window_s=settings.sentiment_window_minutes * 60,
                             half_life_s=settings.affinity_half_life_days * 86400,
                             prior_weight=settings.sentiment_prior_weight,
                             max_categories=settings.max_categories_per_profile)
        self.segments = SegmentBook(self.store, self.tuning, dimension=settings.vector_dim,
                                    window_s=settings.cohort_window_minutes * 60, min_size=settings.cohort_min_size)
        self.pairs = PairBook(self.store, window_s=settings.cooccurrence_window_minutes * 60,
                              min_users=settings.cohort_min_size, max_items=settings.cooccurrence_max_items)
        self.neighbours = Neighbours(self.store)
        self.exposure = ExposureBook(window_s=settings.exposure_window_minutes * 60)
        self.exploration = ExplorationLog(self.store)
        self.privacy = PrivacyBook(self.store, self.cohorts, Pseudonymizer(key), upstream=bool(settings.control_plane),
                                   reserve=self.reserve, segments=self.segments, pairs=self.pairs)
        self.experiments = ExperimentBook(self.store, window_s=settings.cohort_window_minutes * 60,
                                          min_size=settings.cohort_min_size,
                                          horizon_s=settings.cohort_horizon_hours * 3600)
        self.triggers = TriggerBook(self.cohorts,
                                    on_activation=lambda rule: self.metrics.trigger_activations.labels(rule).inc(),
                                    on_served=self.metrics.trigger_signal_to_action.observe,
                                    claim=self._claim_transition if role.shared else None,
                                    shared_active=self._shared_trigger if role.shared else None)
        self.identities = Identities(self.privacy, self.cohorts, self.tuning,
                                     max_aliases=settings.max_aliases_per_user)
        self.topic_book = TopicBook()  # each tenant's topics, as the control plane streams them
        self.aspects = AspectAnalyzer(self.topic_book, max_clauses=settings.aspect_max_clauses)
        self.sentiment = self._service(model)
        self.ingestor = Ingestor(self.privacy, self.cohorts, self.tuning, retention_s=settings.retention_s,
                                 score=self.score, segments=self.segments, pairs=self.pairs,
                                 exploration=self.exploration,
                                 on_exploration_click=self.metrics.explored_click)
        self.personalizer = Personalizer(
            self.store, self.privacy, self.cohorts, self.tuning, dimension=settings.vector_dim,
            weights=Weights(personal=settings.weight_personal, cohort=settings.weight_cohort,
                            popularity=settings.weight_popularity, collaborative=settings.weight_collaborative),
            on_signal_used=self.metrics.signal_to_action.observe, cache_s=settings.decision_cache_ms / 1000,
            allow_personal=self.personal_allowed, held_out=self.held_out, segments=self.segments,
            cache_bytes=int(settings.decision_cache_mb * (1 << 20)), neighbours=self.neighbours,
            cold_start=ColdStart(events=settings.cold_start_events, popularity=settings.weight_popularity_cold_start),
            exploration=self.exploration)
        self.metrics.model(model.name, model.version)
        self.drift = DriftMonitor(model.manifest.reference, model.label_set,
                                  window_s=settings.cohort_window_minutes * 60)
        self.quality = QualityBook(self.store, rate=settings.label_sample_rate, labels=model.label_set)
        self.adaptation = EdgeAdaptation(self.store, enabled=settings.adapt, min_labels=settings.adapt_min_labels,
                                         max_labels=settings.adapt_max_labels, max_epsilon=settings.adapt_max_epsilon)
        self.updates = ModelUpdates(settings.data_path / "models", settings.inference_threads,
                                    signing.trusted_keys(settings.trusted_keys))
        # Each worker admits its share of the node's rate limits (the kernel spreads connections evenly).
        self.access = Gatekeeper(key_rate=settings.rate_limit_per_key / role.count,
                                 address_rate=settings.rate_limit_per_address / role.count,
                                 token_cache=settings.token_cache_size,
                                 on_refused=lambda reason: self.metrics.refusals.labels(reason).inc())
        self.set_apps(app_sources.initial(
            self.store, apps_file=settings.apps_file, standalone=not settings.control_plane,
            data_dir=settings.data_path, origins=development_origins(settings)))
        self._topic_tenants: set[str] = set()  # tenants whose topic sets the control plane sent
        self.sync: SyncAgent | None = None
        if settings.control_plane and role.leader:
            self.sync = SyncAgent(self, target=settings.control_plane, node_id=settings.node_name,
                                  region=settings.region, backoff_max_s=settings.sync_backoff_max_s,
                                  audit_log=settings.sync_audit_log or None,
                                  tls=((settings.tls_ca, settings.tls_cert, settings.tls_key)
                                       if settings.tls_ca else None),
                                  enrollment_token=settings.enrollment_token)
        self._maintenance: asyncio.Task | None = None
        self._disk_watch: asyncio.Task | None = None
        self._follower: asyncio.Task | None = None
        self._parent = os.getppid()
        self._reported_full = False
        self._exposure_shared = 0.0  # when this worker last shared its exposure counts

    def set_apps(self, apps: AppSet, *, persist: bool = False) -> None:
        """Verify keys and tokens against this app set from now on (a revocation applies at once)."""
        if persist:
            app_sources.persist(self.store, apps)
        self.access.set_apps(apps)
        self.cohorts.legacy_tenant = apps.legacy_tenant  # owns the cells written before tenants
        self.metrics.apps_known.set(sum(not a.revoked_at for a in apps.apps))

    def _service(self, model: SentimentModel) -> SentimentService:
        return SentimentService(model, self.settings,
                                on_batch=lambda stage, n: self.metrics.batch_size.labels(stage).observe(n),
                                on_layers=self.metrics.ran_layers, on_lower=self.aspects.remember)

    @property
    def model(self) -> SentimentModel:
        return self.sentiment.model

    async def adaptation_round(self, task: AdaptationRound) -> Answer:
        """Train this edge's update for an adaptation round (off the event loop)."""
        answer = await asyncio.to_thread(self.adaptation.answer, task, self.model)
        self.metrics.adaptation_rounds.labels(answer.status).inc()
        return answer

    async def score(self, texts: list[str], subject: str | None = None, *, tenant: str = "") -> list[Sentiment]:
        """Score texts; only a consenting user's texts (``subject``, of ``tenant``) may be sampled
        for review, and only that tenant's server keys may label them. Where ``tenant`` has topics,
        each result carries the text's aspects (computed here, never stored)."""
        service = self.sentiment  # a model swap mid-call: the aspects come from the model that scored
        results = await service.score(texts)
        if self.topic_book.get(tenant) is not None:
            results = await service.in_worker(self.aspects.attach, service.model, tenant, texts, results)
        self.metrics.observe_predictions(results)
        now = time.time()
        judged = [(r, t) for r, t in zip(results, texts, strict=False) if r.label != UNSUPPORTED]
        for r, _ in judged:
            self.drift.observe(r.label, r.confidence, now)
        if len(judged) == len(results):
            return self.quality.sample(results, texts, now, subject, tenant=tenant)
        sampled = iter(self.quality.sample([r for r, _ in judged], [t for _, t in judged], now, subject,
                                           tenant=tenant))
        return [r if r.label == UNSUPPORTED else next(sampled) for r in results]

    # --- use cases: the HTTP handlers translate to and from these ------------------------------
    async def record_events(self, user_id: str, events: list, context, *, tenant: str) -> IngestReport:
        """A user's events (the caller is authorized for the user, ``user_id`` scoped to the
        caller's ``tenant``): every check in one place, then ingest (score, profile, the tenant's
        cohorts), re-evaluate the tenant's cohort triggers, count."""
        settings = self.settings
        if not events:
            raise InvalidInput("events must hold at least one event", field="events")
        if len(events) > settings.max_events_per_request:
            raise LimitExceeded(f"events holds {len(events)} items; the limit is "
                                f"{settings.max_events_per_request} (EDGE_MAX_EVENTS_PER_REQUEST)", field="events")
        check_context(context, settings)
        for i, event in enumerate(events):
            validate_event(event, i, settings.max_text_chars, settings.max_id_chars)
        report = await self.ingestor.ingest(user_id, events, context, self.now(), tenant=tenant)
        self.triggers.evaluate(report.cohort, self.now(), tenant)  # a crossing is timed from here
        for result in report.results:
            self.metrics.events.labels(result.status, result.reason or "").inc()
        return report

    def observe_ranking(self, tenant: str, offered: list[str], top: list) -> None:
        """What a ranking offered and showed, for the exposure figures (item ids only)."""
        self.exposure.observe(tenant, offered, [item.id for item in top], self.now())
        explored = sum(item.exploration for item in top)
        self.metrics.shown(tenant, len(top) - explored, explored,
                           sum(item.reason.startswith(COLLABORATIVE_REASON) for item in top))

    def exposure_figures(self, now: float) -> dict[str, Figures]:
        """Per tenant, over the recent windows: this worker's counts and every other worker's last shared ones."""
        parts = [self.exposure.recent(now)]
        for index in (i for i in range(self.role.count) if i != self.role.index):
            peer = self.store.value(f"exposure|{index}")
            if peer and now - peer["at"] < 60:
                parts.append(msgspec.convert(peer["windows"], dict[int, dict[str, Counts]], strict=False))
        return {tenant: figures(counts) for tenant, counts in combined(parts).items()}

    # --- what the control plane streams, applied; what goes upstream, gathered ----------------
    def apply_priors(self, priors: dict, recent: dict) -> None:
        """Cohort priors over the horizon, and the merged recent windows trigger rules read."""
        self._use_priors(priors, recent)
        self._publish("priors", {"priors": priors, "recent": [[w, t, k, c] for (w, t, k), c in recent.items()]})

    def _use_priors(self, priors: dict, recent: dict) -> None:
        self.cohorts.set_remote(priors)
        self.cohorts.set_remote_windows(recent)

    def apply_rules(self, rules: list, version: int) -> None:
        self.triggers.set_rules(rules, version)
        self._publish("rules", {"version": version, "rules": rules})

    def apply_topics(self, sets: list[TopicSet], version: int) -> None:
        """Every tenant's topics (the whole state): a tenant no longer in it has none any more."""
        self._use_topics(sets)
        self._publish("topics", {"version": version, "sets": sets})

    def _use_topics(self, sets: list[TopicSet]) -> None:
        tenants = {s.tenant for s in sets}
        for gone in self._topic_tenants - tenants:
            self.topic_book.set(TopicSet(tenant=gone))
        for topic_set in sets:
            self.topic_book.set(topic_set)
        self._topic_tenants = tenants

    def apply_experiments(self, experiments: list, version: int) -> None:
        self.experiments.set(experiments, version)
        self._publish("experiments", {"version": version, "experiments": experiments})

    def _shared_trigger(self, rule: str, cohort: str, tenant: str) -> bool:
        return bool(self.store.value(f"trigger_state|{rule}|{tenant}|{cohort}", False))

    def _claim_transition(self, rule: str, cohort: str, tenant: str, active: bool) -> bool:
        """True when this worker's flip changes the node's shared state of a rule in a tenant's cohort."""
        key = f"trigger_state|{rule}|{tenant}|{cohort}"
        with self.store.transaction():
            if bool(self.store.value(key, False)) == active:
                return False
            self.store.set_value(key, active)
            return True

    def _publish(self, kind: str, payload) -> None:
        """The leading worker shares what it applied with the others (no-op with one worker)."""
        if self.role.shared and self.role.leader:
            seq = self.fleet.publish(kind, payload)
            if self._shared is not None:  # after the commit: a follower that sees it reads the store
                self._shared[0] = seq

    async def _follow(self) -> None:
        """Every worker of several: share this worker's prediction counts and trigger
        transitions, stop when the supervisor is gone; a following worker also applies what
        the leader published."""
        while True:
            await asyncio.sleep(FOLLOW_S)
            try:
                if os.getppid() != self._parent:
                    log.error("the supervisor is gone: worker %d stops", self.role.index)
                    os.kill(os.getpid(), signal.SIGTERM)
                    return
                if not self.role.leader:
                    self.catch_up(force=True)
                labels, bins = self.drift.recent(time.time())
                self.store.set_value(f"drift|{self.role.index}", {"sha": self.model_sha, "at": time.time(),
                                                                   "labels": labels, "bins": bins})
                self.pending_triggers()
                self._share_exposure()
            except Exception:  # keep following; the next poll retries
                log.exception("worker %d could not follow the leader", self.role.index)

    def _share_exposure(self) -> None:
        """This worker's exposure counts, for whichever worker answers a scrape (every few seconds, when changed)."""
        now = time.time()
        if not self.exposure.changed or now - self._exposure_shared < 5 * FOLLOW_S:
            return
        self.exposure.changed = False
        self._exposure_shared = now
        self.store.set_value(f"exposure|{self.role.index}", {"at": now, "windows": msgspec.to_builtins(
            self.exposure.recent(now), str_keys=True)})

    def catch_up(self, force: bool = False) -> None:
        """A following worker: apply whatever the leader published since the last call. Called
        before every request (a shared-memory number says whether anything was published: one
        integer read) and by the poll loop (``force``: the store itself is read)."""
        shared = self._shared
        if not force and (shared is None or shared[0] == self._fleet_seen):
            return
        if shared is not None:
            self._fleet_seen = shared[0]
        for kind, data in self.fleet.changed():
            if kind == "model":
                if data["sha"] not in (self.model_sha, self._model_target):
                    self._model_target = data["sha"]
                    self._model_task = asyncio.get_running_loop().create_task(self._follow_model(data))
            else:
                self._follow_one(kind, data)

    async def workers_serve(self, sha: str, timeout_s: float = 120.0) -> None:
        """The leader, after a swap: wait until every other worker serves ``sha`` too (each says
        so in the store), so an ACK means the whole node serves it; past ``timeout_s`` the
        stragglers are logged (they keep trying) and the leader goes on."""
        if not (self.role.shared and self.role.leader):
            return
        deadline = time.monotonic() + timeout_s
        while lagging := [i for i in range(1, self.role.count) if self.store.value(f"serving|{i}") != sha]:
            if time.monotonic() > deadline:
                log.error("workers %s do not serve %s yet after %.0f s; they keep trying", lagging, sha[:12],
                          timeout_s)
                return
            await asyncio.sleep(0.1)

    async def _follow_model(self, data) -> None:
        try:
            model = await self.updates.load(Path(data["path"]))
            await self.swap_model(model, data["sha"])
            self.store.set_value(f"serving|{self.role.index}", data["sha"])
        except Exception:
            log.exception("worker %d could not load the model the leader swapped to (%s)", self.role.index,
                          data["path"])
            self._model_target = None
            self.fleet.forget("model")  # the next poll reads it again and tries again

    def _follow_one(self, kind: str, data) -> None:
        if kind == "apps":
            self.set_apps(msgspec.convert(data, AppSet))
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
            self.neighbours.use(msgspec.convert(data, NeighbourTable))

    def drift_counts(self, now: float) -> tuple[list[int], list[int]]:
        """Recent prediction counts of this node: this worker's, plus every other worker's last
        shared counts for the same model."""
        labels, bins = self.drift.recent(now)
        for index in (i for i in range(self.role.count) if i != self.role.index):
            peer = self.store.value(f"drift|{index}")
            if peer and peer["sha"] == self.model_sha and now - peer["at"] < 4 * FOLLOW_S + 5:
                labels = [a + b for a, b in zip(labels, peer["labels"], strict=False)]
                bins = [a + b for a, b in zip(bins, peer["bins"], strict=False)]
        return labels, bins

    def apply_segments(self, segments) -> None:
        """The learned segments the control plane published (centroids and labels)."""
        self._publish("segments", segments)
        before = self.segments.version
        if self.segments.apply(segments):
            # Said once per published version (a set still seeding is re-sent often: debug only).
            level = logging.INFO if segments.segments and segments.version != before else logging.DEBUG
            log.log(level, "learned segments v%d: %s", segments.version,
                    ", ".join(f"{g.id} {g.label}" for g in segments.segments) or f"seeding (k={segments.k})")
        self.metrics.segments_version.set(self.segments.version)

    def model_outputs(self) -> dict:
        """Recent predictions against the model's reference, for drift upstream: counts only."""
        label_psi, confidence_psi, _, _ = self.drift_status()
        labels, bins = self.drift_counts(time.time())
        reference = self.drift.reference
        return {"labels": self.drift.labels, "label_counts": labels, "confidence_counts": bins,
                "reference_labels": [reference.get("labels", {}).get(n, 0.0) for n in self.drift.labels],
                "reference_confidence": reference.get("confidence", []), "label_psi": label_psi,
                "confidence_psi": confidence_psi}

    def refresh_gauges(self) -> None:
        """Gauges read from the store, refreshed when /metrics is scraped."""
        self.drift_status()
        self.metrics.outbox_pending.set(self.store.outbox_pending())
        self.privacy_backlog_s(time.time())
        if self.settings.control_plane:
            self.metrics.sync_last_success.set(self.last_sync())
        self.metrics.outbox_capacity.set(self.settings.privacy_outbox_max)
        self.metrics.store_bytes.set(self.store.used_bytes())
        self.metrics.store_max_bytes.set(self.store.max_bytes)
        for tenant, f in self.exposure_figures(time.time()).items():
            self.metrics.exposure(tenant, f)

    def drift_status(self) -> tuple[float, float, int, bool]:
        """(label PSI, confidence PSI, predictions, drifted) over the recent windows, into the metrics too."""
        label_psi, confidence_psi, n = self.drift.score_counts(*self.drift_counts(time.time()))
        drifted = monitoring.drifted(label_psi, confidence_psi, n, threshold=self.settings.drift_psi_threshold,
                                     min_predictions=self.drift.min_predictions)
        self.metrics.drift_psi.labels("labels").set(label_psi)
        self.metrics.drift_psi.labels("confidence").set(confidence_psi)
        self.metrics.drift.set(int(drifted))
        return label_psi, confidence_psi, n, drifted

    async def start(self) -> None:
        await self.sentiment.start()
        if self.role.leader:  # one purge per node, not one per worker
            self._maintenance = asyncio.create_task(self._maintain(), name="store-maintenance")
        if self.role.shared:
            self.store.set_value(f"serving|{self.role.index}", self.model_sha)
            self._follower = asyncio.create_task(self._follow(), name="share-with-the-other-workers")
        self._disk_watch = asyncio.create_task(self._watch_disk(), name="disk-watch")
        if self.sync is not None:
            self.sync.start()

    def held_out(self, unit: str, segment: str | None = None, tenant: str = "") -> str | None:
        """The experiment whose holdout arm this unit (of ``tenant``) is in, if any (no
        personalization then)."""
        return next((a.experiment for a in self.experiments.assignments(unit, segment, tenant) if a.holdout),
                    None)

    def sync_state(self) -> str:
        """The Sync stream as /readyz reports it (a following worker reports the leader's)."""
        if not self.settings.control_plane:
            return "standalone"
        connected = self.sync.connected if self.sync is not None else bool(self.store.value("sync_connected", False))
        return "connected" if connected else "disconnected"

    def last_sync(self) -> float:
        """When the node last caught up with the privacy log: the leader's stream knows; a
        following worker reads it from the store on every call, so the moment the leader catches
        up (or falls behind) every worker answers alike."""
        if self.sync is not None:
            return self.sync.last_success
        return float(self.store.value("sync_last_success", 0.0) or 0.0)

    def personal_allowed(self) -> bool:
        """False while failing closed: too long without a sync with the privacy log."""
        if not self.settings.control_plane:
            return True
        allowed = time.time() - self.last_sync() <= self.settings.fail_closed_after_s
        self.metrics.serving_personal.set(int(allowed))
        return allowed

    async def swap_model(self, model: SentimentModel, sha: str) -> None:
        """Warm the new model up, route new requests to it, let in-flight ones finish on the old."""
        fresh = self._service(model)
        await fresh.start()
        old, self.sentiment, self.model_sha = self.sentiment, fresh, sha
        self.drift = DriftMonitor(model.manifest.reference, model.label_set, window_s=self.drift.window_s)
        self.metrics.model(model.name, model.version)
        log.info("swapped model to %s %s (%s)", model.name, model.version, sha[:12])
        await old.close()  # drains the old batchers

    def _write_refused(self, reason: str) -> None:
        self.metrics.writes_refused.labels(reason).inc()
        if reason != "disk_full":
            return
        told = self._shared is not None and bool(self._shared[1])  # another worker of this node said it
        if self._shared is not None:
            self._shared[1] = 1
        if not self._reported_full and not told:  # said once per episode
            self._reported_full = True
            log.error("the disk of %s is full: writes are refused (507), deletions use the reserve; "
                      "readiness is false until space returns", self.settings.data_dir)
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
                log.warning("disk space is back in %s: writes accepted again", self.settings.data_dir)
            self.store.full = self._reported_full = False
            if self._shared is not None:
                self._shared[1] = 0
            self.metrics.storage_full.set(0)
        return not self.store.full

    async def _watch_disk(self) -> None:
        while True:
            await asyncio.sleep(self.settings.disk_check_interval_s)
            try:
                await asyncio.to_thread(self.check_disk)
            except Exception:
                log.exception("disk check failed")

    async def _maintain(self) -> None:
        while True:
            await asyncio.sleep(self.settings.maintenance_interval_s)
            try:
                removed = await asyncio.to_thread(self.store.expire)
                self.metrics.store_records.set(len(self.store))
                if removed:
                    log.info("purged %d expired records", removed)
            except Exception:  # keep the loop alive; the next round retries
                log.exception("store maintenance failed")

    async def close(self) -> None:
        if self.sync is not None:
            await self.sync.stop()
        for task in (self._maintenance, self._disk_watch, self._follower, self._model_task):
            if task is not None:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        await self.sentiment.close()
        self.store.close()

    @staticmethod
    def now() -> float:
        return time.time()


def running(state) -> EdgeNode:
    """The node behind an app's state, or 503 while it starts or stops."""
    node: EdgeNode | None = state.get("node")
    if node is None:
        raise NotReady("model or store is not ready yet")
    return node
