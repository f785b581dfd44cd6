"""Topic sets on the wire: the one conversion both services use (``TopicSets`` on the Sync
stream, ``Topics`` calls of the operator API)."""

from __future__ import annotations

from protos.sentiedge.v1 import sync_pb2
from sentiedge_core.topics import Topic, TopicSet


def topic_to_proto(t: Topic) -> sync_pb2.Topic:
    return sync_pb2.Topic(name=t.name, examples=t.examples, keywords=t.keywords)


def topic_from_proto(m: sync_pb2.Topic) -> Topic:
    return Topic(name=m.name, examples=tuple(m.examples), keywords=tuple(m.keywords))


def set_to_proto(s: TopicSet) -> sync_pb2.TopicSet:
    return sync_pb2.TopicSet(tenant=s.tenant, version=s.version, topics=[topic_to_proto(t) for t in s.topics])


def set_from_proto(m: sync_pb2.TopicSet) -> TopicSet:
    return TopicSet(tenant=m.tenant, version=m.version, topics=tuple(topic_from_proto(t) for t in m.topics))


def sets_to_proto(version: int, sets: list[TopicSet]) -> sync_pb2.TopicSets:
    return sync_pb2.TopicSets(version=version, sets=[set_to_proto(s) for s in sets])


def sets_from_proto(m: sync_pb2.TopicSets) -> list[TopicSet]:
    return [set_from_proto(s) for s in m.sets]
