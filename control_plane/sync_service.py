"""The edge-sync use cases: what a connected edge lacks, and what its messages change.

The gRPC servicer (control_plane.sync_servicer) only translates: it turns each message into
these calls (in a worker thread: they touch the database) and streams what :meth:`pending`
computes. Nothing here knows gRPC or protobuf.
"""

from __future__ import annotations

import logging
import threading

import msgspec

from control_plane.errors import CpError, InvalidArgument, ResourceExhausted
from control_plane.model_quality import bound_quality
from control_plane.snapshot import Snapshot
from control_plane.state import ControlPlane
from control_plane.store import ModelRow, PrivacyEntry
from sentiedge_core.access import App
from sentiedge_core.adaptation import Round as AdaptationRound
from sentiedge_core.cohorts import Aggregate, window_mismatch
from sentiedge_core.cooccurrence import NeighbourTable, PairWindow
from sentiedge_core.experiments import Experiment
from sentiedge_core.rules import Rule
from sentiedge_core.segments import SegmentSet, Summary
from sentiedge_core.topics import TopicSet

log = logging.getLogger("control_plane.sync")
_NEVER = object()
PRIVACY_BATCH = 500
RECEIPT_LOOKBACK = 10_000  # how far below a reconnecting edge's cursor missing receipts are looked for


class Stream(msgspec.Struct, kw_only=True):
    """What one open stream has sent its edge so far (and what the edge says it serves)."""

    node_id: str
    serving: str  # manifest sha the edge serves
    cursor: int  # last privacy seq sent
    model: str = ""  # manifest sha of the last assignment sent
    sent: dict[str, object] = {}  # resource kind -> the version of it last sent (control_plane.snapshot)
    adaptation: str = ""  # "job/round" of the last adaptation round sent


class Welcome(msgspec.Struct, kw_only=True):
    privacy_head: int
    privacy_floor: int
    heartbeat_interval_s: float
    cohort_window_s: int = 0  # the control plane's cohort window
    cooccurrence_window_s: int = 0  # and its co-occurrence window
    window_error: str = ""  # set where the edge declared another of either


class Priors(msgspec.Struct, kw_only=True):
    generated_at: float
    cohorts: list[Aggregate]
    recent: list[Aggregate]


class Pending(msgspec.Struct, kw_only=True):
    """What the edge lacks now, in the order it is sent; ``more`` when privacy updates remain."""

    revoked: bool = False
    privacy: list[PrivacyEntry] = []
    assignment: ModelRow | None = None
    priors: Priors | None = None
    rules: tuple[int, list[Rule]] | None = None
    experiments: tuple[int, list[Experiment]] | None = None
    apps: tuple[int, list[App]] | None = None
    segments: SegmentSet | None = None
    topics: tuple[int, list[TopicSet]] | None = None
    neighbours: list[NeighbourTable] | None = None  # every tenant's table, when any version moved
    adaptation: AdaptationRound | None = None
    more: bool = False


class Heartbeat(msgspec.Struct, kw_only=True):
    """A heartbeat in domain terms: health, counts and closed windows; no per-user value."""

    model: tuple[str, str, str]
    serving_personal: bool
    quality: list[tuple[str, int, int]] = []  # (model, labelled, disagreements)
    outputs: dict | None = None
    experiments: list[tuple] = []  # (window, experiment, arm, cohort, exposures, clicks, conversions, value)
    # (at, rule, cohort as reported ("tenant:key"), active, value, tenant, the bare cohort key)
    triggers: list[tuple[float, str, str, bool, float, str, str]] = []
    cohorts: list[Aggregate] = []
    segments: list[Summary] = []
    cooccurrence: list[PairWindow] = []


