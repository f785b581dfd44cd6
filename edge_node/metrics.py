"""Prometheus metrics of one edge node, on a registry of its own (one per app).

Under ``--workers N`` prometheus_client's multiprocess mode is on (the supervisor sets
``PROMETHEUS_MULTIPROC_DIR``): every worker writes its values to files there and any worker
answers a scrape with all of them — counters and histograms summed over the workers, each
gauge the value a worker set last. The model info is the answering worker's.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

from sentiedge_core.inference import Sentiment

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
SIGNAL_BUCKETS = (0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 14400, 86400)
CONTENT_TYPE = CONTENT_TYPE_LATEST


def _gauge(name: str, documentation: str, labelnames: Iterable[str] = (), **kwargs) -> Gauge:
    """A gauge; across workers, the value set last counts."""
    return Gauge(name, documentation, labelnames, multiprocess_mode="mostrecent", **kwargs)


class EdgeMetrics:
    def __init__(self, *, low_confidence: float) -> None:
        self.registry = CollectorRegistry()
        self.low_confidence = low_confidence
        r = self.registry
        self.request_seconds = Histogram("sentiedge_http_request_duration_seconds", "HTTP request latency",
                                         ["method", "route", "status"], buckets=LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("sentiedge_inference_batch_size", "Texts per ONNX run", ["stage"],
                                    buckets=BATCH_BUCKETS, registry=r)
        self.info_registry = CollectorRegistry()  # Info has no multiprocess mode: always this worker's
        self.model_info = Info("sentiedge_model", "The model bundle being served", registry=self.info_registry)
        self.predictions = Counter("sentiedge_predictions_total", "Sentiment predictions by label and stage",
                                   ["label", "stage"], registry=r)
        self.transformer_layers = Counter("sentiedge_transformer_texts_total",
                                          "Escalated texts by the encoder layers they ran (fewer: an early exit "
                                          "answered them)", ["layers"], registry=r)
        self.deep_texts = Counter("sentiedge_deep_texts_total",
                                  "Texts the deep stage re-scored (EDGE_DEEP_STAGE)", registry=r)
        self.deep_over_budget = Counter("sentiedge_deep_texts_over_budget_total",
                                        "Texts that qualified for the deep stage but kept the cascade's answer: past "
                                        "EDGE_DEEP_CPU_SHARE, or e5 busy too long", registry=r)
        self.deep_seconds = Histogram("sentiedge_deep_text_seconds",
                                      "The deep stage's e5 time per text it re-scored (one call's time over its texts)",
                                      buckets=(0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64), registry=r)
        self.aspect_clauses = Counter("sentiedge_aspect_clauses_total",
                                      "Clauses analysed for topics (aspect sentiment)", registry=r)
        self.aspect_truncated = Counter("sentiedge_aspect_texts_truncated_total",
                                        "Texts left without aspects: their request's clause budget was spent",
                                        registry=r)
        self.low_confidence_total = Counter("sentiedge_low_confidence_predictions_total",
                                            "Predictions whose confidence is under the low-confidence threshold",
                                            registry=r)
        self.confidence = Histogram("sentiedge_prediction_confidence", "Confidence of predictions",
                                    buckets=(0.55, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0), registry=r)
        self.signal_to_action = Histogram(
            "sentiedge_signal_to_action_seconds",
            "From an event changing a profile to the first decision (personalize/rank) that uses it",
            buckets=SIGNAL_BUCKETS, registry=r)
        self.events = Counter("sentiedge_events_total", "Events received, by outcome", ["outcome", "reason"],
                              registry=r)
        self.adaptation_rounds = Counter("sentiedge_adaptation_rounds_total",
                                         "Federated adaptation rounds answered, by status (ok, too_few_labels, ...)",
                                         ["status"], registry=r)
        self.privacy_actions = Counter("sentiedge_privacy_actions_total", "Deletions and consent withdrawals applied",
                                       ["kind"], registry=r)
        self.identity_links = Counter("sentiedge_identity_links_total",
                                      "Anonymous ids linked to known users (POST /v1/users/{id}/aliases)", ["result"],
                                      registry=r)
        self.decisions = Counter("sentiedge_decisions_total", "Personalization decisions by vector source",
                                 ["source"], registry=r)
        self.refusals = Counter("sentiedge_auth_refusals_total",
                                "Requests refused for their credentials or a rate limit, by reason", ["reason"],
                                registry=r)
        self.apps_known = _gauge("sentiedge_apps", "Client apps this edge verifies keys and tokens for", registry=r)
        self.sync_connected = _gauge("sentiedge_sync_connected", "1 while the Sync stream is open", registry=r)
        self.window_mismatch = _gauge(
            "sentiedge_window_mismatch", "1 while the control plane says this edge's EDGE_COHORT_WINDOW_MINUTES or "
            "EDGE_COOCCURRENCE_WINDOW_MINUTES differs from its own (what is sent of that length is refused; /readyz "
            "names it)", registry=r)
        self.sync_cursor = _gauge("sentiedge_sync_privacy_cursor", "Last privacy sequence number applied", registry=r)
        self.sync_last_success = _gauge("sentiedge_sync_last_success_timestamp_seconds",
                                       "When this edge was last in sync with the privacy log", registry=r)
        self.serving_personal = _gauge("sentiedge_serving_personal",
                                      "1 when per-user vectors are served, 0 while failing closed", registry=r)
        self.outbox_pending = _gauge("sentiedge_privacy_outbox_pending",
                                    "Deletions and withdrawals made here not yet filed with the control plane",
                                    registry=r)
        self.outbox_oldest = _gauge("sentiedge_privacy_outbox_oldest_seconds",
                                   "Age of the oldest deletion or withdrawal made here and not yet filed with the "
                                   "control plane (0: none waits); /readyz reports it as stalled past "
                                   "EDGE_PRIVACY_BACKLOG_MAX_S", registry=r)
        self.filings_resent = Counter("sentiedge_privacy_filings_resent_total",
                                      "Filings sent again on the same stream because no receipt came in time (the "
                                      "control plane refused them for its rate limit, or could not store them)",
                                      registry=r)
        self.sync_sessions = Counter("sentiedge_sync_sessions_total",
                                     "Sync streams the control plane welcomed (each reconnect adds one)", registry=r)
        self.sync_stalls = Counter("sentiedge_sync_stalls_total",
                                   "Sync streams replaced because a heartbeat went unreceipted for EDGE_SYNC_STALL_S",
                                   registry=r)
        self.segments_version = _gauge("sentiedge_segments_version",
                                      "Version of the learned segments this node assigns users to (0: none yet)",
                                      registry=r)
        self.neighbours_version = _gauge("sentiedge_neighbours_version",
                                         "Version of the item-neighbour table (the collaborative signal) per tenant",
                                         ["tenant"], registry=r)
        self.rank_shown = Counter("sentiedge_rank_shown_total",
                                  "Items returned in a /v1/rank top, per tenant, by slot (ranked or exploration)",
                                  ["tenant", "slot"], registry=r)
        self.rank_collaborative = Counter("sentiedge_rank_collaborative_total",
                                          "Items of a /v1/rank top placed by the collaborative signal "
                                          "(\"often chosen with X\"), per tenant", ["tenant"], registry=r)
        self.exploration_clicks = Counter("sentiedge_exploration_clicks_total",
                                          "Clicks on an item an exploration slot showed the user in the day before, "
                                          "per tenant", ["tenant"], registry=r)
        self.exposure_items = _gauge("sentiedge_exposure_catalogue_items",
                                     "Distinct items offered to /v1/rank over the recent exposure windows, per tenant",
                                     ["tenant"], registry=r)
        self.exposure_share = _gauge("sentiedge_exposure_catalogue_share",
                                     "Share of the offered items shown in a top at least once (recent windows)",
                                     ["tenant"], registry=r)
        self.exposure_gini = _gauge("sentiedge_exposure_gini",
                                    "Concentration of what the tops showed over the offered items (Gini: 0 even, "
                                    "1 one item takes every slot)", ["tenant"], registry=r)
        self.trigger_activations = Counter("sentiedge_trigger_activations_total", "Cohort trigger activations",
                                           ["rule"], registry=r)
        self.trigger_signal_to_action = Histogram(
            "sentiedge_trigger_signal_to_action_seconds",
            "From a cohort signal crossing a rule's threshold to the action first being served",
            buckets=SIGNAL_BUCKETS, registry=r)
        self.drift_psi = _gauge("sentiedge_drift_psi", "Population stability index of recent predictions against "
                               "the model's reference (labels, confidence)", ["what"], registry=r)
        self.drift = _gauge("sentiedge_drift", "1 when either PSI is over EDGE_DRIFT_PSI_THRESHOLD", registry=r)
        self._request_children: dict = {}
        self._decision_children: dict = {}
        self.store_records = _gauge("sentiedge_store_records", "Records in the edge store", registry=r)
        self.outbox_capacity = _gauge("sentiedge_privacy_outbox_capacity",
                                     "Most privacy requests that may wait for the control plane "
                                     "(EDGE_PRIVACY_OUTBOX_MAX)",
                                     registry=r)
        self.store_bytes = _gauge("sentiedge_store_bytes", "Bytes the edge store's database holds in use", registry=r)
        self.store_max_bytes = _gauge("sentiedge_store_max_bytes", "The store's size budget (EDGE_STORE_MAX_BYTES; "
                                     "0: none)", registry=r)
        self.store_evictions = Counter("sentiedge_store_evictions_total", "Cold records evicted to stay within the "
                                       "store's size budget, by kind", ["kind"], registry=r)
        self.storage_full = _gauge("sentiedge_storage_full", "1 while the disk is full (writes refused, deletions "
                                  "served from the reserve)", registry=r)
        self.writes_refused = Counter("sentiedge_writes_refused_total", "Writes refused, by reason", ["reason"],
                                      registry=r)
        self.slow_clients = Counter("sentiedge_slow_clients_total", "Connections closed for sending their headers or "
                                    "body too slowly", ["what"], registry=r)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        child = self._request_children.get(key)
        if child is None:  # labels() takes a lock; keep the children it hands out
            child = self._request_children[key] = self.request_seconds.labels(method, route, str(status))
        child.observe(seconds)

    def decided(self, source: str) -> None:
        child = self._decision_children.get(source)
        if child is None:
            child = self._decision_children[source] = self.decisions.labels(source)
        child.inc()

    def shown(self, tenant: str, ranked: int, explored: int, collaborative: int) -> None:
        """One /v1/rank top: its ranked and exploration slots, and the items the collaborative signal placed."""
        self.rank_shown.labels(tenant, "ranked").inc(ranked)
        if explored:
            self.rank_shown.labels(tenant, "exploration").inc(explored)
        if collaborative:
            self.rank_collaborative.labels(tenant).inc(collaborative)

    def explored_click(self, tenant: str) -> None:
        self.exploration_clicks.labels(tenant).inc()

    def exposure(self, tenant: str, figures) -> None:
        self.exposure_items.labels(tenant).set(figures.catalogue)
        self.exposure_share.labels(tenant).set(figures.share)
        self.exposure_gini.labels(tenant).set(figures.gini)

    def model(self, name: str, version: str) -> None:
        self.model_info.info({"name": name, "version": version})

    def ran_layers(self, layers: list[int]) -> None:
        for n in layers:
            self.transformer_layers.labels(str(n)).inc()

    def ran_deep(self, texts: int, seconds: float) -> None:
        self.deep_texts.inc(texts)
        for _ in range(texts):
            self.deep_seconds.observe(seconds / texts)

    def analysed_aspects(self, clauses: int, truncated: int) -> None:
        self.aspect_clauses.inc(clauses)
        self.aspect_truncated.inc(truncated)

    def observe_predictions(self, results: list[Sentiment]) -> None:
        for s in results:
            self.predictions.labels(s.label, s.stage).inc()
            self.confidence.observe(s.confidence)
            if s.confidence < self.low_confidence:
                self.low_confidence_total.inc()

    def render(self) -> bytes:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            every_worker = CollectorRegistry()
            MultiProcessCollector(every_worker)
            return generate_latest(every_worker) + generate_latest(self.info_registry)
        return generate_latest(self.registry) + generate_latest(self.info_registry)
