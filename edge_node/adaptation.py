"""This edge's part in federated head adaptation (the control plane's ``models adapt``).

For a round of the model version it serves, the edge gathers its labelled samples of that
version (``POST /v1/labels``; the most recent ``EDGE_ADAPT_MAX_LABELS``), computes each one's
features once — the pooled encoder output, the fast stage's margin, its route and whether it
escalates — and keeps them inside the sample record, so a deletion or a consent withdrawal
erases them with the sample. It trains the parameters it was sent for a few gradient steps,
clips the change, adds Gaussian noise drawn here when the round asks for it, and answers
with that change and a count. Texts, features, labels and per-sample values stay here.

An edge with fewer than ``EDGE_ADAPT_MIN_LABELS`` (at least 10) labels answers
``too_few_labels``. With ``EDGE_ADAPT_MAX_EPSILON`` the edge keeps its own privacy ledger per
model name and declines (``budget_spent``) a round without noise or one that would take it past
that budget: it does not have to trust the control plane's ledger. The answer to a round is
stored and resent unchanged if the control plane asks again (a reconnect): training again would
draw fresh noise and spend privacy twice.
"""

from __future__ import annotations

import logging
import secrets
import time

import numpy as np

from edge_node.quality import Sample, labelled_key
from edge_node.records import Stored
from edge_node.store import EdgeStore
from sentiedge_core import adaptation
from sentiedge_core.adaptation import Round
from sentiedge_core.inference import SentimentModel

log = logging.getLogger("edge_node.adaptation")

MAX_STEPS = 50
DELTA = 1e-5  # of the edge's own (epsilon, delta) budget
FEATURE_BATCH = 16


class Answer(Stored, kw_only=True):
    job: str
    round: int
    status: str  # ok, too_few_labels, not_serving, budget_spent, failed
    delta: list[float] = []
    count: int = 0
    error: str = ""


