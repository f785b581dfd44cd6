"""Sampled labels: how often do people disagree with the model?

A configurable fraction of predictions (``EDGE_LABEL_SAMPLE_RATE``) gets a ``sample_id``.
A client or reviewer can submit the true label for it (``POST /v1/labels``); the edge counts
labelled samples and disagreements per model version and sends the counts upstream
(``control-plane models quality``). A sample — prediction, and the text for reviewers at
this edge — is kept for the retention period and never leaves the edge.

Only texts of a known user who gave ``sentiment`` consent (events) are sampled, never the
anonymous texts of ``POST /v1/sentiment``, which stores nothing. Each sample is indexed
under the user's pseudonym so a deletion or a ``sentiment`` withdrawal erases it too.
"""

from __future__ import annotations

import random
import uuid

import msgspec

from edge_node.errors import InvalidInput, NotFound, StorageFull
from edge_node.records import Stored
from edge_node.store import EdgeStore
from sentiedge_core.inference import Sentiment


class Sample(Stored, kw_only=True):
    model: str
    version: str
    label: str
    confidence: float
    at: float
    text: str = ""
    true_label: str = ""
    subject: str = ""
    tenant: str = ""  # whose user wrote it: only that tenant's server keys may label it
    # Adaptation features (edge_node/adaptation.py), computed once the sample is labelled and
    # an adaptation round needs them; kept in the sample so its erasure takes them too.
    pooled: list[float] = []
    fast_margin: float = 0.0
    tokens: int = 0
    escalated: bool = False


MAX_LABELLED = 10_000  # labelled sample ids remembered per model version (EDGE_ADAPT_MAX_LABELS <= this)


def labelled_key(model: str, version: str) -> str:
    return f"labelled|{model}|{version}"


class Quality(Stored, kw_only=True):
    labelled: int = 0
    disagreements: int = 0


class QualityBook:
    def __init__(self, store: EdgeStore, *, rate: float, labels: list[str], seed: int | None = None) -> None:
        self.store = store
        self.rate = rate
        self.labels = labels
        self._random = random.Random(seed)

    def sample(self, results: list[Sentiment], texts: list[str], now: float,
               subject: str | None = None, *, tenant: str = "") -> list[Sentiment]:
        if self.rate <= 0 or not subject:
            return results
        out = []
        for result, text in zip(results, texts, strict=False):
            if self._random.random() < self.rate:
                sample_id = f"smp-{uuid.uuid4().hex}"
                try:
                    self.store.put_sample(subject, sample_id, Sample(
                        model=result.model, version=result.version, label=result.label, confidence=result.confidence,
                        at=now, text=text, subject=subject, tenant=tenant))
                    result = msgspec.structs.replace(result, sample_id=sample_id)
                except StorageFull:
                    pass  # sampling is best effort: the prediction is answered on a full disk too
            out.append(result)
        return out

    def label(self, sample_id: str, true_label: str, tenant: str | None = None) -> tuple[Sample, bool]:
        """Record the true label; returns the sample and whether the model agreed. Idempotent.
        ``tenant``: the caller's; another tenant's sample answers as an unknown one would."""
        if true_label not in self.labels:
            raise InvalidInput(f"label {true_label!r} is not one of {', '.join(self.labels)}", field="label")
        with self.store.transaction():
            sample = self.store.get(f"sample|{sample_id}", Sample)
            if sample is not None and tenant is not None and sample.tenant and sample.tenant != tenant:
                sample = None  # never says whether another tenant's sample exists
            if sample is None:
                raise NotFound(f"no sampled prediction {sample_id!r} on this edge (unknown or expired)",
                               field="sample_id")
            key = f"quality|{sample.model}|{sample.version}"
            quality = self.store.get(key, Quality) or Quality()
            if sample.true_label:  # labelled before: replace the earlier answer
                quality.labelled -= 1
                quality.disagreements -= sample.true_label != sample.label
            sample.true_label = true_label
            quality.labelled += 1
            quality.disagreements += true_label != sample.label
            self.store.put(f"sample|{sample_id}", sample, ttl=self.store.ttl_left(f"sample|{sample_id}"),
                           tag=self.store.cold_tag("sample"))  # labelling does not extend its retention
            self.store.put(key, quality, ttl=None)
            self.store.set_value("quality_models", sorted(set(self.store.value("quality_models", [])) | {key}))
            labelled = labelled_key(sample.model, sample.version)
            ids = [i for i in self.store.value(labelled, []) if i != sample_id] + [sample_id]
            self.store.set_value(labelled, ids[-MAX_LABELLED:])  # ids only: erased samples drop out on use
        return sample, true_label == sample.label

    def counts(self) -> dict[str, Quality]:
        """Per "model version": labelled samples and disagreements."""
        out = {}
        for key in self.store.value("quality_models", []):
            quality = self.store.get(key, Quality)
            if quality is not None:
                _, model, version = key.split("|", 2)
                out[f"{model} {version}"] = quality
        return out
