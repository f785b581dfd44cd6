"""Topics per tenant: validated here, stored with their history, streamed to every edge.

A tenant's topic set is versioned by its latest change (``topic_history``), and the sets of
every tenant go to every edge as one message whose version is the latest change of any.
``seed`` adds the starter set's topics a tenant does not have yet: the operator's own
versions (and removals made since) are never overwritten by a second seed of the same name.
"""

from __future__ import annotations

import msgspec

from control_plane.errors import InvalidArgument, NotFound
from sentiedge_core.topics import MAX_TOPICS, Topic, TopicSet, problem

_TOPIC = msgspec.json.Decoder(Topic)


def _clean(phrases) -> tuple[str, ...]:
    """Phrases stripped, blanks and repeats (ignoring case) left out, in the order given."""
    seen, out = set(), []
    for phrase in phrases:
        phrase = " ".join(phrase.split())
        if phrase and phrase.lower() not in seen:
            seen.add(phrase.lower())
            out.append(phrase)
    return tuple(out)


def validate(topic: Topic) -> Topic:
    topic = Topic(name=topic.name.strip(), examples=_clean(topic.examples), keywords=_clean(topic.keywords))
    why = problem(topic)
    if why is not None:
        raise InvalidArgument(why)
    return topic


class TopicCatalog:
    def __init__(self, store) -> None:
        self.store = store

    def add(self, tenant: str, topic: Topic, now: float) -> TopicSet:
        """Add a topic to a tenant's set, or replace the one of the same name."""
        topic = validate(topic)
        names = {t.name for t in self.set_of(tenant).topics}
        if topic.name not in names and len(names) >= MAX_TOPICS:
            raise InvalidArgument(f"tenant {tenant} has {len(names)} topics, the most a tenant may have "
                                  f"({MAX_TOPICS}): remove one first")
        self.store.put_topics(tenant, {topic.name: msgspec.json.encode(topic).decode()},
                              "updated" if topic.name in names else "added", now)
        return self.set_of(tenant)

    def remove(self, tenant: str, name: str, now: float) -> TopicSet:
        if not self.store.remove_topic(tenant, name, now):
            have = ", ".join(t.name for t in self.set_of(tenant).topics) or "none"
            raise NotFound(f"tenant {tenant} has no topic {name!r} (its topics: {have})")
        return self.set_of(tenant)

    def seed(self, tenant: str, starter: tuple[Topic, ...], now: float) -> tuple[TopicSet, list[str], list[str]]:
        """The starter topics the tenant lacks, added; returns (its set, added, kept)."""
        have = {t.name for t in self.set_of(tenant).topics}
        new = [validate(t) for t in starter if t.name not in have]
        if len(have) + len(new) > MAX_TOPICS:
            raise InvalidArgument(f"seeding would give tenant {tenant} {len(have) + len(new)} topics, over "
                                  f"{MAX_TOPICS}: remove some first")
        if new:
            self.store.put_topics(tenant, {t.name: msgspec.json.encode(t).decode() for t in new}, "seeded", now)
        return self.set_of(tenant), [t.name for t in new], sorted(have & {t.name for t in starter})

    def set_of(self, tenant: str) -> TopicSet:
        topics = tuple(_TOPIC.decode(body) for _, body in self.store.topics(tenant))
        return TopicSet(tenant=tenant, version=self.store.topic_versions().get(tenant, 0), topics=topics)

    def sets(self) -> list[TopicSet]:
        """Every tenant's set that has topics, by tenant."""
        versions = self.store.topic_versions()
        by_tenant: dict[str, list[Topic]] = {}
        for tenant, body in self.store.topics():
            by_tenant.setdefault(tenant, []).append(_TOPIC.decode(body))
        return [TopicSet(tenant=t, version=versions.get(t, 0), topics=tuple(ts)) for t, ts in sorted(by_tenant.items())]

    def version(self) -> int:
        return self.store.topics_version()