class EdgeAdaptation:
    def __init__(self, store: EdgeStore, *, enabled: bool, min_labels: int, max_labels: int,
                 max_epsilon: float = 0.0) -> None:
        self.store = store
        self.enabled = enabled
        self.min_labels = min_labels
        self.max_labels = max_labels
        self.max_epsilon = max_epsilon

    def _coefficient(self, name: str) -> float:
        """The RDP coefficient this edge has spent on a model name (rounds answered with an update)."""
        return float(self.store.value(f"adapt_spent|{name}", 0.0))

    def spent(self, name: str) -> float:
        """This edge's own ε so far for a model name."""
        return adaptation.epsilon(self._coefficient(name), DELTA)

    def answer(self, task: Round, model: SentimentModel) -> Answer:
        """The stored answer to this round, else a new one (stored before it is returned)."""
        key = f"adapt_answer|{task.job}|{task.round}"
        earlier = self.store.get(key, Answer)
        if earlier is not None:
            return earlier
        try:
            answer = self._train(task, model)
        except Exception as exc:  # a failed round is reported, never fatal to the edge
            log.exception("adaptation %s round %d failed", task.job, task.round)
            answer = Answer(job=task.job, round=task.round, status="failed", error=str(exc)[:200])
        if answer.status == "ok":
            with self.store.transaction():  # the answer and what it cost, together
                self.store.put(key, answer, ttl=7 * 86400)
                if task.noise_multiplier > 0:
                    self.store.set_value(f"adapt_spent|{task.name}", self._coefficient(task.name)
                                         + adaptation.rdp_coefficient(1, task.noise_multiplier))
        return answer

    def _train(self, task: Round, model: SentimentModel) -> Answer:
        def declined(status: str, error: str, count: int = 0) -> Answer:
            log.info("adaptation %s round %d: %s", task.job, task.round, error)
            return Answer(job=task.job, round=task.round, status=status, count=count, error=error)

        if not self.enabled:
            return declined("not_serving", "adaptation is off on this edge (EDGE_ADAPT=false)")
        if (model.name, model.version) != (task.name, task.version):
            return declined("not_serving", f"this edge serves {model.name} {model.version}, not {task.version}")
        head = model.transformer_stage.head
        if head is None or head.dimension != task.dimension:
            return declined("not_serving", "the served bundle has no separate head of that width")
        if not (0 < task.clip and 0 < task.regularization <= 100 and 0 <= task.noise_multiplier
                and len(task.theta) == adaptation.size(task.dimension)):
            return declined("failed", "malformed round (clip, regularization, noise or parameter count)")
        if self.max_epsilon:
            if task.noise_multiplier <= 0:
                return declined("budget_spent", "this edge answers only rounds with noise (EDGE_ADAPT_MAX_EPSILON)")
            after = adaptation.epsilon(self._coefficient(task.name)
                                       + adaptation.rdp_coefficient(1, task.noise_multiplier), DELTA)
            if after > self.max_epsilon:
                return declined("budget_spent", f"the round would take this edge to epsilon {after:.3g}, over "
                                                f"EDGE_ADAPT_MAX_EPSILON {self.max_epsilon:g}")
        data = self.examples(model)
        need = max(self.min_labels, task.min_labels)
        if data is None or len(data) < need:
            held = 0 if data is None else len(data)
            return declined("too_few_labels", f"{held} labelled samples of {task.version}, {need} needed", held)
        started = time.monotonic()
        theta = np.asarray(task.theta, np.float64)
        delta = adaptation.local_update(theta, data, model.manifest.cascade, steps=min(task.steps, MAX_STEPS),
                                        l2=task.regularization)
        delta = adaptation.clip(delta, task.clip)
        rng = np.random.default_rng(secrets.randbits(128))  # never a seed the control plane could know
        delta = adaptation.noised(delta, task.noise_multiplier, task.clip, rng)
        log.info("adaptation %s round %d: trained on %d labels in %.2fs", task.job, task.round, len(data),
                 time.monotonic() - started)
        return Answer(job=task.job, round=task.round, status="ok", delta=delta.tolist(), count=len(data))

    def examples(self, model: SentimentModel) -> adaptation.Examples | None:
        """This edge's labelled samples of the served version, with features (computed once)."""
        ids = self.store.value(labelled_key(model.name, model.version), [])[-self.max_labels:]
        samples = [(i, s) for i in ids if (s := self.store.get(f"sample|{i}", Sample)) is not None
                   and s.true_label and (s.model, s.version) == (model.name, model.version)]
        if not samples:
            return None
        missing = [(i, s) for i, s in samples if not s.pooled]
        for start in range(0, len(missing), FEATURE_BATCH):
            self._featurize(model, missing[start: start + FEATURE_BATCH])
        samples = [(i, s) for i, s in samples if s.pooled and s.true_label in model.labels]  # the binary head's own
        if not samples:
            return None
        positive = model.labels[1]
        return adaptation.Examples(
            pooled=np.asarray([s.pooled for _, s in samples], np.float64),
            fast=np.asarray([s.fast_margin for _, s in samples], np.float64),
            tokens=np.asarray([s.tokens for _, s in samples]),
            escalated=np.asarray([s.escalated for _, s in samples], bool),
            y=np.asarray([s.true_label == positive for _, s in samples], np.float64))

    def _featurize(self, model: SentimentModel, batch: list[tuple[str, Sample]]) -> None:
        texts = [s.text for _, s in batch]
        verdicts = model.fast(texts)
        for (sample_id, sample), verdict, text in zip(batch, verdicts, texts, strict=False):
            pooled = model.transformer_stage.pooled([text])[0]  # one text per run, as it is served
            with self.store.transaction():
                if self.store.get(f"sample|{sample_id}", Sample) is None:
                    continue  # erased meanwhile (deletion, withdrawal): never write it back
                sample.pooled = [round(float(x), 6) for x in pooled]
                sample.fast_margin, sample.tokens, sample.escalated = verdict.margin, verdict.tokens, verdict.escalate
                self.store.put(f"sample|{sample_id}", sample, ttl=self.store.ttl_left(f"sample|{sample_id}"),
                               tag=self.store.cold_tag("sample"))  # its retention is not extended
