"""The edge's composition root: every part of one edge node built from its settings, each
handed its collaborators explicitly (the role of Unleash Edge's edge_builder.rs).

:func:`build` is the only place that knows which part uses which; the parts themselves
declare what they use in their constructors. :func:`preflight` checks, before the server binds
its port, what would stop a node from starting.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from edge_node import app_sources
from edge_node.adaptation import EdgeAdaptation
from edge_node.app_sources import AppsInUse
from edge_node.aspects.analyzer import AspectAnalyzer
from edge_node.aspects.book import TopicBook
from edge_node.config import EdgeSettings
from edge_node.disk import DiskReserve
from edge_node.disk_watch import DiskWatch
from edge_node.errors import BundleError, ConfigError
from edge_node.fleet import Fleet
from edge_node.fleet_state import FleetState
from edge_node.follower import Follower
from edge_node.health import NodeHealth
from edge_node.identity import Identities
from edge_node.ingest import Events, Ingestor
from edge_node.link import SyncLink
from edge_node.metrics import EdgeMetrics
from edge_node.node import EdgeNode
from edge_node.node_state import NodeState
from edge_node.peer_counts import PeerCounts
from edge_node.personalization.cohorts import CohortBook
from edge_node.personalization.cooccurrence import Neighbours, PairBook
from edge_node.personalization.decisions import Personalizer
from edge_node.personalization.experiments import ExperimentBook
from edge_node.personalization.exposure import ExplorationLog, ExposureBook
from edge_node.personalization.profiles import Tuning
from edge_node.personalization.ranking import ColdStart, Weights
from edge_node.personalization.segments import SegmentBook
from edge_node.personalization.triggers import TriggerBook
from edge_node.privacy import PrivacyBook, PrivacyLog, Pseudonymizer
from edge_node.quality import QualityBook
from edge_node.role import SOLE, Role
from edge_node.serving import Serving
from edge_node.store import EdgeStore
from edge_node.sync.agent import SyncAgent
from edge_node.sync.model_updates import ModelUpdates
from edge_node.user_data import UserData
from sentiedge_core import key_files, signing
from sentiedge_core.access import Gatekeeper
from sentiedge_core.inference import SentimentModel

log = logging.getLogger("edge_node")


def pseudonym_key(store: EdgeStore, settings: EdgeSettings) -> bytes:
    """EDGE_PSEUDONYM_KEY, or the key generated into ``pseudonym.key`` (0600) on first start;
    refused when it is not the key the store was written with."""
    try:
        key = key_files.choose_key(settings.pseudonym_key, settings.data_path / "pseudonym.key",
                                   legacy=store.stored_secret("pseudonym"),
                                   fingerprint=NodeState(store).pseudonym_fingerprint, setting="EDGE_PSEUDONYM_KEY")
    except key_files.KeyRefused as exc:
        raise ConfigError(str(exc)) from None
    store.forget_secret("pseudonym")  # moved out to pseudonym.key (or never used)
    NodeState(store).pseudonym_fingerprint = key_files.fingerprint(key)
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
    from sentiedge_core import bundle, deep

    assigned = ModelUpdates(settings.data_path / "models", settings.inference_threads).current() \
        if settings.control_plane else None
    path = Path(assigned or settings.model_path)
    if not (path / "manifest.json").is_file():
        raise ConfigError(f"{path} is not a model bundle (no manifest.json): check --model-dir / EDGE_MODEL_DIR")
    manifest = bundle.verify(path)
    if settings.deep_stage:
        deep.check(path, manifest)
    if settings.trusted_keys:
        try:
            signing.verify(path, signing.trusted_keys(settings.trusted_keys))
        except BundleError as exc:
            raise BundleError(f"{path}: {exc.message} (EDGE_TRUSTED_KEYS; sign it with control-plane models sign)") \
                from None


def development_origins(settings: EdgeSettings) -> list[str]:
    return [f"http://localhost:{settings.port}", f"http://127.0.0.1:{settings.port}"]


def build(settings: EdgeSettings, model: SentimentModel, model_sha: str = "", *, role: Role = SOLE,
          shared=None) -> EdgeNode:
    """One edge node (or, with ``role``, one worker of several sharing ``shared`` memory), built
    from ``settings`` around ``model``; :meth:`EdgeNode.start` starts what runs in the background."""
    metrics = EdgeMetrics(low_confidence=settings.low_confidence)
    store = EdgeStore(settings.data_path, retention_s=settings.retention_s, fsync=settings.store_fsync,
                      outbox_max=settings.privacy_outbox_max, max_bytes=settings.store_max_bytes,
                      lock=not role.shared, hot_records=0 if role.shared else 100_000)
    try:
        key = pseudonym_key(store, settings)
        return _parts(settings, model, model_sha, role, shared, metrics, store, key)
    except BaseException:
        store.close()
        raise


def _parts(settings: EdgeSettings, model: SentimentModel, model_sha: str, role: Role, shared,
           metrics: EdgeMetrics, store: EdgeStore, key: bytes) -> EdgeNode:
    state = NodeState(store)
    window_s = settings.cohort_window_minutes * 60
    cohorts = CohortBook(store, window_s=window_s, min_size=settings.cohort_min_size,
                         max_per_user=settings.max_cohorts_per_user, horizon_s=settings.cohort_horizon_hours * 3600,
                         prior_cache_s=settings.cohort_prior_refresh_s,
                         max_categories=settings.max_categories_per_cohort,
                         max_cohorts=settings.max_cohorts_per_window)
    reserve = DiskReserve(settings.data_path / "reserve.bin", int(settings.disk_reserve_mb * (1 << 20)))
    reserve.ensure()
    disk = DiskWatch(store, reserve, metrics=metrics, data_dir=settings.data_dir,
                     interval_s=settings.disk_check_interval_s, shared=shared)
    store.on_refused = disk.write_refused
    tuning = Tuning(sentiment_window_s=settings.sentiment_window_minutes * 60,
                    half_life_s=settings.affinity_half_life_days * 86400,
                    prior_weight=settings.sentiment_prior_weight, max_categories=settings.max_categories_per_profile)
    segments = SegmentBook(store, tuning, dimension=settings.vector_dim, window_s=window_s,
                           min_size=settings.cohort_min_size)
    pairs = PairBook(store, window_s=settings.cooccurrence_window_minutes * 60, min_users=settings.cohort_min_size,
                     max_items=settings.cooccurrence_max_items)
    neighbours = Neighbours(store, both_ways=settings.collaborative_both_ways)
    exposure = ExposureBook(window_s=settings.exposure_window_minutes * 60)
    exploration = ExplorationLog(store)
    privacy = PrivacyBook(store, cohorts, Pseudonymizer(key), upstream=bool(settings.control_plane),
                          reserve=reserve, segments=segments, pairs=pairs)
    experiments = ExperimentBook(store, window_s=window_s, min_size=settings.cohort_min_size,
                                 horizon_s=settings.cohort_horizon_hours * 3600)
    triggers = TriggerBook(cohorts, on_activation=lambda rule: metrics.trigger_activations.labels(rule).inc(),
                           on_served=metrics.trigger_signal_to_action.observe,
                           claim=state.flip_trigger if role.shared else None,
                           shared_active=state.trigger_active if role.shared else None)
    identities = Identities(privacy, cohorts, tuning, max_aliases=settings.max_aliases_per_user)
    topic_book = TopicBook()  # each tenant's topics, as the control plane streams them
    aspects = AspectAnalyzer(topic_book, max_clauses=settings.aspect_max_clauses,
                             max_clauses_per_request=settings.aspect_max_clauses_per_request,
                             on_analysed=metrics.analysed_aspects)
    quality = QualityBook(store, rate=settings.label_sample_rate, labels=model.label_set)
    serving = Serving(model, settings, metrics=metrics, aspects=aspects, topic_book=topic_book, quality=quality,
                      model_sha=model_sha)
    link = SyncLink(settings, state=state, store=store, metrics=metrics, role=role)
    ingestor = Ingestor(privacy, cohorts, tuning, retention_s=settings.retention_s, score=serving.score,
                        segments=segments, pairs=pairs, exploration=exploration,
                        on_exploration_click=metrics.explored_click)
    personalizer = Personalizer(
        store, privacy, cohorts, tuning, dimension=settings.vector_dim,
        weights=Weights(personal=settings.weight_personal, cohort=settings.weight_cohort,
                        popularity=settings.weight_popularity, collaborative=settings.weight_collaborative),
        on_signal_used=metrics.signal_to_action.observe, cache_s=settings.decision_cache_ms / 1000,
        allow_personal=link.personal_allowed, held_out=experiments.held_out, segments=segments,
        cache_bytes=int(settings.decision_cache_mb * (1 << 20)), neighbours=neighbours, exploration=exploration,
        cold_start=ColdStart(events=settings.cold_start_events, popularity=settings.weight_popularity_cold_start),
        no_table_popularity=settings.weight_popularity_no_table)
    adaptation = EdgeAdaptation(store, enabled=settings.adapt, min_labels=settings.adapt_min_labels,
                                max_labels=settings.adapt_max_labels, max_epsilon=settings.adapt_max_epsilon)
    updates = ModelUpdates(settings.data_path / "models", settings.inference_threads,
                           signing.trusted_keys(settings.trusted_keys))
    # Each worker admits its share of the node's rate limits (the kernel spreads connections evenly).
    access = Gatekeeper(key_rate=settings.rate_limit_per_key / role.count,
                        address_rate=settings.rate_limit_per_address / role.count,
                        token_cache=settings.token_cache_size,
                        on_refused=lambda reason: metrics.refusals.labels(reason).inc())
    apps = AppsInUse(store, access=access, cohorts=cohorts, metrics=metrics)
    apps.use(app_sources.initial(store, apps_file=settings.apps_file, standalone=not settings.control_plane,
                                 data_dir=settings.data_path, origins=development_origins(settings)))
    peers = PeerCounts(state, role, exposure)
    health = NodeHealth(settings, metrics=metrics, serving=serving, peers=peers, link=link, store=store,
                        quality=quality)
    publications = FleetState(state, role, shared)
    fleet = Fleet(settings, state=state, metrics=metrics, cohorts=cohorts, experiments=experiments,
                  segments=segments, triggers=triggers, neighbours=neighbours, pairs=pairs, topic_book=topic_book,
                  apps=apps, adaptation=adaptation, updates=updates, serving=serving, publications=publications,
                  link=link, health=health)
    privacy_log = PrivacyLog(privacy, state, metrics)
    sync = None
    if settings.control_plane and role.leader:
        sync = SyncAgent(fleet, privacy_log=privacy_log, state=state, store=store, metrics=metrics,
                         target=settings.control_plane, node_id=settings.node_name, region=settings.region,
                         backoff_max_s=settings.sync_backoff_max_s, audit_log=settings.sync_audit_log or None,
                         tls=(settings.tls_ca, settings.tls_cert, settings.tls_key) if settings.tls_ca else None,
                         enrollment_token=settings.enrollment_token,
                         windows=(int(window_s), int(pairs.window_s)), stall_s=settings.sync_stall_s)
        link.agent = sync
    follower = Follower(role, publications=publications, fleet=fleet, serving=serving, updates=updates, peers=peers,
                        state=state) if role.shared else None
    return EdgeNode(
        settings=settings, role=role, metrics=metrics, store=store, state=state, access=access, privacy=privacy,
        privacy_log=privacy_log,
        cohorts=cohorts, segments=segments, pairs=pairs, neighbours=neighbours, experiments=experiments,
        triggers=triggers, identities=identities, topic_book=topic_book, aspects=aspects, quality=quality,
        adaptation=adaptation, personalizer=personalizer, serving=serving, link=link, health=health, disk=disk,
        users=UserData(settings, store=store, privacy=privacy, identities=identities, tuning=tuning,
                       metrics=metrics, clock=time.time),
        events=Events(settings, ingestor=ingestor, triggers=triggers, metrics=metrics, exposure=exposure,
                      clock=time.time),
        fleet=fleet, follower=follower, sync=sync)
