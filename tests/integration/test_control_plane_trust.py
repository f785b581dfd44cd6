"""The control plane as an attacker meets it: no node credential, another node's credential,
a revoked one, a poisoned heartbeat, floods of filings and of refused calls."""

import asyncio

import grpc
import pytest

from protos.sentiedge.v1 import operator_pb2, operator_pb2_grpc, sync_pb2, sync_pb2_grpc
from tests.integration.test_control_plane_grpc import AUTH, run

STRICT = {"CP_REQUIRE_NODE_CREDENTIALS": "true"}


class Stream:
    """One Sync stream driven by hand: put messages, read what comes back."""

    def __init__(self, channel, node_id: str, secret: str = "", **hello) -> None:
        self.queue: asyncio.Queue = asyncio.Queue()
        metadata = (("authorization", f"Bearer {secret}"),) if secret else None
        self.call = sync_pb2_grpc.EdgeSyncStub(channel).Sync(self._out(), metadata=metadata)
        self.queue.put_nowait(sync_pb2.EdgeMessage(hello=sync_pb2.Hello(node_id=node_id, region="eu", **hello)))

    async def _out(self):
        while (item := await self.queue.get()) is not None:
            yield item

    async def until(self, kind: str, timeout: float = 10.0):
        async def read():
            async for message in self.call:
                if message.WhichOneof("kind") == kind:
                    return message
        return await asyncio.wait_for(read(), timeout)

    def close(self) -> None:
        self.queue.put_nowait(None)
        self.call.cancel()


async def enroll(channel, node_id: str) -> str:
    nodes = operator_pb2_grpc.NodesStub(channel)
    token = (await nodes.Enroll(operator_pb2.EnrollNodeRequest(node_id=node_id), metadata=AUTH)).enrollment_token
    reply = await sync_pb2_grpc.EdgeSyncStub(channel).Enroll(
        sync_pb2.EnrollRequest(node_id=node_id, enrollment_token=token))
    return reply.node_secret


async def refused(stream: Stream) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stream.until("welcome")
    return err.value


def test_without_a_credential_no_one_can_sync_read_the_log_ack_or_register(tmp_path):
    async def scenario(channel, cp):
        privacy = operator_pb2_grpc.PrivacyStub(channel)
        await privacy.Delete(operator_pb2.DeleteRequest(user_id="alice"), metadata=AUTH)
        for i in range(33):  # an attacker registering fake nodes
            err = await refused(Stream(channel, f"fake-{i}"))
            assert err.code() == grpc.StatusCode.UNAUTHENTICATED and "node credential" in err.details()
        assert cp.store.nodes() == []
        # Bundle downloads too.
        with pytest.raises(grpc.aio.AioRpcError) as err:
            async for _ in sync_pb2_grpc.EdgeSyncStub(channel).DownloadBundle(
                    sync_pb2.DownloadRequest(manifest_sha256="x", node_id="fake-1")):
                pass
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # 33 refusals are folded into one audit row.
        rows = [e for e in cp.store.audit_entries(100) if e[2] == "EdgeSync.Sync"]
        assert 1 <= len(rows) <= 33 and len({r[1] for r in rows}) == 33 and all(not r[4] for r in rows)

    run(tmp_path, scenario, app="shop", **STRICT)


def test_a_node_secret_is_bound_to_its_node_and_enrollment_is_one_time(tmp_path):
    async def scenario(channel, cp):
        nodes = operator_pb2_grpc.NodesStub(channel)
        token = (await nodes.Enroll(operator_pb2.EnrollNodeRequest(node_id="edge-a"), metadata=AUTH)).enrollment_token
        edge_sync = sync_pb2_grpc.EdgeSyncStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as err:  # another node cannot spend it
            await edge_sync.Enroll(sync_pb2.EnrollRequest(node_id="edge-b", enrollment_token=token))
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        secret = (await edge_sync.Enroll(sync_pb2.EnrollRequest(node_id="edge-a", enrollment_token=token))).node_secret
        with pytest.raises(grpc.aio.AioRpcError) as err:  # spent
            await edge_sync.Enroll(sync_pb2.EnrollRequest(node_id="edge-a", enrollment_token=token))
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED and "used" in err.value.details()
        assert (await refused(Stream(channel, "edge-b", secret))).code() == grpc.StatusCode.PERMISSION_DENIED
        assert (await refused(Stream(channel, "edge-a", "ns_guess"))).code() == grpc.StatusCode.UNAUTHENTICATED
        stream = Stream(channel, "edge-a", secret)
        assert (await stream.until("welcome")).welcome.node_id == "edge-a"
        listed = (await nodes.List(operator_pb2.ListNodesRequest(), metadata=AUTH)).nodes
        assert [(n.node_id, n.credential) for n in listed] == [("edge-a", "secret")]
        # Revoked: the open stream closes and the secret no longer works.
        await nodes.Revoke(operator_pb2.RevokeNodeRequest(node_id="edge-a"), metadata=AUTH)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stream.until("never")
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED and "revoked" in err.value.details()
        assert (await refused(Stream(channel, "edge-a", secret))).code() == grpc.StatusCode.PERMISSION_DENIED

    run(tmp_path, scenario, **STRICT)