class SyncService:
    def __init__(self, cp: ControlPlane) -> None:
        self.cp = cp
        self._filings = threading.Lock()  # the per-node rate limiter; calls arrive from worker threads

    def authenticate(self, node_id: str, names: list[str], metadata: tuple, call: str) -> str:
        """The node a call acts as (its certificate's or secret's), or CpError (audited)."""
        try:
            return self.cp.node_auth.authenticate(node_id, names, metadata)
        except CpError as exc:
            self.cp.audit(f"node {node_id}", f"EdgeSync.{call}", f"refused: {exc.message}"[:300], ok=False)
            log.warning("refused %s as %s: %s", call, node_id, exc.message)
            raise

    def enroll(self, node_id: str, token: str) -> str:
        """A one-time enrollment token exchanged for the node's secret (not under mTLS)."""
        cp = self.cp
        try:
            if cp.settings.tls:
                raise InvalidArgument("this control plane uses mTLS: the node's certificate is its credential")
            secret = cp.node_auth.exchange(node_id, token, cp.now())
        except CpError as exc:
            cp.audit(f"node {node_id}", "EdgeSync.Enroll", f"refused: {exc.message}"[:300], ok=False)
            raise
        cp.audit(f"node {node_id}", "EdgeSync.Enroll", "enrolled: node secret issued")
        log.info("node %s enrolled", node_id)
        return secret

    def connect(self, node_id: str, region: str, model: tuple[str, str, str], cursor: int,
                bundled: tuple[str, str, str] | None, windows: tuple[int, int] = (0, 0)) -> tuple[Stream, Welcome]:
        """A node's stream opens; ``windows`` are the cohort and co-occurrence windows its Hello
        declared (0: an edge from before those fields)."""
        cp = self.cp
        floor = cp.store.privacy_floor()  # a node behind the compacted prefix starts after it
        start = max(cursor, floor)
        cp.nodes.hello(node_id, region, model, start, cp.now(), bundled=bundled)
        # An edge ACKs an update after applying it; if this control plane stopped (a kill, a
        # crash) before storing that ACK, the edge's cursor is past a receipt the ledger lacks.
        # Those updates are sent again: the edge only ACKs them (never applies one twice), and
        # the request completes. Looked for a bounded way back (what one stream has in flight).
        gap = cp.store.first_unreceipted(node_id, max(floor, start - RECEIPT_LOOKBACK), start)
        if gap is not None:
            log.info("node %s: receipts from privacy update %d up to its cursor %d are missing: sending those again "
                     "for their receipts", node_id, gap, start)
        ours = (int(cp.cohorts.window_s), int(cp.neighbours.window_s))
        problems = []
        for kind, declared, own in zip(("cohort", "co-occurrence"), windows, ours, strict=True):
            mismatch = window_mismatch(kind, declared, own)
            if declared:  # an old edge says nothing: what it sends is checked on intake
                cp.metrics.window_mismatch.labels(node_id, kind).set(int(mismatch is not None))
            if mismatch is not None:
                problems.append(mismatch)
                log.warning("node %s: %s", node_id, mismatch)
                cp.audit(f"node {node_id}", "EdgeSync.Hello", mismatch[:300], ok=False)
        return (Stream(node_id=node_id, serving=model[2], cursor=start if gap is None else gap - 1),
                Welcome(privacy_head=cp.store.privacy_head(), privacy_floor=floor,
                        heartbeat_interval_s=cp.settings.heartbeat_interval_s, cohort_window_s=ours[0],
                        cooccurrence_window_s=ours[1], window_error="; ".join(problems)))

    def disconnect(self, node_id: str) -> None:
        self.cp.nodes.gone(node_id, self.cp.now())

    def pending(self, stream: Stream) -> Pending:
        """Everything the stream has not sent yet; marks it sent on ``stream``. What every stream
        sends alike comes from the shared snapshot (computed once per change, not per stream)."""
        cp, node_id = self.cp, stream.node_id
        view = cp.snapshot.view(cp.generation)
        if node_id in view.revoked:
            return Pending(revoked=True)
        privacy, more = Snapshot.privacy_after(view, stream.cursor, PRIVACY_BATCH, cp.store.privacy_after)
        out = Pending(privacy=privacy)
        if out.privacy:
            stream.cursor = out.privacy[-1].seq
        desired = cp.registry.desired(node_id, rollouts=Snapshot.once(view, "rollouts", cp.store.rollouts),
                                      model_of=lambda sha: Snapshot.once(view, ("model", sha),
                                                                         lambda: cp.store.model(sha=sha)))
        if desired is not None and desired.manifest_sha not in (stream.serving, stream.model):
            parked = cp.store.node_model(node_id, desired.manifest_sha)
            if parked is None or parked[0] != "parked":
                out.assignment = desired
                stream.model = desired.manifest_sha
        for kind, (version, payload) in view.resources.items():  # one loop over the kinds, not one copy each
            if stream.sent.get(kind, _NEVER) != version:
                stream.sent[kind] = version
                setattr(out, kind, payload)
        task = cp.adaptations.task_for(stream.serving, Snapshot.once(view, "adaptation", cp.adaptations.open_tasks))
        if task is not None and stream.adaptation != f"{task.job}/{task.round}" and \
                not cp.store.answered(task.job, task.round, node_id):
            stream.adaptation = f"{task.job}/{task.round}"
            out.adaptation = task
        out.more = more
        return out

    def adaptation_update(self, stream: Stream, job: str, round_: int, status: str, delta: list[float], count: int,
                          error: str) -> None:
        """An edge's answer to an adaptation round: kept (once), then any complete round closes."""
        cp, now, node_id = self.cp, self.cp.now(), stream.node_id
        refused = cp.adaptations.receive(node_id, stream.serving, job, round_, status, delta, count, now)
        if refused:
            cp.metrics.adaptation_updates_refused.inc()
            cp.audit_log.write(now, node_id, "EdgeSync.Adaptation", f"refused {job} round {round_}: {refused}"[:300],
                               False)
            log.warning("node %s: adaptation %s round %d refused: %s", node_id, job[:40], round_, refused)
            return
        if status != "ok":
            log.info("node %s declined adaptation %s round %d: %s %s", node_id, job, round_, status, error[:200])
        self.advance_adaptations()

    def advance_adaptations(self) -> None:
        cp, now = self.cp, self.cp.now()
        if not cp.adaptations.running():
            return  # the common case: no job, no need to look at the fleet
        serving = {v.node.node_id: v.node.model_sha for v in cp.nodes.views(now) if v.state == "connected"}
        changed = cp.adaptations.advance(now, serving)
        if changed:
            cp.metrics.adaptation_rounds.inc(len(changed))
            cp.wake_all()  # the next round (or nothing) for every stream

    def heartbeat(self, stream: Stream, beat: Heartbeat) -> None:
        cp, node_id, now = self.cp, stream.node_id, self.cp.now()
        stream.serving = beat.model[2] or stream.serving
        if beat.quality:
            cp.store.put_quality(node_id, bound_quality(beat.quality))
            if cp.canary_gate is not None and cp.canary_gate.check(now):
                cp.wake_all()  # the new assignment goes out
        if beat.outputs is not None:
            cp.store.put_outputs(node_id, msgspec.json.encode(beat.outputs).decode(), now)
        cp.nodes.seen(node_id, now, model=beat.model, serving_personal=beat.serving_personal)
        if beat.experiments:
            clipped = cp.experiments.ingest(node_id, beat.experiments, now)
            if clipped:
                log.warning("node %s reported %d implausible experiment counts: clipped", node_id, clipped)
        for at, rule, cohort, active, value, tenant, key in cp.trigger_intake.accept(node_id, beat.triggers, now):
            cp.store.rule_event(at, node_id, rule, cohort, "activated" if active else "cleared", value)
            if tenant:  # the tenant's webhook hears of a change of the fleet's state
                cp.rules.reported(node_id, tenant, rule, key, active, value, at, now)
        clipped = cp.cohorts.ingest(node_id, beat.cohorts, now)
        if clipped:
            log.warning("node %s reported %d implausible cohort aggregates: refused or clipped "
                        "(sentiedge_cp_cohort_aggregates_refused_total says why)", node_id, clipped)
            cp.metrics.clipped.labels(node_id).inc(clipped)
        refused = cp.segments.ingest(node_id, beat.segments, now)
        if refused:
            cp.metrics.segment_sums_refused.inc(refused)
        if cp.segments.advance(now):
            cp.metrics.segment_rounds.inc()
        self.advance_adaptations()  # rounds past their timeout close here too
        tenants: list[str] = []
        if beat.cooccurrence:
            tenants, clipped = cp.neighbours.ingest(node_id, beat.cooccurrence, now)
            if clipped:
                log.warning("node %s reported %d implausible co-occurrence windows: clipped", node_id, clipped)
                cp.metrics.clipped.labels(node_id).inc(clipped)
        published = cp.neighbours.rebuild_due(now, tenants)
        if beat.cohorts or beat.segments or published:  # a merge changed: every stream sends it
            cp.wake_all()

    def file(self, node_id: str, request_id: str, kind: int, subject: str, purposes: list[str],
             at: float, policy_version: str = "") -> tuple[int, bool]:
        """A privacy request an edge filed: (its seq, whether it is new). Raises CpError (audited)."""
        cp, now = self.cp, self.cp.now()
        try:
            with self._filings:
                over = cp.filing_limit.take(node_id, now)
            if over:
                raise ResourceExhausted("over CP_FILINGS_PER_NODE_PER_S; the edge keeps it queued")
            entry, new = cp.ledger.file(request_id, kind, subject, purposes, at, node_id, now, policy_version)
        except CpError as exc:
            cp.audit_log.write(now, node_id, "EdgeSync.File", f"refused: {exc.message}"[:300], False)
            log.warning("node %s filing %s refused: %s", node_id, request_id[:64], exc.message)
            raise
        if new:
            cp.wake_all()
        return entry.seq, new

    def privacy_applied(self, node_id: str, seq: int, error: str | None) -> None:
        if error is None:
            self.cp.receipt(seq, node_id)
        else:
            _not_applied(node_id, seq, error)

    async def privacy_acked(self, node_id: str, seq: int, error: str | None) -> None:
        """:meth:`privacy_applied` for a stream's event loop (the receipt is group-committed there)."""
        if error is None:
            await self.cp.stream_receipt(seq, node_id)
        else:
            _not_applied(node_id, seq, error)

    def model_applied(self, stream: Stream, model: tuple[str, str, str], error: str | None) -> None:
        """The edge serves the assigned model now, or refused it (parked until a new push)."""
        cp, node_id, now, sha = self.cp, stream.node_id, self.cp.now(), model[2]
        if error is None:
            cp.store.set_node_model(node_id, sha, "serving", "", now)
            stream.serving = sha
            cp.nodes.seen(node_id, now, model=model)
        else:
            cp.store.set_node_model(node_id, sha, "parked", error, now)
            log.warning("node %s refused model %s %s, parked: %s", node_id, model[0], model[1], error)

    def bundle(self, manifest_sha: str) -> ModelRow | None:
        return self.cp.store.model(sha=manifest_sha)

    def bundle_chunk(self, manifest_sha: str, offset: int, size: int) -> bytes:
        return self.cp.store.bundle_chunk(manifest_sha, offset, size)


def _not_applied(node_id: str, seq: int, error: str) -> None:
    log.error("node %s could not apply privacy update %d: %s", node_id, seq, error)
