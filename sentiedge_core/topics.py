"""Topics: what customers talk about (packaging, delivery, …), defined per tenant by operators.

A topic is a name, a few example phrases and optional keywords. The control plane keeps one
versioned :class:`TopicSet` per tenant and streams it to every edge; the edge splits a text into
clauses, assigns topics to clauses and scores each matched clause (aspect sentiment).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import msgspec

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")
MAX_TOPICS = 64  # per tenant
MAX_EXAMPLES = 32  # per topic
MAX_KEYWORDS = 64  # per topic
MAX_PHRASE = 200  # characters of one example or keyword
STARTER = Path(__file__).with_name("starter_topics.json")


class Topic(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    examples: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()


class TopicSet(msgspec.Struct, frozen=True, kw_only=True):
    tenant: str
    version: int = 0
    topics: tuple[Topic, ...] = ()


class Aspect(msgspec.Struct, frozen=True, kw_only=True):
    """One topic's sentiment in one text: the clauses that matched it, scored together."""

    topic: str
    label: str
    score: float  # in [-1, 1]
    confidence: float


def problem(topic: Topic) -> str | None:
    """Why this topic cannot be accepted, or None."""
    if not NAME.match(topic.name):
        return (f"topic name {topic.name!r} must be 1-48 characters of a-z, 0-9, '_' or '-', "
                "starting with a letter or digit")
    if not topic.examples and not topic.keywords:
        return f"topic {topic.name!r} needs at least one example or keyword"
    if len(topic.examples) > MAX_EXAMPLES:
        return f"topic {topic.name!r} has {len(topic.examples)} examples; at most {MAX_EXAMPLES}"
    if len(topic.keywords) > MAX_KEYWORDS:
        return f"topic {topic.name!r} has {len(topic.keywords)} keywords; at most {MAX_KEYWORDS}"
    for phrase in (*topic.examples, *topic.keywords):
        if not phrase.strip() or len(phrase) > MAX_PHRASE or not phrase.isprintable():
            return f"topic {topic.name!r}: each example and keyword is 1-{MAX_PHRASE} printable characters"
    return None


@cache
def starter() -> tuple[Topic, ...]:
    """The starter topic set for direct-to-consumer commerce (delivery, packaging, price-value, quality,
    sizing-fit, support, app-website): what ``control-plane topics seed`` gives a tenant, to edit."""
    topics = msgspec.json.decode(STARTER.read_bytes(), type=tuple[Topic, ...])
    wrong = next((p for p in map(problem, topics) if p), None)
    if wrong:
        raise ValueError(f"{STARTER.name}: {wrong}")
    return topics
