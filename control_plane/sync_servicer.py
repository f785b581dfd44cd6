"""gRPC transport of the edge-facing EdgeSync service (one bidirectional stream per edge).

After the edge's Hello, the stream sends only what the edge lacks: privacy updates after
its cursor, its model assignment unless it already serves it or parked it, merged cohort
priors, rules, experiments and the app set when they change, receipts for requests it filed
and for heartbeats it sent. It wakes on any change, and at least every heartbeat interval.

Every call is bound to the node's credential (control_plane.node_auth): a stream acts only
as the node it authenticated as, so it cannot ACK, file or report for any other.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re

import grpc

from control_plane import convert
from control_plane.errors import CpError, InvalidArgument, ResourceExhausted
from control_plane.state import ControlPlane
from protos.sentiedge.v1 import common_pb2, sync_pb2, sync_pb2_grpc

log = logging.getLogger("control_plane.sync")
NODE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
CHUNK = 256 << 10


class EdgeSyncServicer(sync_pb2_grpc.EdgeSyncServicer):
    def __init__(self, cp: ControlPlane) -> None:
        self.cp = cp

    async def Sync(self, request_iterator, context):  # noqa: N802 (gRPC method name)
        cp = self.cp
        try:
            first = await request_iterator.__anext__()
        except StopAsyncIteration:
            return
        if first.WhichOneof("kind") != "hello":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the first message on Sync must be a Hello")
        hello = first.hello
        node_id = await self._authenticate(hello.node_id, context, "Sync")
        now = cp.now()
        floor = cp.store.privacy_floor()  # a node behind the compacted prefix starts after it
        cp.nodes.hello(node_id, hello.region, convert.ref_tuple(hello.model), max(hello.privacy_cursor, floor), now,
                       bundled=convert.ref_tuple(hello.bundled) if hello.HasField("bundled") else None)
        log.info("node %s connected (region %s, model %s %s, privacy cursor %d)", node_id, hello.region,
                 hello.model.name, hello.model.version, hello.privacy_cursor)
        wake = asyncio.Event()
        outbox: asyncio.Queue[sync_pb2.ControlMessage] = asyncio.Queue()
        state = {"serving": hello.model.manifest_sha256}
        cp.watch(node_id, wake)
        reader = asyncio.create_task(self._read(node_id, request_iterator, outbox, wake, state))
        sent_cursor = max(hello.privacy_cursor, floor)
        sent_model = ""
        sent_priors = -1
        sent_rules = -1
        sent_experiments = -1
        sent_apps = -1
        try:
            yield sync_pb2.ControlMessage(welcome=sync_pb2.Welcome(
                node_id=node_id, privacy_head=cp.store.privacy_head(), privacy_floor=floor,
                heartbeat_interval_s=cp.settings.heartbeat_interval_s))
            while not reader.done():
                wake.clear()
                credential = cp.store.credential(node_id)
                if credential is not None and credential[2]:
                    log.warning("node %s was revoked: closing its stream", node_id)
                    await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"node {node_id!r} was revoked")
                for entry in cp.store.privacy_after(sent_cursor):
                    yield convert.privacy_update(entry)
                    sent_cursor = entry.seq
                desired = cp.registry.desired(node_id)
                if desired is not None and desired.manifest_sha not in (state["serving"], sent_model):
                    parked = cp.store.node_model(node_id, desired.manifest_sha)
                    if parked is None or parked[0] != "parked":
                        yield sync_pb2.ControlMessage(model=sync_pb2.ModelAssignment(
                            model=convert.model_ref(desired), bundle_sha256=desired.bundle_sha,
                            bundle_size=desired.size, bundled=desired.bundled))
                        sent_model = desired.manifest_sha
                if cp.cohorts.version != sent_priors:
                    sent_priors = cp.cohorts.version
                    now = cp.now()
                    yield sync_pb2.ControlMessage(priors=sync_pb2.CohortPriors(
                        generated_at=now, cohorts=[convert.aggregate_to_proto(a) for a in cp.cohorts.priors(now)],
                        recent=[convert.aggregate_to_proto(a) for a in cp.cohorts.merged(now)]))
                rules_version = cp.store.rules_version()
                if rules_version != sent_rules:
                    sent_rules = rules_version
                    yield sync_pb2.ControlMessage(rules=sync_pb2.RuleSet(
                        version=rules_version, rules=[convert.rule_to_proto(r) for r in cp.rules.all()]))
                experiments_version = cp.store.experiments_version()
                if experiments_version != sent_experiments:
                    sent_experiments = experiments_version
                    yield sync_pb2.ControlMessage(experiments=sync_pb2.ExperimentSet(
                        version=experiments_version,
                        experiments=[convert.experiment_to_proto(e) for e in cp.experiments.all()]))
                apps_version = cp.store.apps_version()
                if apps_version != sent_apps:
                    sent_apps = apps_version
                    yield sync_pb2.ControlMessage(apps=convert.apps_to_proto(apps_version, cp.apps.all()))
                while not outbox.empty():
                    yield outbox.get_nowait()
                if cp.store.privacy_after(sent_cursor, 1) or not outbox.empty():
                    continue
                try:
                    await asyncio.wait_for(wake.wait(), timeout=cp.settings.heartbeat_interval_s)
                except TimeoutError:
                    pass
        finally:
            reader.cancel()
            cp.unwatch(node_id, wake)
            try:
                cp.nodes.gone(node_id, cp.now())
            except Exception:  # shutting down: the store may already be closed; the next start resets this
                log.debug("could not record that %s disconnected", node_id)
            log.info("node %s disconnected", node_id)

    async def _read(self, node_id: str, request_iterator, outbox: asyncio.Queue, wake: asyncio.Event,
                    state: dict) -> None:
        cp = self.cp
        try:
            async for message in request_iterator:
                kind = message.WhichOneof("kind")
                now = cp.now()
                if kind == "ack":
                    self._ack(node_id, message.ack, now, state)
                elif kind == "heartbeat":
                    health = message.heartbeat.health
                    state["serving"] = health.model.manifest_sha256 or state["serving"]
                    if health.quality:
                        cp.store.put_quality(node_id, [(q.model, q.labelled, q.disagreements) for q in health.quality])
                    if health.HasField("outputs"):
                        cp.store.put_outputs(node_id, json.dumps(convert.outputs_record(health)), now)
                    cp.nodes.seen(node_id, now, model=convert.ref_tuple(health.model),
                                  serving_personal=health.serving_personal)
                    if message.heartbeat.experiments:
                        cp.store.put_experiment_counts(node_id, [
                            (e.window_start, e.experiment, e.arm, e.cohort, e.exposures, e.clicks, e.conversions,
                             e.value) for e in message.heartbeat.experiments])
                    for t in message.heartbeat.triggers:
                        cp.store.rule_event(t.at, node_id, t.rule, t.cohort, "activated" if t.active else "cleared",
                                            t.value)
                    before = cp.cohorts.version
                    clipped = cp.cohorts.ingest(node_id, [convert.aggregate_from_proto(a)
                                                          for a in message.heartbeat.cohorts])
                    if clipped:
                        log.warning("node %s reported %d implausible cohort aggregates: clipped", node_id, clipped)
                        cp.metrics.clipped.labels(node_id).inc(clipped)
                    if cp.cohorts.version != before:
                        cp.wake_all()
                    if message.heartbeat.seq:  # stored: the edge may forget what it carried
                        await outbox.put(sync_pb2.ControlMessage(heartbeat_receipt=sync_pb2.HeartbeatReceipt(
                            seq=message.heartbeat.seq)))
                        wake.set()
                elif kind == "filing":
                    f = message.filing
                    try:
                        if cp.filing_limit.take(node_id, now):
                            raise ResourceExhausted("over CP_FILINGS_PER_NODE_PER_S; the edge keeps it queued")
                        entry, new = cp.ledger.file(f.request_id, f.kind, f.subject, list(f.purposes), f.at,
                                                    node_id, now)
                    except CpError as exc:
                        cp.audit_log.write(now, node_id, "EdgeSync.File", f"refused: {exc.message}"[:300], False)
                        log.warning("node %s filing %s refused: %s", node_id, f.request_id[:64], exc.message)
                        continue
                    # The edge's own request id: a filing folded into an earlier pending request is
                    # receipted all the same, so the edge stops resending it.
                    await outbox.put(sync_pb2.ControlMessage(filing_receipt=sync_pb2.FilingReceipt(
                        request_id=f.request_id, seq=entry.seq)))
                    if new:
                        cp.wake_all()
                    wake.set()
        except (asyncio.CancelledError, grpc.aio.AioRpcError):
            pass

    def _ack(self, node_id: str, ack: sync_pb2.Ack, now: float, state: dict) -> None:
        cp = self.cp
        subject = ack.WhichOneof("subject")
        if subject == "privacy_seq":
            if ack.status == common_pb2.ACK_STATUS_ACK:
                cp.receipt(ack.privacy_seq, node_id)
            else:
                log.error("node %s could not apply privacy update %d: %s", node_id, ack.privacy_seq, ack.error)
        elif subject == "model":
            sha = ack.model.manifest_sha256
            if ack.status == common_pb2.ACK_STATUS_ACK:
                cp.store.set_node_model(node_id, sha, "serving", "", now)
                state["serving"] = sha
                cp.nodes.seen(node_id, now, model=convert.ref_tuple(ack.model))
            else:
                cp.store.set_node_model(node_id, sha, "parked", ack.error, now)
                log.warning("node %s refused model %s %s, parked: %s", node_id, ack.model.name,
                            ack.model.version, ack.error)

    async def _authenticate(self, node_id: str, context, call: str) -> str:
        if not NODE_ID.match(node_id):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"node id {node_id[:80]!r} must be 1-63 letters, digits, '.', '_' or '-'")
        names = [n.decode() for n in (context.auth_context() or {}).get("x509_common_name", [])]
        try:
            return self.cp.node_auth.authenticate(node_id, names, context.invocation_metadata())
        except CpError as exc:
            self.cp.audit(f"node {node_id}", f"EdgeSync.{call}", f"refused: {exc.message}"[:300], ok=False)
            log.warning("refused %s as %s: %s", call, node_id, exc.message)
            await context.abort(exc.code, exc.message)

    async def Enroll(self, request, context):  # noqa: N802
        """A one-time enrollment token for this node id, exchanged for its node secret."""
        node_id = request.node_id
        if not NODE_ID.match(node_id):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "node id must be 1-63 letters, digits, '.', '_', '-'")
        try:
            if self.cp.settings.tls:
                raise InvalidArgument("this control plane uses mTLS: the node's certificate is its credential")
            secret = self.cp.node_auth.exchange(node_id, request.enrollment_token[:200], self.cp.now())
        except CpError as exc:
            self.cp.audit(f"node {node_id}", "EdgeSync.Enroll", f"refused: {exc.message}"[:300], ok=False)
            await context.abort(exc.code, exc.message)
        self.cp.audit(f"node {node_id}", "EdgeSync.Enroll", "enrolled: node secret issued")
        log.info("node %s enrolled", node_id)
        return sync_pb2.EnrollResponse(node_id=node_id, node_secret=secret)

    async def DownloadBundle(self, request, context):  # noqa: N802
        await self._authenticate(request.node_id, context, "DownloadBundle")
        row = self.cp.store.model(sha=request.manifest_sha256)
        if row is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no bundle {request.manifest_sha256}")
        offset = request.offset
        if offset > row.size:
            await context.abort(grpc.StatusCode.OUT_OF_RANGE, f"offset {offset} is past the end ({row.size})")
        while offset < row.size:
            block = self.cp.store.bundle_chunk(row.manifest_sha, offset, CHUNK)
            if not block:
                break
            yield sync_pb2.BundleChunk(data=block, offset=offset, total=row.size)
            offset += len(block)