def test_on_loopback_by_default_no_anonymous_node_syncs_or_receives_key_material(tmp_path):
    async def scenario(channel, cp):
        cp.apps.add("shop", [], "", cp.now(), alg="HS256")  # a secret that could mint tokens
        err = await refused(Stream(channel, "dev-edge"))
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED and "node credential" in err.details()
        assert cp.store.nodes() == []  # it registered nothing, so it holds back no privacy request either
        secret = await enroll(channel, "edge-a")
        apps = (await Stream(channel, "edge-a", secret).until("apps")).apps
        assert [a.name for a in apps.apps] == ["shop"]  # a credentialed node gets what it verifies with

    run(tmp_path, scenario)


def test_the_explicit_development_flag_admits_anonymous_nodes_but_an_enrolled_id_still_needs_its_secret(tmp_path):
    async def scenario(channel, cp):
        assert (await Stream(channel, "dev-edge").until("welcome")).welcome.node_id == "dev-edge"
        secret = await enroll(channel, "edge-a")
        assert (await refused(Stream(channel, "edge-a"))).code() == grpc.StatusCode.UNAUTHENTICATED
        assert (await Stream(channel, "edge-a", secret).until("welcome")).welcome.node_id == "edge-a"

    run(tmp_path, scenario, CP_ALLOW_ANONYMOUS_NODES="true")


