"""Topics on the control plane over real gRPC on a loopback port: per-tenant sets, versions,
the starter set, clear INVALID_ARGUMENT / NOT_FOUND errors, and the set streamed to an edge's
Sync stream like rules."""

import asyncio

import grpc
import pytest

from protos.sentiedge.v1 import operator_pb2, operator_pb2_grpc, sync_pb2, sync_pb2_grpc
from sentiedge_core.topics import starter
from tests.integration.test_control_plane_grpc import AUTH, node_credential, run


def topic(name: str, examples=(), keywords=()) -> sync_pb2.Topic:
    return sync_pb2.Topic(name=name, examples=list(examples), keywords=list(keywords))


def test_topics_are_per_tenant_versioned_and_replaced_by_name(tmp_path):
    async def scenario(channel, cp):
        cp.apps.add("beauty-web", [], "", cp.now(), tenant="beauty")
        topics = operator_pb2_grpc.TopicsStub(channel)
        first = await topics.Add(operator_pb2.AddTopicRequest(tenant="shop", topic=topic(
            "packaging", ["too much plastic", "box arrived crushed", "  box arrived   CRUSHED "], ["packaging"])),
            metadata=AUTH)
        assert [t.name for t in first.topics] == ["packaging"]
        assert list(first.topics[0].examples) == ["too much plastic", "box arrived crushed"]  # blanks, repeats out
        second = await topics.Add(operator_pb2.AddTopicRequest(tenant="shop", topic=topic(
            "packaging", ["the box was crushed"])), metadata=AUTH)
        assert second.version > first.version and list(second.topics[0].examples) == ["the box was crushed"]
        await topics.Add(operator_pb2.AddTopicRequest(tenant="beauty", topic=topic("scent", keywords=["smell"])),
                         metadata=AUTH)
        every = await topics.List(operator_pb2.ListTopicsRequest(), metadata=AUTH)
        assert {s.tenant: [t.name for t in s.topics] for s in every.sets} == {"beauty": ["scent"],
                                                                             "shop": ["packaging"]}
        assert every.version == max(s.version for s in every.sets)
        shop = await topics.List(operator_pb2.ListTopicsRequest(tenant="shop"), metadata=AUTH)
        assert [s.tenant for s in shop.sets] == ["shop"]  # never another tenant's
        after = await topics.Remove(operator_pb2.RemoveTopicRequest(tenant="shop", name="packaging"), metadata=AUTH)
        assert list(after.topics) == [] and after.version > second.version
        actions = [a for _, _, a, _, _ in cp.store.audit_entries(20)]
        assert {"Topics.Add", "Topics.Remove"} <= set(actions)

    run(tmp_path, scenario, app="shop")


