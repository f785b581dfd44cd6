"""Prometheus metrics of the control plane (``CP_METRICS_PORT``), read from its state on
every scrape plus a histogram of privacy-request completion times."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily

COMPLETION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60, 300, 3600, 86400)


class StateCollector:
    """Nodes, their model, sync state, staleness and cursor lag, straight from the store."""

    def __init__(self, cp) -> None:
        self.cp = cp

    def collect(self):
        now = self.cp.now()
        views = self.cp.nodes.views(now)
        state = GaugeMetricFamily("sentiedge_cp_node_state", "1 for the state each node is in",
                                  labels=["node", "state"])
        lag = GaugeMetricFamily("sentiedge_cp_node_cursor_lag", "Privacy updates a node has not acknowledged",
                                labels=["node"])
        seen = GaugeMetricFamily("sentiedge_cp_node_last_seen_seconds", "Seconds since a node was heard from",
                                 labels=["node"])
        model = InfoMetricFamily("sentiedge_cp_node_model", "The model each node reports serving", labels=["node"])
        personal = GaugeMetricFamily("sentiedge_cp_node_serving_personal",
                                     "0 while a node fails closed for per-user data", labels=["node"])
        for v in views:
            n = v.node
            state.add_metric([n.node_id, v.state], 1)
            lag.add_metric([n.node_id], v.cursor_lag)
            seen.add_metric([n.node_id], max(now - n.last_seen, 0))
            model.add_metric([n.node_id], {"name": n.model_name, "version": n.model_version})
            personal.add_metric([n.node_id], int(n.serving_personal))
        head = GaugeMetricFamily("sentiedge_cp_privacy_head", "Highest privacy sequence number")
        head.add_metric([], self.cp.store.privacy_head())
        segments = self.cp.segments.current()
        version = GaugeMetricFamily("sentiedge_cp_segments_version", "Version of the published learned segments")
        version.add_metric([], segments.version)
        size = GaugeMetricFamily("sentiedge_cp_segment_users", "Members the last round of each segment counted",
                                 labels=["segment"])
        for g in segments.segments:
            size.add_metric([g.id], g.last_users)
        tables = GaugeMetricFamily("sentiedge_cp_neighbour_items", "Items in each tenant's item-neighbour table",
                                   labels=["tenant"])
        table_version = GaugeMetricFamily("sentiedge_cp_neighbours_version",
                                          "Version of each tenant's item-neighbour table", labels=["tenant"])
        for table in self.cp.neighbours.tables():
            tables.add_metric([table.tenant], len(table.items))
            table_version.add_metric([table.tenant], table.version)
        yield from (state, lag, seen, model, personal, head, version, size, tables, table_version)
        yield from self._topics()

    def _topics(self):
        """Each topic's trend as last judged (every CP_TREND_INTERVAL_S), and the webhooks' outboxes."""
        labels = ["tenant", "topic"]
        share = GaugeMetricFamily("sentiedge_cp_topic_negative_share", "Negative share of a topic's mentions, "
                                  "recent windows and trailing baseline", labels=[*labels, "period"])
        mentions = GaugeMetricFamily("sentiedge_cp_topic_mentions", "Mentions of a topic (merged texts)",
                                     labels=[*labels, "period"])
        mean = GaugeMetricFamily("sentiedge_cp_topic_mean_sentiment", "Mean aspect sentiment of a topic over the "
                                 "windows judged", labels=labels)
        firing = GaugeMetricFamily("sentiedge_cp_topic_trend_firing", "1 while a topic's rising negative share "
                                   "has fired (and not cleared)", labels=labels)
        p_value = GaugeMetricFamily("sentiedge_cp_topic_trend_p_value", "One-sided p of the recent negative share "
                                    "above the baseline", labels=labels)
        for t in self.cp.trends.last:
            key = [t.tenant, t.topic]
            share.add_metric([*key, "recent"], t.recent_share)
            share.add_metric([*key, "baseline"], t.baseline_share)
            mentions.add_metric([*key, "recent"], t.recent_texts)
            mentions.add_metric([*key, "baseline"], t.baseline_texts)
            mean.add_metric(key, t.mean_sentiment)
            firing.add_metric(key, int(t.firing))
            p_value.add_metric(key, t.p_value)
        outbox = GaugeMetricFamily("sentiedge_cp_webhook_notifications", "Webhook notifications by state",
                                   labels=["tenant", "state"])
        for (tenant, state), n in self.cp.store.outbox_counts().items():
            outbox.add_metric([tenant, state], n)
        yield from (share, mentions, mean, firing, p_value, outbox)


class CpMetrics:
    def __init__(self, cp) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(StateCollector(cp))
        self.completion = Histogram("sentiedge_cp_privacy_completion_seconds",
                                    "From a privacy request's filing to the last required receipt",
                                    buckets=COMPLETION_BUCKETS, registry=self.registry)
        self.receipts = Counter("sentiedge_cp_privacy_receipts_total", "Receipts recorded", registry=self.registry)
        self.clipped = Counter("sentiedge_cp_cohort_aggregates_clipped_total",
                               "Cohort aggregates bounded to what their node can plausibly report", ["node"],
                               registry=self.registry)
        self.refused = Counter("sentiedge_cp_cohort_aggregates_refused_total",
                               "Cohort aggregates refused on intake, by reason (tenant, cohort, window_length, "
                               "window_start, window_time, too_many, too_many_cohorts)", ["node", "reason"],
                               registry=self.registry)
        self.triggers_refused = Counter("sentiedge_cp_trigger_events_refused_total",
                                        "Trigger transitions an edge reported and the control plane refused, by "
                                        "reason (rule, tenant, cohort, time, too_many, rate, quarantined)",
                                        ["node", "reason"], registry=self.registry)
        self.pairs_refused = Counter("sentiedge_cp_pair_windows_refused_total",
                                     "Co-occurrence windows refused on intake, by reason (tenant, window_length, "
                                     "window_start, window_time, too_many)", ["node", "reason"], registry=self.registry)
        self.window_mismatch = Gauge("sentiedge_cp_node_window_mismatch",
                                     "1 while a node's Hello declared a cohort (or co-occurrence) window other than "
                                     "CP_COHORT_WINDOW_MINUTES (CP_COOCCURRENCE_WINDOW_MINUTES): everything of that "
                                     "length it sends is refused", ["node", "kind"], registry=self.registry)
        self.segment_rounds = Counter("sentiedge_cp_segment_rounds_total",
                                      "Learned-segment rounds published (the seeding included)", registry=self.registry)
        self.segment_sums_refused = Counter("sentiedge_cp_segment_sums_refused_total",
                                            "Segment sums refused: stale set version, unknown centroid, under the "
                                            "minimum size, or unusable", registry=self.registry)
        self.adaptation_rounds = Counter("sentiedge_cp_adaptation_rounds_total",
                                         "Federated adaptation rounds closed (averaged and applied)",
                                         registry=self.registry)
        self.adaptation_updates_refused = Counter("sentiedge_cp_adaptation_updates_refused_total",
                                                  "Adaptation updates refused: wrong length, non-finite, over the "
                                                  "clip, too few labels, or no open round", registry=self.registry)

    def serve(self, host: str, port: int) -> None:
        start_http_server(port, addr=host, registry=self.registry)