def test_a_poisoned_heartbeat_is_bounded_and_a_quarantined_node_leaves_the_merge(tmp_path):
    async def scenario(channel, cp):
        secrets = {n: await enroll(channel, n) for n in ("edge-real", "edge-rogue")}
        now_window = int(cp.now() // 1800 * 1800)

        def cell(back: int, users: int, categories: dict) -> sync_pb2.CohortAggregate:
            return sync_pb2.CohortAggregate(window_start=now_window - back * 1800, window_seconds=1800,
                                            cohort="eu/mobile/evening", users=users, texts=users // 2,
                                            negative=users // 10, events=users * 2, sentiment_sum=users / 4,
                                            categories=categories)

        async def beat(node, cells):
            stream = Stream(channel, node, secrets[node])
            await stream.until("welcome")
            stream.queue.put_nowait(sync_pb2.EdgeMessage(heartbeat=sync_pb2.Heartbeat(cohorts=cells, seq=7)))
            assert (await stream.until("heartbeat_receipt")).heartbeat_receipt.seq == 7
            stream.close()

        # A real edge that has been serving for a while, growing as real traffic does: its cap
        # grows with time (CP_COHORT_GROWTH per CP_COHORT_GROWTH_PERIOD_S), so an hour apart.
        clock = [cp.now()]
        cp.now = lambda: clock[0]
        for back, users in ((4, 90), (3, 170), (2, 300)):
            await beat("edge-real", [cell(back, users, {"beauty/skincare": users * 2.0, "books": users * 0.5})])
            clock[0] += 3600
        # The attack: one heartbeat from a fresh node claiming 100,000 users in casino/payday-loans.
        await beat("edge-rogue", [cell(1, 100_000, {"casino/payday-loans": 1e9})])
        prior = {p.cohort: p for p in cp.cohorts.priors(cp.now())}["eu/mobile/evening"]
        # The rogue counts as a new node (CP_NEW_NODE_COHORT_USERS: 100). The honest node, with
        # more than three times (CP_MAX_NODE_SHARE 0.75) the rest, counts as 3 x 100 (same means).
        assert prior.users == 300 + 100
        assert prior.categories["casino/payday-loans"] <= 100 * 3.0
        assert max(prior.categories, key=prior.categories.get) == "beauty/skincare", prior.categories
        assert "sentiedge_cp_cohort_aggregates_clipped_total" in cp.metrics.registry._names_to_collectors
        nodes = operator_pb2_grpc.NodesStub(channel)
        info = await nodes.Quarantine(operator_pb2.QuarantineRequest(node_id="edge-rogue"), metadata=AUTH)
        assert info.quarantined and info.credential == "secret"
        prior = {p.cohort: p for p in cp.cohorts.priors(cp.now())}["eu/mobile/evening"]
        assert "casino/payday-loans" not in prior.categories and prior.users == 90 + 170 + 300  # alone: in full
        await nodes.Quarantine(operator_pb2.QuarantineRequest(node_id="edge-rogue", release=True), metadata=AUTH)
        assert "casino/payday-loans" in {p.cohort: p for p in cp.cohorts.priors(cp.now())}[
            "eu/mobile/evening"].categories

    run(tmp_path, scenario, **STRICT)


def test_repeated_filings_for_one_subject_are_folded_while_pending(tmp_path):
    async def scenario(channel, cp):
        secret = await enroll(channel, "edge-a")
        await enroll(channel, "edge-b")
        stream = Stream(channel, "edge-a", secret)
        await stream.until("welcome")
        cp.nodes.hello("edge-b", "eu", ("", "", ""), 0, cp.now())  # a second node that has not applied it yet
        for i in range(20):
            stream.queue.put_nowait(sync_pb2.EdgeMessage(filing=sync_pb2.PrivacyFiling(
                request_id=f"req-{i}", kind=1, subject="a" * 32, at=1.0)))
        receipts = [await stream.until("filing_receipt") for _ in range(20)]
        assert [r.filing_receipt.request_id for r in receipts] == [f"req-{i}" for i in range(20)]
        assert {r.filing_receipt.seq for r in receipts} == {1}
        assert cp.store.privacy_head() == 1
        stream.close()

    run(tmp_path, scenario, **STRICT)


def test_apps_are_managed_audited_and_streamed_to_edges(tmp_path):
    async def scenario(channel, cp):
        apps = operator_pb2_grpc.AppsStub(channel)
        added = await apps.Add(operator_pb2.AddAppRequest(name="shop", origins=["https://shop.example"]),
                               metadata=AUTH)
        assert added.client_key.startswith("ck_") and added.app_id.startswith("app_")
        # EdDSA by default: the private key is shown once; nothing that mints tokens is kept or sent.
        assert added.private_key.startswith("-----BEGIN PRIVATE KEY") and not added.signing_secret
        assert added.alg == "EdDSA" and added.tenant == "shop"  # its own tenant by default
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await apps.Add(operator_pb2.AddAppRequest(name="bad", origins=["javascript:alert(1)"]), metadata=AUTH)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        key = await apps.AddServerKey(operator_pb2.AddServerKeyRequest(name="shop", key_name="backend",
                                                                       scopes=["events:write"]), metadata=AUTH)
        assert key.server_key.startswith("sk_")
        listed = (await apps.List(operator_pb2.ListAppsRequest(), metadata=AUTH)).apps
        assert [(a.name, a.client_key, a.signing_secret, a.private_key) for a in listed] == [("shop", "", "", "")]
        secret = await enroll(channel, "edge-a")
        stream = Stream(channel, "edge-a", secret)
        first = (await stream.until("apps")).apps
        assert [a.name for a in first.apps] == ["shop"] and first.apps[0].client_keys[0].sha256 != added.client_key
        assert [(k.alg, k.secret, bool(k.public_key)) for k in first.apps[0].signing_keys] == [("EdDSA", "", True)]
        assert added.private_key not in str(first)
        await apps.Revoke(operator_pb2.RevokeAppRequest(name="shop"), metadata=AUTH)
        second = (await stream.until("apps")).apps
        assert second.version > first.version and second.apps[0].revoked_at > 0
        stream.close()
        actions = [e[2] for e in cp.store.audit_entries(50)]
        assert {"Apps.Add", "Apps.AddServerKey", "Apps.Revoke"} <= set(actions)

    run(tmp_path, scenario, **STRICT)


def test_rotation_issues_new_keys_and_retires_the_old_after_the_grace(tmp_path):
    async def scenario(channel, cp):
        apps = operator_pb2_grpc.AppsStub(channel)
        first = await apps.Add(operator_pb2.AddAppRequest(name="shop"), metadata=AUTH)
        rotated = await apps.Rotate(operator_pb2.RotateAppRequest(name="shop", grace_s=3600), metadata=AUTH)
        assert rotated.client_key != first.client_key and rotated.kid != first.kid and rotated.client_keys == 2
        app = cp.apps.get("shop")
        assert [bool(k.not_after) for k in app.client_keys] == [True, False]  # the old one ends after the grace
        now = await apps.Rotate(operator_pb2.RotateAppRequest(name="shop"), metadata=AUTH)
        assert now.client_keys == 2  # no grace for the key it replaces; the first keeps the grace it was given
        with pytest.raises(grpc.aio.AioRpcError) as err:  # the control plane holds no private key to mint with
            await apps.Token(operator_pb2.AppTokenRequest(name="shop", user_id="u1"), metadata=AUTH)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "--private-key" in err.value.details()
        from sentiedge_core.access import AppSet, Gatekeeper, mint_token
        from sentiedge_core.errors import Unauthorized
        app = cp.apps.get("shop")
        current = next(k for k in app.signing_keys if k.kid == now.kid)
        token = mint_token(app, current, "u1", private_key=now.private_key.encode())
        gate = Gatekeeper()
        gate.set_apps(AppSet(apps=[cp.apps.get("shop")]))
        assert gate.admit(now.client_key, f"Bearer {token}", None).user == "u1"
        assert gate.admit(first.client_key, None, None).app.name == "shop"  # still in its hour of grace
        with pytest.raises(Unauthorized):
            gate.admit(rotated.client_key, None, None)  # replaced without grace

    run(tmp_path, scenario, **STRICT)


def test_an_app_may_register_an_ed25519_key_for_eddsa_tokens(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from sentiedge_core.access import AppSet, Gatekeeper, mint_token

    private = Ed25519PrivateKey.generate()
    pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    async def scenario(channel, cp):
        apps = operator_pb2_grpc.AppsStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await apps.Add(operator_pb2.AddAppRequest(name="bad", public_key="not a key"), metadata=AUTH)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "PEM" in err.value.details()
        added = await apps.Add(operator_pb2.AddAppRequest(name="shop", public_key=pem), metadata=AUTH)
        app = cp.apps.get("shop")
        ed = next(k for k in app.signing_keys if k.alg == "EdDSA")
        gate = Gatekeeper()
        gate.set_apps(AppSet(apps=[app]))
        token = mint_token(app, ed, "ann", private_key=private)
        assert gate.admit(added.client_key, f"Bearer {token}", None).user == "ann"

    run(tmp_path, scenario, **STRICT)


def test_node_states_read_as_what_happened(tmp_path):
    async def scenario(channel, cp):
        nodes = operator_pb2_grpc.NodesStub(channel)
        quarantined = await nodes.Quarantine(operator_pb2.QuarantineRequest(node_id="never-seen"), metadata=AUTH)
        assert quarantined.credential == "none" and quarantined.quarantined  # no token was ever issued
        token = await nodes.Enroll(operator_pb2.EnrollNodeRequest(node_id="never-seen"), metadata=AUTH)
        assert cp.node_auth.credential_of("never-seen") == "enrollment pending" and token.enrollment_token
        secret = await enroll(channel, "edge-a")
        stream = Stream(channel, "edge-a", secret)
        await stream.until("welcome")
        revoked = await nodes.Revoke(operator_pb2.RevokeNodeRequest(node_id="edge-a"), metadata=AUTH)
        assert (revoked.credential, revoked.state) == ("revoked", "revoked")
        audit = [e for e in cp.store.audit_entries(20) if e[2] == "Nodes.Enroll"]
        assert audit and " UTC)" in audit[0][3]

    run(tmp_path, scenario)


def test_the_welcome_answers_the_cohort_window_a_hello_declares(tmp_path):
    async def scenario(channel, cp):
        secret = await enroll(channel, "edge-1")
        answers = {}
        for declared in (0, 1800, 600):  # 0: an edge from before the field, checked cell by cell as before
            stream = Stream(channel, "edge-1", secret, cohort_window_seconds=declared)
            answers[declared] = (await stream.until("welcome")).welcome
            stream.close()
        assert all(w.cohort_window_seconds == 1800 for w in answers.values())
        assert answers[0].window_error == answers[1800].window_error == ""
        error = answers[600].window_error
        assert error.startswith("cohort window mismatch: this edge aggregates 600-second windows "
                                "(EDGE_COHORT_WINDOW_MINUTES=10), the control plane 1800-second ones "
                                "(CP_COHORT_WINDOW_MINUTES=30)"), error
        stream = Stream(channel, "edge-1", secret, cohort_window_seconds=600, cooccurrence_window_seconds=3600)
        both = (await stream.until("welcome")).welcome
        stream.close()
        assert both.cooccurrence_window_seconds == 86400
        assert both.window_error.split("; ")[1].startswith(
            "co-occurrence window mismatch: this edge aggregates 3600-second windows (EDGE_COOCCURRENCE_WINDOW_MINUTES"
            "=60), the control plane 86400-second ones (CP_COOCCURRENCE_WINDOW_MINUTES=1440)"), both.window_error
        assert any("cohort window mismatch" in e[3] for e in cp.store.audit_entries(20))

    run(tmp_path, scenario, **STRICT)
