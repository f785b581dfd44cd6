"""How this edge is doing, for the control plane's heartbeat and the /metrics scrape: the model
it serves, recent predictions against the model's reference (drift), sampled quality counts,
the store, the privacy backlog and exposure. Counts only."""

from __future__ import annotations

import time

import msgspec

from edge_node.config import EdgeSettings
from edge_node.link import SyncLink
from edge_node.metrics import EdgeMetrics
from edge_node.peer_counts import PeerCounts
from edge_node.personalization.exposure import Figures
from edge_node.quality import QualityBook
from edge_node.serving import ModelId, Serving
from edge_node.store import EdgeStore
from sentiedge_core import monitoring


class Health(msgspec.Struct, kw_only=True):
    model: ModelId
    serving_personal: bool
    outputs: dict  # recent prediction counts against the model's reference (drift)
    quality: dict  # model -> counts of sampled, labelled predictions


class NodeHealth:
    def __init__(self, settings: EdgeSettings, *, metrics: EdgeMetrics, serving: Serving, peers: PeerCounts,
                 link: SyncLink, store: EdgeStore, quality: QualityBook) -> None:
        self.settings = settings
        self.metrics = metrics
        self.serving = serving
        self.peers = peers
        self.link = link
        self.store = store
        self.quality = quality

    def health(self) -> Health:
        return Health(model=self.serving.identity(), serving_personal=self.link.personal_allowed(),
                      outputs=self.model_outputs(), quality=self.quality.counts())

    def drift_counts(self, now: float) -> tuple[list[int], list[int]]:
        """Recent prediction counts of this node: this worker's, plus every other worker's last
        shared counts for the same model."""
        return self.peers.drift(self.serving.sha, *self.serving.drift.recent(now), now)

    def drift_status(self) -> tuple[float, float, int, bool]:
        """(label PSI, confidence PSI, predictions, drifted) over the recent windows, into the metrics too."""
        drift = self.serving.drift
        label_psi, confidence_psi, n = drift.score_counts(*self.drift_counts(time.time()))
        drifted = monitoring.drifted(label_psi, confidence_psi, n, threshold=self.settings.drift_psi_threshold,
                                     min_predictions=drift.min_predictions)
        self.metrics.drift_psi.labels("labels").set(label_psi)
        self.metrics.drift_psi.labels("confidence").set(confidence_psi)
        self.metrics.drift.set(int(drifted))
        return label_psi, confidence_psi, n, drifted

    def model_outputs(self) -> dict:
        """Recent predictions against the model's reference, for drift upstream: counts only."""
        label_psi, confidence_psi, _, _ = self.drift_status()
        labels, bins = self.drift_counts(time.time())
        drift = self.serving.drift
        reference = drift.reference
        return {"labels": drift.labels, "label_counts": labels, "confidence_counts": bins,
                "reference_labels": [reference.get("labels", {}).get(n, 0.0) for n in drift.labels],
                "reference_confidence": reference.get("confidence", []), "label_psi": label_psi,
                "confidence_psi": confidence_psi}

    def exposure_figures(self, now: float) -> dict[str, Figures]:
        """Per tenant, over the recent windows, the node's exposure (every worker's counts)."""
        return self.peers.exposure_figures(now)

    def refresh_gauges(self) -> None:
        """Gauges read from the store, refreshed when /metrics is scraped."""
        self.drift_status()
        self.metrics.outbox_pending.set(self.store.outbox_pending())
        self.link.privacy_backlog_s(time.time())
        if self.settings.control_plane:
            self.metrics.sync_last_success.set(self.link.last_sync())
        self.metrics.outbox_capacity.set(self.settings.privacy_outbox_max)
        self.metrics.store_bytes.set(self.store.used_bytes())
        self.metrics.store_max_bytes.set(self.store.max_bytes)
        for tenant, f in self.exposure_figures(time.time()).items():
            self.metrics.exposure(tenant, f)
