"""The topic sets this edge holds, one per tenant (filled from the control plane's stream)."""

from __future__ import annotations

from sentiedge_core.topics import TopicSet


class TopicBook:
    def __init__(self) -> None:
        self._sets: dict[str, TopicSet] = {}

    def set(self, topic_set: TopicSet) -> None:
        """Hold this tenant's set from now on; a set without topics forgets the tenant's."""
        if topic_set.topics:
            self._sets[topic_set.tenant] = topic_set
        else:
            self._sets.pop(topic_set.tenant, None)

    def get(self, tenant: str) -> TopicSet | None:
        return self._sets.get(tenant)

    def tenants(self) -> list[str]:
        return sorted(self._sets)
