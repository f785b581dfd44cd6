"""The edge's side of the Sync stream (``edge-node serve --control-plane HOST:PORT``).

* Connects, says Hello with what it holds (model, privacy cursor), reconnects with
  exponential backoff and full jitter, and resumes from the cursor it persisted.
* Privacy updates are applied (erase, suppress) and the cursor is persisted in the same
  store transaction, then ACKed: the ACK is the receipt. An update at or below the cursor
  was applied before and is only ACKed again, never applied twice.
* Deletions and withdrawals made at this edge wait in the store's outbox until the control
  plane returns a filing receipt: nothing is lost while it is unreachable. At most
  ``FILING_WINDOW`` filings are unreceipted on the stream at once; one whose receipt does not
  come (the control plane refused it for its per-node rate limit, or could not store it: it
  answers nothing then) is sent again on the same stream after ``FILING_RETRY_S``, doubling
  (with jitter) up to ``FILING_RETRY_MAX_S``. A reconnect starts every unreceipted one afresh.
* A stream that stops answering is replaced: the control plane receipts every heartbeat it
  stores, in order, so when the oldest heartbeat still without a receipt was sent more than
  ``stall_s`` ago (at least three heartbeat intervals), the edge ends the session and
  reconnects after a jittered wait of up to ``backoff_max_s`` (``sentiedge_sync_stalls_total``).
  A slow control plane only delays receipts; one that stopped reading this stream, or a stream
  whose messages no longer leave the edge, never sends them. The task that sends filings and
  heartbeats is watched the same way: if it fails, the session ends with the error logged
  instead of staying open with nothing going up.
* Model assignments are downloaded, verified, loaded, warmed up and swapped in; any failure
  is NACKed and the current model keeps serving.
* Heartbeats carry health and the cohort windows that closed since the last one (and the item
  co-occurrence windows, minimum size applied), aggregates only: no text and no user id ever
  leaves the edge. Closed windows, co-occurrence windows, experiment counts and trigger
  transitions count as sent only when the control plane returns a receipt for the
  heartbeat that carried them; until then every heartbeat carries them again (the control
  plane replaces a resent window, so nothing is counted twice and nothing is lost).
* The edge proves who it is: its mTLS certificate, or (plain gRPC) a node secret it got once
  for the one-time enrollment token of ``control-plane nodes --enroll`` and keeps in its store.
* Item-neighbour tables (the collaborative signal) arrive per tenant, are persisted and rank
  from then on.
* The app set (client keys, signing keys, server keys) arrives like everything else and is
  persisted, so a restarted edge verifies callers before it reconnects.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from pathlib import Path

import grpc
from google.protobuf.json_format import MessageToJson

from edge_node.errors import ConfigError, EdgeError
from edge_node.fleet import Fleet, ModelId
from edge_node.metrics import EdgeMetrics
from edge_node.node_state import NodeState
from edge_node.personalization.triggers import Transition
from edge_node.privacy import PrivacyLog
from edge_node.records import PrivacyRequest
from edge_node.store import EdgeStore
from edge_node.sync import convert
from protos.sentiedge.v1 import sync_pb2, sync_pb2_grpc
from sentiedge_core import adaptation, cooccurrence, segments, topic_wire

log = logging.getLogger("edge_node.sync")
LOOPBACK = ("127.", "localhost:", "[::1]:")
FILING_WINDOW = 256  # unreceipted filings on the stream at once (the rest wait their turn in the outbox)
FILING_RETRY_S = 3.0  # no receipt this long after sending: sent again (a receipt takes milliseconds)
FILING_RETRY_MAX_S = 60.0
SESSION_RESET_S = 30.0  # a session that lasted this long resets the reconnect backoff


class StreamStalled(Exception):
    """A heartbeat went unreceipted for longer than the stall timeout: the stream is replaced."""


class _Session:
    """One open stream: its stub, the queue of what goes upstream, and the tasks it started
    (cancelled when the stream ends)."""

    def __init__(self, *, stub, queue: asyncio.Queue, tasks: set) -> None:
        self.stub, self.queue, self.tasks = stub, queue, tasks

    def spawn(self, work) -> None:
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


class SyncAgent:
    def __init__(self, fleet: Fleet, *, privacy_log: PrivacyLog, state: NodeState, store: EdgeStore,
                 metrics: EdgeMetrics, target: str, node_id: str, region: str, backoff_max_s: float = 30.0,
                 audit_log: str | None = None, tls: tuple[str, str, str] | None = None,
                 enrollment_token: str = "", windows: tuple[int, int] = (0, 0), stall_s: float = 120.0) -> None:
        self.fleet = fleet  # the use cases facing the control plane: what this stream applies and gathers
        self.privacy_log = privacy_log  # the privacy use case: the log's updates, once and in order
        self.state = state
        self.store = store  # the privacy outbox: filings queued here, receipted upstream
        self.metrics = metrics
        self.target = target
        self.node_id = node_id
        self.region = region
        self.backoff_max_s = backoff_max_s
        self.stall_s = stall_s  # a heartbeat unreceipted this long: the stream is replaced
        self.windows = windows  # cohort and co-occurrence, declared in the Hello: the control plane checks them
        self.connected = False
        self.head = 0
        self.heartbeat_s = 5.0
        self.audit_log = audit_log  # every message sent upstream, for whoever must check what leaves
        self.credentials = None
        if tls is not None:  # read once at start: a missing file fails start-up, not every reconnect
            ca, cert, key = (Path(p).read_bytes() for p in tls)
            self.credentials = grpc.ssl_channel_credentials(ca, key, cert)
        self.enrollment_token = enrollment_token
        self.metadata: tuple[tuple[str, str], ...] | None = None
        if self.credentials is None and not self.node_secret and not enrollment_token \
                and not target.startswith(LOOPBACK):
            raise ConfigError(f"the control plane {target} is not on loopback: this edge needs a credential, "
                              f"mTLS (EDGE_TLS_CA/CERT/KEY) or an enrollment token from `control-plane nodes --enroll "
                              f"{node_id}` (EDGE_ENROLLMENT_TOKEN)")
        self._beat = 0
        # Filings unreceipted on this stream: request id -> (outbox seq, sent at, due again at, delay, request)
        self._filings: dict[str, tuple[int, float, float, float, PrivacyRequest]] = {}
        self._receipted = asyncio.Event()
        self._last_receipt = 0.0
        self._beats_sent: dict[int, float] = {}  # heartbeat seq -> when it was queued, until receipted
        # heartbeat seq -> (last cohort window, last trigger id, last co-occurrence window)
        self._inflight: dict[int, tuple[int, int, int]] = {}
        self._adapting = asyncio.Lock()
        self._task: asyncio.Task | None = None
        self._started = time.monotonic()
        last_success = self.state.sync_last_success
        if last_success is None:
            last_success = self.state.sync_last_success = time.time()  # a new node starts in sync
        # Read on every personalize request (fail-closed check): kept in memory, persisted on change.
        self._last_success = last_success
        self._handlers = self._handler_table()  # message kind -> what it does

    # --- state the rest of the node reads -----------------------------------------------------
    @property
    def cursor(self) -> int:
        return self.state.privacy_cursor

    @property
    def node_secret(self) -> str:
        return self.state.node_secret

    @property
    def last_success(self) -> float:
        return self._last_success

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="sync-agent")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def run(self) -> None:
        backoff = 0.5
        while True:
            started = time.monotonic()
            try:
                await self._session()
                if time.monotonic() - started > SESSION_RESET_S:  # a stream that ends at once keeps backing off
                    backoff = 0.5
            except asyncio.CancelledError:
                raise
            except grpc.aio.AioRpcError as exc:
                log.warning("sync with %s: %s %s", self.target, exc.code().name, exc.details())
            except StreamStalled as exc:
                self.metrics.sync_stalls.inc()
                log.warning("sync with %s: %s; reconnecting", self.target, exc)
                backoff = self.backoff_max_s  # a stalled control plane: the fleet does not return all at once
            except Exception:
                log.exception("sync session failed")
            self.connected = False
            self.fleet.sync_connected(False)
            delay = random.uniform(0, min(self.backoff_max_s, backoff))  # full jitter
            backoff = min(self.backoff_max_s, backoff * 2)
            await asyncio.sleep(delay)

    async def _session(self) -> None:
        # 16 MiB: a tenant's item-neighbour table is one message (CP_NEIGHBOURS_MAX_ITEMS x TOP_M: ~5 MB at
        # the defaults)
        options = [("grpc.max_receive_message_length", 16 << 20), ("grpc.keepalive_time_ms", 20_000)]
        channel_cm = (grpc.aio.secure_channel(self.target, self.credentials, options=options) if self.credentials
                      else grpc.aio.insecure_channel(self.target, options=options))
        async with channel_cm as channel:
            stub = sync_pb2_grpc.EdgeSyncStub(channel)
            if self.credentials is None and not self.node_secret and self.enrollment_token:
                reply = await stub.Enroll(sync_pb2.EnrollRequest(node_id=self.node_id,
                                                                 enrollment_token=self.enrollment_token), timeout=30)
                self.state.node_secret = reply.node_secret
                log.info("enrolled with %s as %s: node secret stored in the data dir", self.target, self.node_id)
            self.metadata = (("authorization", f"Bearer {self.node_secret}"),) if self.node_secret else None
            queue: asyncio.Queue[sync_pb2.EdgeMessage | None] = asyncio.Queue()
            self._inflight.clear()
            self._beats_sent.clear()
            call = stub.Sync(self._outgoing(queue), metadata=self.metadata)
            bundled = self.fleet.bundled()
            await queue.put(sync_pb2.EdgeMessage(hello=sync_pb2.Hello(
                node_id=self.node_id, region=self.region, capabilities=["privacy", "models", "cohorts"],
                model=convert.model_ref(*self.fleet.serving()), privacy_cursor=self.cursor, agent_version="1",
                bundled=convert.model_ref(*bundled) if bundled else None,
                cohort_window_seconds=self.windows[0], cooccurrence_window_seconds=self.windows[1])))
            session = _Session(stub=stub, queue=queue, tasks=set())
            pump = asyncio.create_task(self._pump(queue), name="sync-pump")
            reader = asyncio.create_task(self._read(call, session), name="sync-read")
            try:  # the session ends when the stream does, or when what sends upstream fails or sees a stall
                await asyncio.wait({pump, reader}, return_when=asyncio.FIRST_COMPLETED)
                for task in (reader, pump):
                    if task.done():
                        task.result()  # its error ends the session (logged by run), else the stream ended
            finally:
                call.cancel()
                tasks = (pump, reader, *session.tasks)
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)  # every task's end retrieved, none left running
                await queue.put(None)

    async def _read(self, call, session: _Session) -> None:
        """Every message the control plane sends, to its handler, in order."""
        async for message in call:
            kind = message.WhichOneof("kind")
            handler = self._handlers.get(kind)
            if handler is None:  # a kind from a newer control plane: ignored, as protobuf does
                log.debug("ignoring a %s message this edge does not know", kind)
                continue
            await handler(getattr(message, kind), session)

    # --- what each kind of control-plane message does (the protocol as a table) ----------------
    def _handler_table(self) -> dict:
        return {"welcome": self._on_welcome, "privacy": self._on_privacy, "model": self._on_model,
                "priors": self._on_priors, "filing_receipt": self._on_filing_receipt,
                "experiments": self._on_experiments, "apps": self._on_apps,
                "heartbeat_receipt": self._on_heartbeat_receipt, "segments": self._on_segments,
                "adaptation": self._on_adaptation, "rules": self._on_rules, "topics": self._on_topics,
                "neighbours": self._on_neighbours}

    async def _on_welcome(self, welcome, session: _Session) -> None:
        self.head = welcome.privacy_head
        if welcome.privacy_floor > self.cursor:  # compacted: every node applied those
            log.info("privacy log compacted up to %d: starting after it (cursor was %d)", welcome.privacy_floor,
                     self.cursor)
            self.state.privacy_cursor = welcome.privacy_floor
        self.heartbeat_s = welcome.heartbeat_interval_s or self.heartbeat_s
        self.fleet.welcomed(welcome.window_error)
        self.connected = True
        self.fleet.sync_connected(True)
        self.metrics.sync_sessions.inc()
        log.info("synced with %s (privacy head %d, cursor %d)", self.target, self.head, self.cursor)
        self._caught_up()

    async def _on_privacy(self, update, session: _Session) -> None:
        await session.queue.put(self._apply_privacy(update))

    async def _on_model(self, assignment, session: _Session) -> None:
        session.spawn(self._apply_model(session.stub, assignment, session.queue))

    async def _on_priors(self, priors, session: _Session) -> None:
        self.fleet.apply_priors(convert.priors(priors), convert.recent_cells(priors))

    async def _on_filing_receipt(self, receipt, session: _Session) -> None:
        self.store.filed(receipt.request_id)
        self._last_receipt = time.monotonic()
        if self._filings.pop(receipt.request_id, None) is not None:
            self._receipted.set()  # room in the window: the pump sends the next ones

    async def _on_experiments(self, experiments, session: _Session) -> None:
        self.fleet.apply_experiments(convert.experiments(experiments), experiments.version)

    async def _on_apps(self, apps, session: _Session) -> None:
        if self.fleet.apply_apps(convert.apps(apps)):
            log.info("apps v%d: %d apps", apps.version, len(apps.apps))

    async def _on_heartbeat_receipt(self, receipt, session: _Session) -> None:
        self._receipt(receipt.seq)

    async def _on_segments(self, published, session: _Session) -> None:
        self.fleet.apply_segments(segments.set_from_proto(published))

    async def _on_neighbours(self, table, session: _Session) -> None:
        self.fleet.apply_neighbours(cooccurrence.table_from_proto(table))

    async def _on_adaptation(self, request, session: _Session) -> None:
        session.spawn(self._adapt(request, session.queue))

    async def _on_rules(self, rules, session: _Session) -> None:
        self.fleet.apply_rules(convert.rules(rules), rules.version)
        log.info("cohort trigger rules v%d: %d rules", rules.version, len(rules.rules))

    async def _on_topics(self, topics, session: _Session) -> None:
        self.fleet.apply_topics(topic_wire.sets_from_proto(topics), topics.version)
        log.info("topics v%d: %s", topics.version,
                 "; ".join(f"{s.tenant}: {len(s.topics)}" for s in topics.sets) or "none")

    async def _adapt(self, request: sync_pb2.AdaptationRound, queue: asyncio.Queue) -> None:
        """One adaptation round at a time; the answer goes upstream as soon as it is ready."""
        async with self._adapting:
            answer = await self.fleet.adaptation_round(adaptation.round_from_proto(request))
        await queue.put(sync_pb2.EdgeMessage(adaptation=sync_pb2.AdaptationUpdate(
            job=answer.job, round=answer.round, status=answer.status, delta=answer.delta, count=answer.count,
            error=answer.error)))

    async def _outgoing(self, queue: asyncio.Queue):
        while (message := await queue.get()) is not None:
            if self.audit_log is not None:
                with open(self.audit_log, "a", encoding="utf-8") as fh:
                    fh.write(MessageToJson(message, indent=None) + "\n")
            yield message

    async def _pump(self, queue: asyncio.Queue) -> None:
        """Filings (every unreceipted one, resent each session, and on this stream when its
        receipt is late) and heartbeats."""
        self._filings.clear()
        sent = -1  # the outbox's sequence number sent last in this session (all are resent each session)
        next_beat = 0.0
        while True:
            await self._check_stall()
            sent = await self._send_filings(queue, sent)
            pending = self.fleet.outbox_pending()
            if time.monotonic() >= next_beat and self.connected:
                next_beat = time.monotonic() + self.heartbeat_s
                await queue.put(self._heartbeat(pending))
                self._caught_up()
            self._receipted.clear()
            try:  # a receipt makes room in the window at once; else look again shortly
                await asyncio.wait_for(self._receipted.wait(), timeout=0.2)
            except TimeoutError:
                pass

    async def _check_stall(self) -> None:
        """Raise StreamStalled when the oldest unreceipted heartbeat is older than the stall timeout."""
        limit = max(self.stall_s, 3 * self.heartbeat_s)
        if not self._beats_sent or time.monotonic() - min(self._beats_sent.values()) <= limit:
            return
        await asyncio.sleep(1.0)  # receipts already here but not yet read (this loop was busy) count
        if self._beats_sent and (waited := time.monotonic() - min(self._beats_sent.values())) > limit:
            raise StreamStalled(f"no receipt for a heartbeat sent {waited:.0f} s ago (EDGE_SYNC_STALL_S "
                                f"{self.stall_s:g}, heartbeats every {self.heartbeat_s:g} s)")

    async def _send_filings(self, queue: asyncio.Queue, sent: int) -> int:
        """Send queued filings up to the window, and again those whose receipt is overdue;
        returns the outbox sequence number sent last."""
        now = time.monotonic()
        for request_id, (seq, sent_at, due, delay, request) in list(self._filings.items()):
            if now < due:
                continue
            # Refused or lost: sent again on this stream. While other filings are receipted the
            # control plane is up and only pacing this edge (its rate limit), so the wait stays
            # short; while none is, it doubles.
            delay = FILING_RETRY_S if self._last_receipt > sent_at else min(delay * 2, FILING_RETRY_MAX_S)
            self._filings[request_id] = (seq, now, now + random.uniform(delay / 2, delay), delay, request)
            self.metrics.filings_resent.inc()
            await queue.put(convert.filing(request))
        room = FILING_WINDOW - len(self._filings)
        if room > 0:
            for seq, request in self.store.queued_requests(after=sent, limit=room):
                sent = seq
                self._filings[request.request_id] = (seq, now, now + FILING_RETRY_S, FILING_RETRY_S, request)
                await queue.put(convert.filing(request))
        return sent

    def _caught_up(self) -> None:
        if self.connected and self.cursor >= self.head:
            self._last_success = time.time()
            self.state.sync_last_success = self._last_success

    def _receipt(self, seq: int) -> None:
        """The control plane stored heartbeat ``seq``: what it carried is sent."""
        for beat in [b for b in self._beats_sent if b <= seq]:  # the control plane stores them in order
            del self._beats_sent[beat]
        done = self._inflight.pop(seq, None)
        if done is None:
            return
        last_window, last_trigger, last_pairs = done
        state = self.state
        with state.transaction():
            acked = state.cohorts_acked_until
            if acked is None or last_window > acked:
                state.cohorts_acked_until = last_window
            pairs_acked = state.pairs_acked_until
            if pairs_acked is None or last_pairs > pairs_acked:
                state.pairs_acked_until = last_pairs
            state.pending_triggers = [t for t in state.pending_triggers if t["id"] > last_trigger]

    def _heartbeat(self, queued_filings: int) -> sync_pb2.EdgeMessage:
        closed = self.fleet.closed_windows(self.state.cohorts_acked_until, time.time(), self.state.pairs_acked_until)
        aggregates = [convert.aggregate(window, closed.window_s, tenant, key, cell)
                      for window, tenant, key, cell in closed.cohorts]
        experiments = [convert.experiment_aggregate(*row) for row in closed.experiments]
        triggers = self.fleet.pending_triggers()
        self._beat += 1
        self._beats_sent[self._beat] = time.monotonic()
        self._inflight[self._beat] = (closed.last_closed, triggers[-1]["id"] if triggers else 0,
                                      closed.cooccurrence_last_closed)
        h = self.fleet.health()
        health = sync_pb2.NodeHealth(
            ready=True, model=convert.model_ref(*h.model), privacy_cursor=self.cursor,
            uptime_s=time.monotonic() - self._started, queued_filings=queued_filings,
            serving_personal=h.serving_personal, outputs=sync_pb2.ModelOutputs(**h.outputs),
            quality=[sync_pb2.ModelQuality(model=m, labelled=q.labelled, disagreements=q.disagreements)
                     for m, q in h.quality.items()])
        events = [convert.trigger_event(Transition(**{k: v for k, v in t.items() if k != "id"})) for t in triggers]
        return sync_pb2.EdgeMessage(heartbeat=sync_pb2.Heartbeat(
            health=health, cohorts=aggregates, triggers=events, experiments=experiments, seq=self._beat,
            segments=[segments.summary_to_proto(s) for s in closed.segments],
            cooccurrence=[cooccurrence.window_to_proto(w) for w in closed.cooccurrence]))

    def _apply_privacy(self, update: sync_pb2.PrivacyUpdate) -> sync_pb2.EdgeMessage:
        """The update as the node's privacy use case decides (once, in order), as an ACK or NACK."""
        self.head = max(self.head, update.seq)
        refused = self.privacy_log.apply_update(update.seq, update.kind, update.subject, list(update.purposes),
                                                update.at, update.request_id, policy_version=update.policy_version)
        if refused is None:
            self._caught_up()
        return convert.ack_privacy(update.seq, error=refused or "")

    async def _apply_model(self, stub, assignment: sync_pb2.ModelAssignment, queue: asyncio.Queue) -> None:
        ref = assignment.model
        sha = ref.manifest_sha256

        async def download(offset: int):
            async for chunk in stub.DownloadBundle(sync_pb2.DownloadRequest(
                    manifest_sha256=sha, offset=offset, node_id=self.node_id), metadata=self.metadata):
                yield chunk.data

        try:
            await self.fleet.install_model(ModelId(ref.name, ref.version, sha), bundled=assignment.bundled,
                                          bundle_sha=assignment.bundle_sha256, size=assignment.bundle_size,
                                          download=download)
            await queue.put(convert.ack_model(ref))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            message = exc.message if isinstance(exc, EdgeError) else f"{type(exc).__name__}: {exc}"
            serving = self.fleet.serving()
            log.error("refusing model %s %s: %s (still serving %s %s)", ref.name, ref.version, message,
                      serving.name, serving.version)
            await queue.put(convert.ack_model(ref, error=message))
