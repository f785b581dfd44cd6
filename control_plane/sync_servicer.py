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
import logging

import grpc

from control_plane import convert
from control_plane.errors import CpError
from control_plane.grpc_status import abort
from control_plane.nodes import NODE_ID
from control_plane.state import ControlPlane
from control_plane.sync_service import Stream, SyncService
from protos.sentiedge.v1 import common_pb2, sync_pb2, sync_pb2_grpc

log = logging.getLogger("control_plane.sync")
CHUNK = 256 << 10


class EdgeSyncServicer(sync_pb2_grpc.EdgeSyncServicer):
    """Translates the stream to :class:`control_plane.sync_service.SyncService` calls, each in a
    worker thread (they read and write the database), and streams what it computes."""

    def __init__(self, cp: ControlPlane) -> None:
        self.cp = cp
        self.service = SyncService(cp)

    async def Sync(self, request_iterator, context):  # noqa: N802 (gRPC method name)
        cp, service = self.cp, self.service
        try:
            first = await request_iterator.__anext__()
        except StopAsyncIteration:
            return
        if first.WhichOneof("kind") != "hello":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the first message on Sync must be a Hello")
        hello = first.hello
        node_id = await self._authenticate(hello.node_id, context, "Sync")
        stream, welcome = await asyncio.to_thread(
            service.connect, node_id, hello.region, convert.ref_tuple(hello.model), hello.privacy_cursor,
            convert.ref_tuple(hello.bundled) if hello.HasField("bundled") else None,
            (hello.cohort_window_seconds, hello.cooccurrence_window_seconds))
        log.info("node %s connected (region %s, model %s %s, privacy cursor %d)", node_id, hello.region,
                 hello.model.name, hello.model.version, hello.privacy_cursor)
        wake = asyncio.Event()
        outbox: asyncio.Queue[sync_pb2.ControlMessage] = asyncio.Queue()
        cp.watch(node_id, wake)
        reader = asyncio.create_task(self._read(stream, request_iterator, outbox, wake))
        try:
            yield sync_pb2.ControlMessage(welcome=sync_pb2.Welcome(
                node_id=node_id, privacy_head=welcome.privacy_head, privacy_floor=welcome.privacy_floor,
                heartbeat_interval_s=welcome.heartbeat_interval_s, cohort_window_seconds=welcome.cohort_window_s,
                cooccurrence_window_seconds=welcome.cooccurrence_window_s, window_error=welcome.window_error))
            while not reader.done():
                wake.clear()
                try:
                    pending = await asyncio.to_thread(service.pending, stream)
                except CpError as exc:  # the store is closing or unreachable: the edge reconnects
                    await context.abort(grpc.StatusCode.UNAVAILABLE, exc.message)
                if pending.revoked:
                    log.warning("node %s was revoked: closing its stream", node_id)
                    await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"node {node_id!r} was revoked")
                for message in convert.pending_messages(pending):
                    yield message
                while not outbox.empty():
                    yield outbox.get_nowait()
                if pending.more or not outbox.empty():
                    continue
                try:
                    await asyncio.wait_for(wake.wait(), timeout=cp.settings.heartbeat_interval_s)
                except TimeoutError:
                    pass
            if not reader.cancelled() and reader.result() is False:
                await context.abort(grpc.StatusCode.INTERNAL, "the control plane failed reading this stream's "
                                                              "messages (its log says why); reconnect later")
        finally:
            reader.cancel()
            cp.unwatch(node_id, wake)
            try:
                await asyncio.to_thread(service.disconnect, node_id)
            except Exception:  # shutting down: the store may already be closed; the next start resets this
                log.debug("could not record that %s disconnected", node_id)
            log.info("node %s disconnected", node_id)

    async def _read(self, stream: Stream, request_iterator, outbox: asyncio.Queue, wake: asyncio.Event) -> bool:
        """The edge's messages, in order, until the stream ends; False if reading them failed here."""
        service = self.service
        try:
            async for message in request_iterator:
                kind = message.WhichOneof("kind")
                if kind == "ack" and message.ack.WhichOneof("subject") == "privacy_seq":
                    ack = message.ack
                    await service.privacy_acked(stream.node_id, ack.privacy_seq,
                                                None if ack.status == common_pb2.ACK_STATUS_ACK else ack.error)
                elif kind == "ack":
                    await asyncio.to_thread(self._ack, stream, message.ack)
                elif kind == "heartbeat":
                    await asyncio.to_thread(service.heartbeat, stream, convert.heartbeat_from_proto(message.heartbeat))
                    if message.heartbeat.seq:  # stored: the edge may forget what it carried
                        await outbox.put(sync_pb2.ControlMessage(heartbeat_receipt=sync_pb2.HeartbeatReceipt(
                            seq=message.heartbeat.seq)))
                        wake.set()
                elif kind == "adaptation":
                    a = message.adaptation
                    await asyncio.to_thread(service.adaptation_update, stream, a.job[:64], a.round,
                                            a.status[:32], list(a.delta), a.count, a.error)
                elif kind == "filing":
                    f = message.filing
                    try:
                        seq, _ = await asyncio.to_thread(service.file, stream.node_id, f.request_id, f.kind,
                                                         f.subject, list(f.purposes), f.at, f.policy_version)
                    except CpError:
                        continue  # audited and logged; the edge keeps it queued and resends
                    # The edge's own request id: a filing folded into an earlier pending request is
                    # receipted all the same, so the edge stops resending it.
                    await outbox.put(sync_pb2.ControlMessage(filing_receipt=sync_pb2.FilingReceipt(
                        request_id=f.request_id, seq=seq)))
                    wake.set()
        except (asyncio.CancelledError, grpc.aio.AioRpcError):
            pass
        except CpError as exc:  # the store is closing or unreachable: end the stream, the edge reconnects
            log.warning("node %s: stream ends: %s", stream.node_id, exc.message)
        except Exception:  # a bug, not the edge's doing: logged; the stream ends with INTERNAL (the edge backs off)
            log.exception("node %s: stream ends: reading its messages failed", stream.node_id)
            return False
        return True

    def _ack(self, stream: Stream, ack: sync_pb2.Ack) -> None:
        error = None if ack.status == common_pb2.ACK_STATUS_ACK else ack.error
        if ack.WhichOneof("subject") == "model":
            self.service.model_applied(stream, convert.ref_tuple(ack.model), error)

    async def _authenticate(self, node_id: str, context, call: str) -> str:
        if not NODE_ID.match(node_id):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"node id {node_id[:80]!r} must be 1-63 letters, digits, '.', '_' or '-'")
        names = [n.decode() for n in (context.auth_context() or {}).get("x509_common_name", [])]
        try:
            return await asyncio.to_thread(self.service.authenticate, node_id, names,
                                           tuple(context.invocation_metadata() or ()), call)
        except CpError as exc:
            await abort(context, exc)

    async def Enroll(self, request, context):  # noqa: N802
        """A one-time enrollment token for this node id, exchanged for its node secret."""
        node_id = request.node_id
        if not NODE_ID.match(node_id):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "node id must be 1-63 letters, digits, '.', '_', '-'")
        try:
            secret = await asyncio.to_thread(self.service.enroll, node_id, request.enrollment_token[:200])
        except CpError as exc:
            await abort(context, exc)
        return sync_pb2.EnrollResponse(node_id=node_id, node_secret=secret)

    async def DownloadBundle(self, request, context):  # noqa: N802
        await self._authenticate(request.node_id, context, "DownloadBundle")
        row = await asyncio.to_thread(self.service.bundle, request.manifest_sha256)
        if row is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no bundle {request.manifest_sha256}")
            return  # abort raised already
        offset = request.offset
        if offset > row.size:
            await context.abort(grpc.StatusCode.OUT_OF_RANGE, f"offset {offset} is past the end ({row.size})")
        while offset < row.size:
            block = await asyncio.to_thread(self.service.bundle_chunk, row.manifest_sha, offset, CHUNK)
            if not block:
                break
            yield sync_pb2.BundleChunk(data=block, offset=offset, total=row.size)
            offset += len(block)
