"""Which topic a clause is about: the mean cosine similarity of the clause to the topic's
``TOP_K`` most similar examples (1: the nearest), plus ``KEYWORD_BONUS`` when one of the topic's keywords occurs in
it; the best topic is taken when its score reaches ``THRESHOLD``, else none. One topic per clause.

Vectors come from the encoder the edge already runs (its hidden states after the first early
exit, mean-pooled: :meth:`sentiedge_core.stages.TransformerStage.lower_features`). The three numbers
were fitted on the tuning part of ``tests/data/aspect_clauses.csv`` for the shipped bundle, 1.8.0
(``python -m edge_node.aspects.evaluate [--fit]`` measures any bundle; docs/topics.md has the figures).
A topic with keywords only (no examples) is matched by its keywords alone.

Keywords match as whole words or phrases, case-insensitive, with an optional plural ``s``/``es``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from sentiedge_core.topics import TopicSet

TOP_K = 2
THRESHOLD = 0.75
KEYWORD_BONUS = 0.25


def keyword_pattern(keywords: tuple[str, ...]) -> re.Pattern | None:
    phrases = sorted({k.strip().lower() for k in keywords if k.strip()}, key=len, reverse=True)
    if not phrases:
        return None
    body = "|".join(r"\s+".join(re.escape(word) for word in p.split()) for p in phrases)
    return re.compile(r"(?<!\w)(?:" + body + r")(?:s|es)?(?!\w)", re.IGNORECASE)


def unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


class TopicIndex:
    """One tenant's topic set made ready to match: its examples embedded once (per set version
    and model), its keywords compiled."""

    def __init__(self, topic_set: TopicSet, embed: Callable[[list[str]], np.ndarray], *,
                 threshold: float = THRESHOLD, keyword_bonus: float = KEYWORD_BONUS, top_k: int = TOP_K) -> None:
        self.version = topic_set.version
        self.names = [t.name for t in topic_set.topics]
        self.keywords = [keyword_pattern(t.keywords) for t in topic_set.topics]
        examples = [e for t in topic_set.topics for e in t.examples]
        self._owner = np.asarray([i for i, t in enumerate(topic_set.topics) for _ in t.examples], dtype=np.int64)
        self._examples = unit(embed(examples)) if examples else np.zeros((0, 0))
        self.threshold, self.keyword_bonus, self.top_k = threshold, keyword_bonus, top_k

    def scores(self, clauses: list[str], vectors: np.ndarray) -> np.ndarray:
        """[clauses, topics]: similarity plus keyword bonus (-inf for a topic with neither)."""
        out = np.full((len(clauses), len(self.names)), -np.inf)
        if len(self._examples):
            similarity = unit(vectors) @ self._examples.T
            for t in range(len(self.names)):
                mine = similarity[:, self._owner == t]
                if mine.shape[1]:
                    k = min(self.top_k, mine.shape[1])
                    out[:, t] = np.sort(mine, axis=1)[:, -k:].mean(axis=1)
        for t, pattern in enumerate(self.keywords):
            if pattern is None:
                continue
            hit = np.asarray([pattern.search(c) is not None for c in clauses])
            only_keywords = np.isneginf(out[:, t])
            out[:, t] = np.where(hit, np.where(only_keywords, self.threshold, out[:, t] + self.keyword_bonus),
                                 out[:, t])
        return out

    def assign(self, clauses: list[str], vectors: np.ndarray) -> list[str | None]:
        """Each clause's topic, or None."""
        if not clauses or not self.names:
            return [None] * len(clauses)
        scores = self.scores(clauses, vectors)
        best = scores.argmax(axis=1)
        return [self.names[b] if scores[i, b] >= self.threshold else None for i, b in enumerate(best)]
