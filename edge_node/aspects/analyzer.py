"""Aspects of scored texts: each text's clauses matched to its tenant's topics and scored.

A matched clause gets the answer an escalated text gets (both stages: the exit that answered it,
else the stacker over both margins; on the tuning clauses this beat the served cascade, whose fast
stage answers many short clauses alone: 0.874 against 0.867). The clauses of one topic are
averaged in probability.

What it costs: the transformer stage runs once over a text's clauses (one ONNX run): its lower
layers give each clause's topic vector, the topics are assigned there, and only the clauses with
a topic run on (early exits as served) to their answer. A text of one clause that the served
cascade escalated needs no run at all: its answer is the escalated answer, and its vector was
computed on the way (handed over by :meth:`remember`). Runs in the inference worker threads;
nothing is stored.

Bounded per request: one call's texts have at most ``max_clauses_per_request`` clauses analysed
together, in order (a text's clauses are at most ``max_clauses``). From the first text whose
clauses do not fit, no text gets aspects; each such result says so (``aspects_truncated``), and
is still scored as a whole. So one request runs at most that many clauses through the model,
whatever its texts.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable

import msgspec
import numpy as np

from edge_node.aspects import clauses as clause_split
from edge_node.aspects.book import TopicBook
from edge_node.aspects.matching import TopicIndex
from sentiedge_core import cascade
from sentiedge_core.encoding import normalize
from sentiedge_core.inference import UNSUPPORTED, Sentiment, SentimentModel
from sentiedge_core.topics import Aspect, TopicSet


def clause_answers(model: SentimentModel, clauses: list[str],
                   assign: Callable[[np.ndarray], list[str | None]] | None = None
                   ) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
    """Each clause's topic vector [n, width], P(positive) [n] and, with ``assign`` (vectors →
    topics), its topic, from one transformer run; with ``assign``, a clause without a topic stops
    at the first exit (its probability is then not meaningful)."""
    stage = model.transformer_stage
    fast_margins, tokens = model.fast_stage.margins(clauses)
    topics: list[str | None] = []

    def matched(vectors: np.ndarray) -> np.ndarray:
        assert assign is not None  # only handed over with one
        topics.extend(assign(vectors))
        return np.asarray([t is not None for t in topics], dtype=bool)

    run = stage.forward(clauses, keep_features=True, only=matched if assign is not None else None)
    vectors = run.exit_features[0] if run.exit_features else run.pooled
    if assign is not None and not topics:  # no exits: the vectors came at the end
        topics = assign(vectors)
    exit_p = run.exit_p if stage.exits else None
    p = cascade.answered(fast_margins, stage.margins_of(run.pooled), exit_p, tokens, model.manifest.cascade)
    return vectors, p, topics


def _key(text: str) -> bytes:
    """A remembered vector's key: a digest, so no text is held past its request."""
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


class AspectAnalyzer:
    REMEMBERED = 1024  # escalated texts' vectors kept until their request asks for them (oldest dropped)

    def __init__(self, book: TopicBook, *, max_clauses: int, max_clauses_per_request: int = 128,
                 on_analysed: Callable[[int, int], None] = lambda clauses, truncated: None) -> None:
        self.book = book
        self.max_clauses = max_clauses
        self.max_clauses_per_request = max_clauses_per_request
        self.on_analysed = on_analysed  # (clauses analysed, texts left without aspects) per call
        self._indexes: dict[str, tuple[tuple, TopicIndex]] = {}
        self._lock = threading.Lock()
        self._vectors: OrderedDict[bytes, np.ndarray] = OrderedDict()

    def remember(self, texts: list[str], vectors: np.ndarray) -> None:
        """The served transformer run's lower-layer features of escalated (normalized) texts, kept
        (by a digest of the text) until the request's :meth:`attach` takes them."""
        if not self.book.tenants():
            return
        with self._lock:
            for text, vector in zip(texts, vectors, strict=True):
                self._vectors[_key(text)] = vector
            while len(self._vectors) > self.REMEMBERED:
                self._vectors.popitem(last=False)

    def _recall(self, text: str) -> np.ndarray | None:
        with self._lock:
            return self._vectors.pop(_key(normalize(text)), None)

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
        spent = truncated = 0
        for text, result in zip(texts, results, strict=True):
            parts = [] if result.label == UNSUPPORTED else clause_split.split(text, self.max_clauses)
            if truncated or spent + len(parts) > self.max_clauses_per_request:
                truncated += bool(parts)
                out.append(msgspec.structs.replace(result, aspects_truncated=True) if parts else result)
                continue
            spent += len(parts)
            found = self.aspects(model, index, parts, result)
            out.append(msgspec.structs.replace(result, aspects=found) if found else result)
        self.on_analysed(spent, truncated)
        return out

    def aspects(self, model: SentimentModel, index: TopicIndex, parts: list[str],
                whole: Sentiment) -> tuple[Aspect, ...]:
        """One text's aspects from its clauses."""
        if not parts:
            return ()
        if len(parts) == 1 and whole.stage == "transformer":  # the served run: its answer and its vector
            vector = self._recall(parts[0])
            if vector is not None:
                (topic,) = index.assign(parts, vector[None])
                return () if topic is None else (Aspect(topic=topic, label=whole.label, score=whole.score,
                                                        confidence=whole.confidence),)
        _, p, topics = clause_answers(model, parts, lambda vectors: index.assign(parts, vectors))
        by_topic: dict[str, list[float]] = {}
        for topic, probability in zip(topics, p, strict=True):
            if topic is not None:
                by_topic.setdefault(topic, []).append(float(probability))
        answers = {topic: model.result(float(np.mean(ps)), "aspect") for topic, ps in by_topic.items()}
        return tuple(Aspect(topic=t, label=r.label, score=r.score, confidence=r.confidence)
                     for t, r in answers.items())
