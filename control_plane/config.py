"""Control-plane settings: every field is a ``CP_*`` variable and a ``control-plane serve`` flag."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import msgspec

from control_plane.errors import ConfigError
from sentiedge_core import settings_loader

PREFIX = "CP_"


class CpSettings(msgspec.Struct, frozen=True, kw_only=True):
    host: str = "127.0.0.1"
    port: int = 50051
    data_dir: str = "var/control-plane"
    # postgresql://... to share state between control-plane replicas; empty: SQLite in data_dir.
    database_url: str = ""
    # Operator tokens "name:token,name:token"; empty: one is generated into the data dir.
    admin_tokens: str = ""
    # Key of the keyed hash that pseudonymizes user ids: the same value as every edge's
    # EDGE_PSEUDONYM_KEY. Empty: a random key kept in the data dir (then give it to the edges).
    pseudonym_key: str = ""
    trusted_keys: str = ""  # Ed25519 public keys: pushes must be signed by one of them
    # mTLS: all three, or none (plain gRPC, development only). With TLS no plain port is opened.
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    # Plain gRPC: every node needs an enrolled credential, on loopback too (`make run` enrolls
    # its edge). Under mTLS the certificate is the credential. The old development mode —
    # anonymous nodes on a loopback control plane — survives only behind this explicit flag.
    allow_anonymous_nodes: bool = False
    require_node_credentials: bool = True  # kept for old configurations; false changes nothing now
    max_node_cohort_users: int = 10_000  # most users one node may claim for one cohort and window
    new_node_cohort_users: int = 100  # most users a node with no history may claim per cell
    max_node_cohorts_per_window: int = 2000  # distinct cohort cells one node may hold per tenant and window
    cohort_growth: float = 2.0  # a node's users per cell may grow by this factor per cohort_growth_period_s
    # the time (not heartbeats) over which a node's cap may grow by cohort_growth
    cohort_growth_period_s: float = 3600.0
    # One node's share of any merged output that other nodes also report (cohort cells and priors,
    # segment rounds and seeds, experiment arms): at most this fraction (control_plane.influence).
    max_node_share: float = 0.75
    # Privacy filings one edge may send: a bucket of filings_burst_per_node, refilled at
    # filings_per_node_per_s. The burst takes an honest burst at once (1,000 deletions made at one
    # edge are filed in a second or two); the rate bounds a rogue node once its burst is spent.
    filings_per_node_per_s: float = 20.0
    filings_burst_per_node: float = 1000.0
    # Entries every node applied are compacted after this long (subject blanked, proof kept, new
    # nodes start after them). Keep it longer than the user tokens' lifetime: an edge that never saw
    # a deletion cannot refuse a token's consent claim from before it.
    privacy_compact_after_s: float = 86400.0
    maintenance_interval_s: float = 600.0  # cohort pruning and privacy-log compaction
    metrics_port: int = 0  # Prometheus /metrics on this port (0: off)
    heartbeat_interval_s: float = 5.0
    stale_after_s: float = 60.0
    cohort_min_size: int = 50
    cohort_horizon_hours: float = 24.0
    # The edges' cohort window (EDGE_COHORT_WINDOW_MINUTES must equal it): cells of another length,
    # or not starting where such a window starts, are refused; topic trends count in these windows
    cohort_window_minutes: float = 30.0
    segments: int = 8  # learned segments (k of the federated k-means); 0: off
    segment_decay: float = 0.5  # weight a segment's history keeps per round (lower follows change faster)
    segment_round_delay_s: float = 10.0  # sums wait this long so one window's sums from every edge share a round
    segment_seed_min_nodes: int = 2  # seeding waits for seed clusters from this many distinct nodes
    # The collaborative signal: item co-occurrence merged per tenant into an item-neighbour table
    cooccurrence_horizon_days: float = 30.0  # how far back the tables look
    # The edges' co-occurrence window (EDGE_COOCCURRENCE_WINDOW_MINUTES must equal it): windows of
    # another length, or not starting where such a window starts, are refused
    cooccurrence_window_minutes: float = 1440.0
    # a pair fewer nodes report is left out where the others carry comparable users of one of its items
    cooccurrence_min_nodes: int = 2
    neighbours_top_m: int = 50  # neighbours kept per item
    neighbours_max_items: int = 5000  # items per tenant's table: those chosen by the most users
    neighbours_shrink: float = 5.0  # similarity x users / (users + shrink): pairs seen by few users count less
    # a tenant's table is rebuilt from heartbeats at most this often (0: on every heartbeat with windows)
    neighbours_rebuild_min_s: float = 10.0
    # An edge's exposures per experiment arm, cohort and window count at most its cohort cap times this.
    experiment_exposures_per_user: int = 20
    adapt_min_labels: int = 50  # labels an edge needs before its update counts in an adaptation round
    adapt_round_timeout_s: float = 120.0  # an adaptation round closes when every edge answered or after this
    adapt_delta: float = 1e-5  # the δ of the (ε, δ) the privacy ledger reports
    # A labelled CSV (text,label; label 1 = positive) the control plane keeps and edges never see: an
    # adaptation candidate scoring worse on it than its base is refused. Empty: the shipped
    # models/out_of_domain.csv.
    adapt_probe: str = ""
    canary_auto: bool = False  # promote a better canary / roll back a worse one on its own (p < 0.05)
    canary_min_labels: int = 200  # labels each side needs before the automatic gate acts
    # Topic trends: the last trend_recent_windows cohort windows against the trend_baseline_windows
    # before them, judged with at least trend_min_mentions on each side; fires at p < trend_alpha.
    trend_recent_windows: int = 2
    trend_baseline_windows: int = 12
    trend_min_mentions: int = 20
    trend_alpha: float = 0.01
    trend_interval_s: float = 60.0  # how often trends are judged (and fired or cleared ones notified)
    # Webhooks: one POST per attempt with this timeout; retried after base * 2^(attempt-1) s (capped)
    # until webhook_max_attempts failed.
    webhook_timeout_s: float = 5.0
    webhook_retry_base_s: float = 2.0
    webhook_retry_max_s: float = 3600.0
    webhook_max_attempts: int = 12
    webhook_allow_private: bool = False  # loopback / private addresses allowed (development and tests)
    webhook_log_days: float = 30.0  # delivered, failed and cancelled notifications and attempts kept this long
    max_message_bytes: int = 4 << 20
    max_bundle_bytes: int = 200 << 20
    log_level: str = "info"

    def validate(self) -> CpSettings:
        checks = [
            (1 <= self.port <= 65535, "port must be 1..65535"),
            (self.heartbeat_interval_s > 0 and self.stale_after_s > self.heartbeat_interval_s,
             "stale_after_s must exceed heartbeat_interval_s > 0"),
            (self.cohort_min_size >= 1 and self.cohort_horizon_hours > 0, "cohort settings must be positive"),
            (0.05 <= self.cohort_window_minutes <= 1440
             and self.cohort_horizon_hours * 60 >= self.cohort_window_minutes,
             "cohort_window_minutes must be 0.05..1440 and within cohort_horizon_hours"),
            (10 <= self.adapt_min_labels <= 100_000 and 1 <= self.adapt_round_timeout_s <= 86_400
             and 0 < self.adapt_delta < 0.01,
             "adapt_min_labels must be 10..100000, adapt_round_timeout_s 1..86400 and adapt_delta in (0, 0.01)"),
            (all(Path(p.strip()).is_file() for p in self.adapt_probe.split(",") if p.strip()),
             f"adapt_probe {self.adapt_probe}: every comma-separated path must be a file"),
            (self.canary_min_labels >= 30, "canary_min_labels must be >= 30"),
            (self.max_message_bytes >= 64 << 10 and self.max_bundle_bytes >= 1 << 20, "size limits too small"),
            (self.log_level in {"critical", "error", "warning", "info", "debug"}, "log_level must be a level name"),
            (self.max_node_cohorts_per_window >= 1, "max_node_cohorts_per_window must be >= 1"),
            (self.max_node_cohort_users >= 1 and self.cohort_growth >= 1 and self.filings_per_node_per_s > 0
             and self.cohort_growth_period_s > 0,
             "max_node_cohort_users >= 1, cohort_growth >= 1, cohort_growth_period_s > 0 and "
             "filings_per_node_per_s > 0"),
            (0.5 <= self.max_node_share < 1, "max_node_share must be in [0.5, 1) (below one half no rule can hold "
                                             "between two nodes)"),
            (self.segment_seed_min_nodes >= 1 and self.experiment_exposures_per_user >= 1,
             "segment_seed_min_nodes and experiment_exposures_per_user must be >= 1"),
            (self.filings_burst_per_node >= 1, "filings_burst_per_node must be >= 1"),
            (0 <= self.segments <= 64 and 0 < self.segment_decay <= 1 and self.segment_round_delay_s >= 0,
             "segments must be 0..64, segment_decay in (0, 1] and segment_round_delay_s >= 0"),
            (0 < self.cooccurrence_horizon_days <= 366 and self.cooccurrence_min_nodes >= 1
             and 1 <= self.neighbours_top_m <= 200 and 1 <= self.neighbours_max_items <= 50_000
             and self.neighbours_shrink >= 0
             and 0.05 <= self.cooccurrence_window_minutes <= self.cooccurrence_horizon_days * 1440
             and self.neighbours_rebuild_min_s >= 0,
             "cooccurrence_horizon_days must be in (0, 366], cooccurrence_min_nodes >= 1, neighbours_top_m 1..200, "
             "neighbours_max_items 1..50000, neighbours_shrink >= 0, cooccurrence_window_minutes within "
             "0.05..the horizon and neighbours_rebuild_min_s >= 0"),
            (self.privacy_compact_after_s >= 0 and self.maintenance_interval_s > 0,
             "privacy_compact_after_s must be >= 0 and maintenance_interval_s > 0"),
            (1 <= self.trend_recent_windows <= 96 and 1 <= self.trend_baseline_windows <= 480
             and self.trend_min_mentions >= 1 and 0 < self.trend_alpha < 0.1 and self.trend_interval_s > 0,
             "trend_recent_windows must be 1..96, trend_baseline_windows 1..480, trend_min_mentions >= 1, "
             "trend_alpha in (0, 0.1) and trend_interval_s > 0"),
            (0 < self.webhook_timeout_s <= 60 and 0 < self.webhook_retry_base_s <= self.webhook_retry_max_s
             and 1 <= self.webhook_max_attempts <= 100 and self.webhook_log_days > 0,
             "webhook_timeout_s must be in (0, 60], 0 < webhook_retry_base_s <= webhook_retry_max_s, "
             "webhook_max_attempts 1..100 and webhook_log_days > 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"invalid setting: {message}")
        tls = [self.tls_cert, self.tls_key, self.tls_client_ca]
        if any(tls) and not all(tls):
            raise ConfigError("invalid setting: set all of CP_TLS_CERT, CP_TLS_KEY and CP_TLS_CLIENT_CA, or none")
        for path in filter(None, tls):
            if not Path(path).is_file():
                raise ConfigError(f"invalid setting: {path} does not exist")
        for entry in filter(None, self.admin_tokens.split(",")):
            name, sep, token = entry.partition(":")
            if not sep or not name.strip() or len(token) < 8:
                raise ConfigError("invalid setting: CP_ADMIN_TOKENS entries are name:token "
                                  "with tokens of 8+ characters")
        return self

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


HELP = {
    "host": "address gRPC listens on",
    "port": "gRPC port",
    "data_dir": "directory of the SQLite database (and scratch space for uploads)",
    "database_url": "PostgreSQL URL shared by control-plane replicas (empty: SQLite in data_dir)",
    "admin_tokens": "operator tokens, name:token,... (empty: one generated into the data dir)",
    "pseudonym_key": "key that pseudonymizes user ids; equal to the edges' EDGE_PSEUDONYM_KEY",
    "trusted_keys": "Ed25519 public keys (base64 or files); pushed bundles must be signed by one (empty: no check)",
    "tls_cert": "server certificate (PEM); with tls_key and tls_client_ca turns on mTLS",
    "tls_key": "server private key (PEM)",
    "tls_client_ca": "CA that signs edge and operator client certificates (PEM)",
    "allow_anonymous_nodes": "DEVELOPMENT ONLY, plain gRPC on loopback: accept edges with no credential; any local "
                             "process can then act as any unenrolled node: receive every app's verification keys "
                             "(HS256 secrets, which mint user tokens, included), file privacy requests and "
                             "acknowledge them for nodes that never applied them",
    "require_node_credentials": "(obsolete: credentials are always needed unless allow_anonymous_nodes)",
    "max_node_cohort_users": "most users one node may report for one cohort and window (poisoning bound)",
    "new_node_cohort_users": "most users a node with no history may report for one cohort and window",
    "max_node_cohorts_per_window": "distinct cohort cells (its \"all\" cell not counted) one node may hold per tenant "
                                   "and window, over all its heartbeats; further new keys are refused (the edges' "
                                   "EDGE_MAX_COHORTS_PER_WINDOW should not exceed it)",
    "cohort_growth": "a node's cell may hold at most this many times its largest earlier cell, per "
                     "cohort_growth_period_s of time (poisoning bound)",
    "cohort_growth_period_s": "seconds over which a node's cohort cap may grow by cohort_growth (time, not heartbeats)",
    "max_node_share": "one node's share of any merged output other nodes also report (cohorts, segments, "
                      "experiments), in [0.5, 1)",
    "segment_seed_min_nodes": "learned segments are seeded only from seed clusters of at least this many nodes",
    "experiment_exposures_per_user": "an edge's exposures per experiment arm, cohort and window count at most its "
                                     "cohort cap times this",
    "privacy_compact_after_s": "privacy-log entries every node applied are compacted after this many seconds "
                               "(the request id and receipts are kept as the proof)",
    "maintenance_interval_s": "how often cohorts are pruned and the privacy log compacted",
    "filings_per_node_per_s": "privacy filings accepted per edge per second once its burst is spent (refused ones "
                              "stay queued at the edge, which sends them again on the same stream)",
    "filings_burst_per_node": "privacy filings one edge may send at once (the bucket's size): an honest burst of "
                              "deletions is filed without waiting for the rate",
    "metrics_port": "serve Prometheus metrics on this port (0: off)",
    "heartbeat_interval_s": "how often edges report health and cohort aggregates",
    "stale_after_s": "a node not heard from this long is shown as stale",
    "cohort_min_size": "merged cohorts with fewer users are withheld",
    "cohort_horizon_hours": "how far back merged cohort priors look",
    "cohort_window_minutes": "the edges' cohort window (set EDGE_COHORT_WINDOW_MINUTES to the same): cells of "
                             "another length or alignment are refused; topic trends count in these windows",
    "cooccurrence_horizon_days": "how far back the item-neighbour tables (the collaborative signal) look",
    "neighbours_rebuild_min_s": "a tenant's item-neighbour table is rebuilt from heartbeats at most this often "
                                "(seconds; windows that arrive meanwhile wait for the next heartbeat after it), so a "
                                "node resending windows cannot make the control plane rebuild on every heartbeat",
    "cooccurrence_window_minutes": "the edges' co-occurrence window (set EDGE_COOCCURRENCE_WINDOW_MINUTES to the "
                                   "same): windows of another length or misaligned are refused, so one node holds at "
                                   "most the horizon's number of windows per tenant",
    "cooccurrence_min_nodes": "a pair fewer nodes report is left out where the nodes that do not report it carry "
                              "at least (1-max_node_share)/max_node_share as many users of one of its items as its "
                              "reporters (1: every pair counts)",
    "neighbours_top_m": "neighbours kept per item in a tenant's item-neighbour table",
    "neighbours_max_items": "items in a tenant's item-neighbour table: those several nodes report first (most users "
                            "first), then each node's own items in turn (bounds the message every edge gets)",
    "neighbours_shrink": "a pair's similarity is its cosine times users / (users + this): pairs few users chose "
                         "count less",
    "segments": "learned segments: k of the federated k-means over consenting users' vectors (0: off)",
    "segment_decay": "weight a segment's history keeps per round (1: plain running mean)",
    "adapt_min_labels": "labelled samples an edge needs before its update counts in an adaptation round (>= 10)",
    "adapt_round_timeout_s": "an adaptation round closes when every connected edge serving the version answered, "
                             "or after this long",
    "adapt_delta": "the delta of the (epsilon, delta) privacy cost the adaptation ledger reports",
    "adapt_probe": "labelled CSVs (text,label; comma-separated) edges never see; a candidate worse on them than its "
                   "base is refused (empty: models/out_of_domain.csv and models/customer_validation.csv)",
    "canary_auto": "act on a partial rollout by itself: promote it when its disagreement on fresh labels is lower "
                   "than its baseline's at p < 0.05, roll it back when higher (audited)",
    "canary_min_labels": "labelled samples each side needs before the automatic canary gate acts",
    "segment_round_delay_s": "how long the edges' sums wait so that one window's sums share a round",
    "trend_recent_windows": "topic trends: the recent period, in cohort windows, whose negative share is tested",
    "trend_baseline_windows": "topic trends: the trailing baseline, in cohort windows before the recent period",
    "trend_min_mentions": "topic trends: mentions of a topic each period needs before it is judged",
    "trend_alpha": "topic trends: a rise fires at one-sided p < this (and clears at p >= 10 times it)",
    "trend_interval_s": "how often topic trends are judged and fired or cleared ones notified",
    "webhook_timeout_s": "seconds one webhook POST may take",
    "webhook_retry_base_s": "first retry delay of a failed webhook delivery (doubling each attempt)",
    "webhook_retry_max_s": "longest delay between two webhook attempts",
    "webhook_max_attempts": "attempts before a webhook notification is given up (marked failed)",
    "webhook_allow_private": "DEVELOPMENT ONLY: allow webhook URLs on loopback and private addresses",
    "webhook_log_days": "finished webhook notifications and their attempts are kept this many days",
    "max_message_bytes": "largest gRPC message accepted",
    "max_bundle_bytes": "largest model bundle accepted by a push",
    "log_level": "log level",
}


def load_settings(environ: Mapping[str, str] | None = None, flags: Mapping[str, object] | None = None) -> CpSettings:
    return settings_loader.load(CpSettings, PREFIX, os.environ if environ is None else environ, flags,
                                error=ConfigError).validate()
