"""The control plane's gRPC surface in-process on a loopback port: auth, errors, hostile input."""

import asyncio
import socket

import grpc
import pytest

from control_plane.config import load_settings
from control_plane.server import build
from control_plane.state import ControlPlane
from protos.sentiedge.v1 import operator_pb2, operator_pb2_grpc, sync_pb2, sync_pb2_grpc
from sentiedge_core.cohorts import Aggregate

TOKEN = "ops:integration-token"
AUTH = (("authorization", "Bearer integration-token"),)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_credential(cp, node_id: str) -> tuple:
    """Enroll a node as an operator would and exchange the token as its edge does: its metadata."""
    token, _ = cp.node_auth.enroll(node_id, 600, cp.now())
    return (("authorization", f"Bearer {cp.node_auth.exchange(node_id, token, cp.now())}"),)


def run(tmp_path, scenario, *, app: str = "", **env):
    async def main():
        settings = load_settings({"CP_DATA_DIR": str(tmp_path), "CP_PORT": str(free_port()), "CP_ADMIN_TOKENS": TOKEN,
                                  "CP_PSEUDONYM_KEY": "k" * 32, **env})
        cp = ControlPlane(settings)
        if app:  # one tenant: privacy requests need not name it
            cp.apps.add(app, [], "", cp.now())
        server, _ = build(settings, cp)
        await server.start()
        try:
            async with grpc.aio.insecure_channel(settings.address) as channel:
                return await scenario(channel, cp)
        finally:
            await server.stop(0)
            cp.close()

    return asyncio.run(main())


def test_operator_calls_need_a_valid_token(tmp_path):
    async def scenario(channel, cp):
        privacy = operator_pb2_grpc.PrivacyStub(channel)
        for metadata in ((), (("authorization", "Bearer wrong-token"),)):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await privacy.Delete(operator_pb2.DeleteRequest(user_id="alice"), metadata=metadata)
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert cp.store.privacy_head() == 0  # nothing written
        reply = await privacy.Delete(operator_pb2.DeleteRequest(user_id="alice"), metadata=AUTH)
        assert reply.state == "completed" and reply.seq == 1  # no nodes registered: nothing to wait for

    run(tmp_path, scenario, app="shop")


def test_bad_requests_get_invalid_argument_or_not_found_with_a_reason(tmp_path):
    async def scenario(channel, cp):
        privacy = operator_pb2_grpc.PrivacyStub(channel)
        models = operator_pb2_grpc.ModelsStub(channel)
        cases = [
            (privacy.Revoke(operator_pb2.RevokeRequest(user_id="a", purposes=["ads"]), metadata=AUTH),
             grpc.StatusCode.INVALID_ARGUMENT, "unknown purpose"),
            (privacy.Status(operator_pb2.PrivacyStatusRequest(request_id="req-none"), metadata=AUTH),
             grpc.StatusCode.NOT_FOUND, "no privacy request"),
            (models.Rollout(operator_pb2.RolloutRequest(name="m", version="9"), metadata=AUTH),
             grpc.StatusCode.NOT_FOUND, "push it first"),
            (models.Rollback(operator_pb2.RollbackRequest(name="m"), metadata=AUTH),
             grpc.StatusCode.FAILED_PRECONDITION, "no rollout to roll back"),
        ]
        for call, code, message in cases:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call
            assert err.value.code() == code and message in err.value.details()

    run(tmp_path, scenario, app="shop")


def test_rules_experiments_and_merged_cohorts_name_a_known_tenant(tmp_path):
    async def scenario(channel, cp):
        rules = operator_pb2_grpc.RulesStub(channel)
        experiments = operator_pb2_grpc.ExperimentsStub(channel)
        cohorts = operator_pb2_grpc.CohortsStub(channel)
        rule = sync_pb2.TriggerRule(name="r", cohort="eu/*/*", signal="negative_share", op=">", threshold=0.5,
                                    clear=0.4, window_minutes=30, min_size=3, action="calm", tenant="nobody")
        arms = [sync_pb2.Arm(name="a", weight=1), sync_pb2.Arm(name="h", weight=1, holdout=True)]
        for call in (rules.Add(rule, metadata=AUTH),
                     experiments.Add(sync_pb2.Experiment(name="x", salt="x", arms=arms, tenant="nobody"),
                                     metadata=AUTH),
                     cohorts.Merged(operator_pb2.MergedCohortsRequest(tenant="nobody"), metadata=AUTH)):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "no tenant 'nobody'" in err.value.details()
        rule.tenant = "shop"
        assert (await rules.Add(rule, metadata=AUTH)).tenant == "shop"
        assert (await rules.List(operator_pb2.ListRulesRequest(), metadata=AUTH)).rules[0].tenant == "shop"
        added = await experiments.Add(sync_pb2.Experiment(name="x", salt="x", arms=arms, tenant="shop"), metadata=AUTH)
        assert added.tenant == "shop"
        cp.apps.add("other", [], "", cp.now())
        last = int(cp.now()) // 1800 * 1800 - 1800
        cp.cohorts.ingest("e1", [cp.cohorts.bound(a, 100)[0] for a in (
            Aggregate(tenant="shop", window_start=last, window_seconds=1800, cohort="eu/m/evening", users=60),
            Aggregate(tenant="other", window_start=last, window_seconds=1800, cohort="eu/m/evening", users=60),
            # A tenant no app has, and a window from the future: a rogue's new dimensions, dropped.
            Aggregate(tenant="nobody", window_start=last, window_seconds=1800, cohort="eu/m/evening", users=60),
            Aggregate(tenant="shop", window_start=last + 1800 * 17520, window_seconds=1800, cohort="eu/m/evening",
                      users=60))])
        merged = await cohorts.Merged(operator_pb2.MergedCohortsRequest(tenant="shop"), metadata=AUTH)
        assert [(c.tenant, c.cohort) for c in merged.cohorts] == [("shop", "eu/m/evening")]
        every = await cohorts.Merged(operator_pb2.MergedCohortsRequest(), metadata=AUTH)
        assert {c.tenant for c in every.cohorts} == {"shop", "other"}
        assert all(c.window_start <= cp.now() for c in every.cohorts)

    run(tmp_path, scenario, app="shop")


