"""Aspects of scored texts: each text's clauses matched to its tenant's topics and scored.

The transformer stage runs once over a text's clauses (one ONNX run, early exits as served): its
lower layers give each clause's topic vector, and each clause gets the answer an escalated text
gets (both stages: the exit that answered it, else the stacker over both margins; on the tuning
clauses this beat the served cascade, whose fast stage answers many short clauses alone, 0.874
against 0.867). The clauses of one topic are averaged in probability. So a one-clause text's
aspect can differ from the text's own label where the fast stage answered the text.
Runs in the inference worker threads (ONNX Runtime releases the GIL); nothing is stored.
"""

from __future__ import annotations

import threading

import msgspec
import numpy as np

from edge_node.aspects import clauses as clause_split
from edge_node.aspects.book import TopicBook
from edge_node.aspects.matching import TopicIndex
from sentiedge_core import cascade
from sentiedge_core.inference import UNSUPPORTED, Sentiment, SentimentModel
from sentiedge_core.topics import Aspect, TopicSet


def clause_answers(model: SentimentModel, clauses: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each clause's topic vector [n, width] and P(positive) [n], from one transformer run."""
    stage = model.transformer_stage
    fast_margins, tokens = model.fast_stage.margins(clauses)
    run = stage.forward(clauses, keep_features=True)
    vectors = run.exit_features[0] if run.exit_features else run.pooled
    exit_p = run.exit_p if stage.exits else None
    p = cascade.answered(fast_margins, stage.margins_of(run.pooled), exit_p, tokens, model.manifest.cascade)
    return vectors, p


class AspectAnalyzer:
    def __init__(self, book: TopicBook, *, max_clauses: int) -> None:
        self.book = book
        self.max_clauses = max_clauses
        self._indexes: dict[str, tuple[tuple, TopicIndex]] = {}
        self._lock = threading.Lock()

    def index(self, model: SentimentModel, topic_set: TopicSet) -> TopicIndex:
        """The tenant's index, built once per set version and model (its examples embedded)."""
        key = (topic_set.version, topic_set.topics, model.name, model.version, str(model.root))
        with self._lock:
            held = self._indexes.get(topic_set.tenant)
            if held is None or held[0] != key:
                held = (key, TopicIndex(topic_set, model.transformer_stage.lower_features))
                self._indexes[topic_set.tenant] = held
            return held[1]

    def attach(self, model: SentimentModel, tenant: str, texts: list[str],
               results: list[Sentiment]) -> list[Sentiment]:
        """``results`` with each text's aspects (unchanged where the tenant has no topics, for texts
        the model did not judge, and for texts that name no topic)."""
        topic_set = self.book.get(tenant)
        if topic_set is None or model.transformer_stage.head is None:
            self._indexes.pop(tenant, None)
            return results
        index = self.index(model, topic_set)
        out = []
        for text, result in zip(texts, results, strict=True):
            found = () if result.label == UNSUPPORTED else self.aspects(model, index, text)
            out.append(msgspec.structs.replace(result, aspects=found) if found else result)
        return out

    def aspects(self, model: SentimentModel, index: TopicIndex, text: str) -> tuple[Aspect, ...]:
        parts = clause_split.split(text, self.max_clauses)
        if not parts:
            return ()
        vectors, p = clause_answers(model, parts)
        by_topic: dict[str, list[float]] = {}
        for topic, probability in zip(index.assign(parts, vectors), p, strict=True):
            if topic is not None:
                by_topic.setdefault(topic, []).append(float(probability))
        answers = {topic: model.result(float(np.mean(ps)), "aspect") for topic, ps in by_topic.items()}
        return tuple(Aspect(topic=t, label=r.label, score=r.score, confidence=r.confidence)
                     for t, r in answers.items())