def test_bad_topic_calls_say_what_is_wrong(tmp_path):
    async def scenario(channel, cp):
        cp.apps.add("beauty-web", [], "", cp.now(), tenant="beauty")
        topics = operator_pb2_grpc.TopicsStub(channel)
        rules = operator_pb2_grpc.RulesStub(channel)
        cases = [
            (topics.Add(operator_pb2.AddTopicRequest(tenant="shop", topic=topic("Packaging!", ["x"])), metadata=AUTH),
             grpc.StatusCode.INVALID_ARGUMENT, "topic name 'Packaging!' must be 1-48 characters"),
            (topics.Add(operator_pb2.AddTopicRequest(tenant="shop", topic=topic("packaging", ["  "])), metadata=AUTH),
             grpc.StatusCode.INVALID_ARGUMENT, "needs at least one example or keyword"),
            (topics.Add(operator_pb2.AddTopicRequest(tenant="shop", topic=topic("packaging", ["x" * 201])),
                        metadata=AUTH), grpc.StatusCode.INVALID_ARGUMENT, "1-200 printable characters"),
            (topics.Add(operator_pb2.AddTopicRequest(topic=topic("packaging", ["x"])), metadata=AUTH),
             grpc.StatusCode.INVALID_ARGUMENT, "name the tenant whose topics these are (--tenant)"),
            (topics.Add(operator_pb2.AddTopicRequest(tenant="casino", topic=topic("packaging", ["x"])),
                        metadata=AUTH), grpc.StatusCode.INVALID_ARGUMENT, "no tenant 'casino'"),
            (topics.Remove(operator_pb2.RemoveTopicRequest(tenant="shop", name="delivery"), metadata=AUTH),
             grpc.StatusCode.NOT_FOUND, "tenant shop has no topic 'delivery'"),
            (rules.Add(sync_pb2.TriggerRule(name="r", cohort="*/*/*", signal="negative_share", topic="packaging",
                                            op=">", threshold=0.5, clear=0.4, window_minutes=30, min_size=3,
                                            action="note", tenant="shop"), metadata=AUTH),
             grpc.StatusCode.INVALID_ARGUMENT, "tenant shop has no topic 'packaging'"),
            (rules.Add(sync_pb2.TriggerRule(name="r", cohort="*/*/*", signal="mean_sentiment", topic="packaging",
                                            op="<", threshold=-0.5, clear=-0.4, window_minutes=30, min_size=3,
                                            action="note"), metadata=AUTH),
             grpc.StatusCode.INVALID_ARGUMENT, "watches negative_share or text_volume"),
        ]
        for call, code, message in cases:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call
            assert err.value.code() == code and message in err.value.details(), err.value.details()
        many = [topic(f"t{i}", keywords=[f"k{i}"]) for i in range(64)]
        for t in many:
            await topics.Add(operator_pb2.AddTopicRequest(tenant="shop", topic=t), metadata=AUTH)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await topics.Add(operator_pb2.AddTopicRequest(tenant="shop", topic=topic("t64", ["x"])), metadata=AUTH)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "the most a tenant may have (64)" in err.value.details()
        assert cp.topics.set_of("beauty").topics == ()  # nothing leaked into another tenant

    run(tmp_path, scenario, app="shop")


def test_seed_adds_the_starter_topics_a_tenant_lacks_and_keeps_its_edits(tmp_path):
    async def scenario(channel, cp):
        topics = operator_pb2_grpc.TopicsStub(channel)
        await topics.Add(operator_pb2.AddTopicRequest(topic=topic("packaging", ["our own words"])), metadata=AUTH)
        seeded = await topics.Seed(operator_pb2.SeedTopicsRequest(), metadata=AUTH)
        names = {t.name for t in starter()}
        assert set(seeded.added) == names - {"packaging"} and list(seeded.kept) == ["packaging"]
        by_name = {t.name: t for t in seeded.set.topics}
        assert set(by_name) == names and list(by_name["packaging"].examples) == ["our own words"]
        await topics.Remove(operator_pb2.RemoveTopicRequest(name="delivery"), metadata=AUTH)
        again = await topics.Seed(operator_pb2.SeedTopicsRequest(), metadata=AUTH)
        assert list(again.added) == ["delivery"]  # a seed restores what the starter set has and the tenant lacks

    run(tmp_path, scenario, app="shop")


def test_topic_sets_stream_to_edges_and_changes_follow(tmp_path):
    async def scenario(channel, cp):
        metadata = node_credential(cp, "edge-1")
        topics = operator_pb2_grpc.TopicsStub(channel)
        await topics.Add(operator_pb2.AddTopicRequest(topic=topic("packaging", ["box arrived crushed"])),
                         metadata=AUTH)
        outgoing: asyncio.Queue = asyncio.Queue()
        await outgoing.put(sync_pb2.EdgeMessage(hello=sync_pb2.Hello(node_id="edge-1")))

        async def requests():
            while (message := await outgoing.get()) is not None:
                yield message

        stream = sync_pb2_grpc.EdgeSyncStub(channel).Sync(requests(), metadata=metadata)

        async def next_topics():
            async for message in stream:
                if message.WhichOneof("kind") == "topics":
                    return message.topics

        first = await asyncio.wait_for(next_topics(), 10)
        assert [(s.tenant, [t.name for t in s.topics]) for s in first.sets] == [("shop", ["packaging"])]
        await topics.Remove(operator_pb2.RemoveTopicRequest(name="packaging"), metadata=AUTH)
        second = await asyncio.wait_for(next_topics(), 10)  # the change wakes the stream
        assert second.version > first.version and list(second.sets) == []  # the tenant has none now
        await outgoing.put(None)
        stream.cancel()

    run(tmp_path, scenario, app="shop")