def test_truncated_and_oversized_uploads_are_refused_and_nothing_is_written(tmp_path):
    async def scenario(channel, cp):
        models = operator_pb2_grpc.ModelsStub(channel)

        async def chunks(*parts):
            for p in parts:
                yield operator_pb2.PushChunk(data=p)

        with pytest.raises(grpc.aio.AioRpcError) as err:
            await models.Push(chunks(b"ustar-but-truncated" * 10), metadata=AUTH)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await models.Push(chunks(*[b"\0" * (100 << 10)] * 25), metadata=AUTH)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "CP_MAX_BUNDLE_BYTES" in err.value.details()
        with pytest.raises(grpc.aio.AioRpcError) as err:  # one message over the gRPC limit
            await models.Push(chunks(b"\0" * (200 << 10)), metadata=AUTH)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert cp.store.models() == [] and cp.store.bundle_shas() == []

    run(tmp_path, scenario, CP_MAX_BUNDLE_BYTES=str(2 << 20), CP_MAX_MESSAGE_BYTES=str(128 << 10))


def test_sync_must_start_with_a_valid_hello(tmp_path):
    async def scenario(channel, cp):
        stub = sync_pb2_grpc.EdgeSyncStub(channel)

        async def messages(*items):
            for item in items:
                yield item

        for first, message in ((sync_pb2.EdgeMessage(heartbeat=sync_pb2.Heartbeat()), "must be a Hello"),
                               (sync_pb2.EdgeMessage(hello=sync_pb2.Hello(node_id="../etc")), "node id")):
            call = stub.Sync(messages(first))
            with pytest.raises(grpc.aio.AioRpcError) as err:
                async for _ in call:
                    pass
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and message in err.value.details()
        assert cp.store.nodes() == []

    run(tmp_path, scenario)


def test_a_replayed_or_forged_filing_is_not_applied_twice(tmp_path):
    async def scenario(channel, cp):
        stub = sync_pb2_grpc.EdgeSyncStub(channel)
        queue: asyncio.Queue = asyncio.Queue()

        async def outgoing():
            while (item := await queue.get()) is not None:
                yield item

        filing = sync_pb2.EdgeMessage(filing=sync_pb2.PrivacyFiling(
            request_id="req-1", kind=1, subject="0" * 32, at=1.0))
        forged = sync_pb2.EdgeMessage(filing=sync_pb2.PrivacyFiling(request_id="req-2", kind=1, subject="alice"))
        for item in (sync_pb2.EdgeMessage(hello=sync_pb2.Hello(node_id="edge-1")), filing, filing, forged):
            await queue.put(item)
        receipts = []
        call = stub.Sync(outgoing(), metadata=node_credential(cp, "edge-1"))
        async for message in call:
            if message.WhichOneof("kind") == "filing_receipt":
                receipts.append((message.filing_receipt.request_id, message.filing_receipt.seq))
                if len(receipts) == 2:
                    break
        await queue.put(None)
        call.cancel()
        assert receipts == [("req-1", 1), ("req-1", 1)]
        assert cp.store.privacy_head() == 1  # the replay added nothing, the forged subject was refused

    run(tmp_path, scenario, app="shop")


def test_tokens_are_named_listed_revocable_and_every_action_is_audited(tmp_path):
    async def scenario(channel, cp):
        admin = operator_pb2_grpc.AdminStub(channel)
        privacy = operator_pb2_grpc.PrivacyStub(channel)
        added = await admin.AddToken(operator_pb2.AddTokenRequest(name="alice"), metadata=AUTH)
        alice = (("authorization", f"Bearer {added.token}"),)
        assert len(added.token) > 30 and added.token not in open(tmp_path / "control-plane.db", "rb").read().decode(
            "latin-1")  # stored hashed
        await privacy.Delete(operator_pb2.DeleteRequest(user_id="dana@example.com"), metadata=alice)
        listed = await admin.ListTokens(operator_pb2.ListTokensRequest(), metadata=AUTH)
        assert {(t.name, t.source) for t in listed.tokens} == {("ops", "config"), ("alice", "store")}
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await admin.AddToken(operator_pb2.AddTokenRequest(name="alice"), metadata=AUTH)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        await admin.RevokeToken(operator_pb2.RevokeTokenRequest(name="alice"), metadata=AUTH)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await privacy.Delete(operator_pb2.DeleteRequest(user_id="x"), metadata=alice)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        audit = (await admin.Audit(operator_pb2.AuditRequest(limit=10), metadata=AUTH)).entries
        rows = [(e.who, e.action, e.ok) for e in reversed(audit)]
        assert rows == [("ops", "Admin.AddToken", True), ("alice", "Privacy.Delete", True),
                        ("ops", "Admin.AddToken", False), ("ops", "Admin.RevokeToken", True),
                        ("-", "Privacy.Delete", False)]
        assert all("dana" not in e.detail for e in audit)
        assert all(e.at > 0 for e in audit)

    run(tmp_path, scenario, app="shop")
