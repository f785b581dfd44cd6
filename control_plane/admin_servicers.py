"""gRPC transport of the operator services (Models, Privacy, Nodes, Cohorts). Every call
needs an operator token; domain errors become their gRPC status with the message."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import inspect
import logging
import tempfile
from pathlib import Path

import grpc
import msgspec

from control_plane import convert
from control_plane.errors import CpError, InvalidArgument
from control_plane.grpc_status import abort
from control_plane.model_quality import Comparison, wilson
from control_plane.operator_service import NodeState, OperatorService, QualityRow
from control_plane.state import ControlPlane
from protos.sentiedge.v1 import operator_pb2, operator_pb2_grpc, sync_pb2
from sentiedge_core import topic_wire
from sentiedge_core.daily import DailyRow

log = logging.getLogger("control_plane.admin")


def operator_call(method=None, *, audit=None):
    """Authenticate, run, audit, and turn a domain error into its gRPC status.

    ``audit(request, result)`` words what a changing call acted on; read-only calls pass
    none and are not audited. A refused token is audited too.
    """
    if method is None:
        return lambda m: operator_call(m, audit=audit)
    action = f"{method.__qualname__.split('Servicer.')[0]}.{method.__name__}"

    streaming = inspect.iscoroutinefunction(method)  # reads a request stream (Push): stays on the loop

    def refused(self, who: str, exc: CpError) -> None:
        if audit is not None or who == "-":
            detail = exc.message if who == "-" else f"refused: {exc.message}"
            self.cp.audit(who, action, detail[:300], ok=False)

    def checked(self, request, metadata, context):
        """Authenticate, run, audit: the store calls, made off the event loop (a worker thread)."""
        who = "-"
        try:
            who = self.cp.operator(metadata)
            result = method(self, request, context, who)
        except CpError as exc:
            refused(self, who, exc)
            return None, exc
        if audit is not None:
            self.cp.audit(who, action, audit(request, result))
        return result, None

    async def checked_stream(self, request, metadata, context):
        who = "-"
        try:
            who = await asyncio.to_thread(self.cp.operator, metadata)
            result = await method(self, request, context, who)
        except CpError as exc:
            await asyncio.to_thread(refused, self, who, exc)
            return None, exc
        if audit is not None:
            await asyncio.to_thread(self.cp.audit, who, action, audit(request, result))
        return result, None

    @functools.wraps(method)
    async def wrapper(self, request, context):
        metadata = context.invocation_metadata()
        if streaming:
            result, error = await checked_stream(self, request, metadata, context)
        else:
            result, error = await asyncio.to_thread(checked, self, request, metadata, context)
        if error is not None:
            await abort(context, error)
        return result

    return wrapper


class Base:
    def __init__(self, cp: ControlPlane, ops: OperatorService) -> None:
        self.cp = cp
        self.ops = ops


def _quality_row(r: QualityRow) -> operator_pb2.QualityRow:
    low, high = wilson(r.disagreements, r.labelled)
    return operator_pb2.QualityRow(model=r.model, scope=r.scope, labelled=r.labelled, disagreements=r.disagreements,
                                   disagreement_rate=r.rate, low=low, high=high)


def _comparison(c: Comparison) -> operator_pb2.QualityComparison:
    return operator_pb2.QualityComparison(
        name=c.name, candidate=c.candidate, baseline=c.baseline, candidate_rate=c.candidate_rate,
        baseline_rate=c.baseline_rate, difference=c.difference, low=c.low, high=c.high, p_value=c.p_value,
        verdict=c.verdict, candidate_labelled=c.candidate_labelled, baseline_labelled=c.baseline_labelled)


def _job(reply) -> str:
    return f"{reply.job} {reply.model.name} {reply.model.version} x{reply.rounds} noise {reply.noise_multiplier:g}"


def _node_info(n: NodeState) -> operator_pb2.NodeInfo:
    if n.view is None:  # enrolled, never connected yet
        return operator_pb2.NodeInfo(node_id=n.node_id, state="never connected", credential=n.credential,
                                     quarantined=n.quarantined)
    info = convert.node_info(n.view, n.credential, n.quarantined)
    if n.credential == "revoked":  # its streams are being closed: it is not connected as far as anyone should act
        info.state = "revoked"
    return info


def _model(reply) -> str:
    return f"{reply.model.name} {reply.model.version} ({reply.model.manifest_sha256[:12]})"


def _rollout(reply) -> str:
    target = ",".join(reply.nodes) if reply.nodes else f"{reply.percent}%"
    version = "bundled" if reply.current_bundled else reply.current.version
    return f"{reply.name} -> {version} for {target} ({','.join(reply.chosen) or 'no node'})"


def _request(reply) -> str:
    return f"{reply.request_id} seq {reply.seq} subject {reply.subject} {' '.join(reply.purposes)}".strip()


class ModelsServicer(Base, operator_pb2_grpc.ModelsServicer):
    @operator_call(audit=lambda request, reply: _model(reply))
    async def Push(self, request_iterator, context, who):  # noqa: N802
        limit = self.cp.settings.max_bundle_bytes
        uploads = self.cp.settings.data_path / "uploads"
        uploads.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=uploads, suffix=".tar") as tmp:
            size = 0
            async for chunk in request_iterator:
                size += len(chunk.data)
                if size > limit:
                    raise InvalidArgument(f"bundle is over {limit} bytes (CP_MAX_BUNDLE_BYTES)")
                tmp.write(chunk.data)
            tmp.flush()
            if size == 0:
                raise InvalidArgument("empty upload: stream the bundle tar in PushChunk messages")
            row, new = await asyncio.to_thread(self.cp.registry.accept, Path(tmp.name), self.cp.now())
        log.info("%s pushed %s %s (%s, %d bytes)", who, row.name, row.version, "new" if new else "already present",
                 row.size)
        return convert.model_info(row, already=not new)

    @operator_call
    def List(self, request, context, who):  # noqa: N802
        return operator_pb2.ListModelsResponse(models=[convert.model_info(m) for m in self.ops.models()])

    @operator_call(audit=lambda request, reply: _rollout(reply))
    def Rollout(self, request, context, who):  # noqa: N802
        percent = request.percent if request.HasField("percent") else None
        view, warnings = self.ops.rollout(request.name, request.version, percent, list(request.nodes),
                                          request.allow_unknown)
        log.info("%s rolled out %s %s to %s", who, request.name, request.version, ",".join(view.chosen) or "no node")
        status = convert.rollout_status(view)
        status.warnings.extend(warnings)
        return status

    @operator_call(audit=lambda request, reply: _rollout(reply))
    def Rollback(self, request, context, who):  # noqa: N802
        view = self.ops.rollback(request.name)
        log.info("%s rolled back %s", who, request.name)
        return convert.rollout_status(view)

    @operator_call
    def Status(self, request, context, who):  # noqa: N802
        return convert.rollout_status(self.ops.rollout_status(request.name))

    @operator_call
    def Drift(self, request, context, who):  # noqa: N802
        rows, threshold = self.ops.drift()
        return operator_pb2.DriftReport(rows=[operator_pb2.DriftRow(**r) for r in rows], threshold=threshold)

    @operator_call
    def Quality(self, request, context, who):  # noqa: N802
        rows, comparisons = self.ops.quality(request.name)
        return operator_pb2.QualityReport(rows=[_quality_row(r) for r in rows],
                                          comparisons=[_comparison(c) for c in comparisons])

    @operator_call(audit=lambda request, reply: _job(reply))
    def Adapt(self, request, context, who):  # noqa: N802
        r = request
        job = self.ops.adapt(r.name, r.version, rounds=r.rounds, steps=r.steps, regularization=r.regularization,
                             clip=r.clip, noise_multiplier=r.noise_multiplier, epsilon=r.epsilon,
                             min_labels=r.min_labels, min_edges=r.min_edges, round_timeout_s=r.round_timeout_s)
        log.info("%s started adaptation %s of %s %s (%d rounds)", who, job.job_id, r.name, r.version, r.rounds)
        return convert.adaptation_job(job)

    @operator_call
    def Adaptations(self, request, context, who):  # noqa: N802
        jobs, ledger = self.ops.adaptations(request.name, request.job)
        return operator_pb2.ListAdaptationsResponse(
            jobs=[convert.adaptation_job(j, self.ops.awaiting_signature(j)) for j in jobs],
            ledger=[operator_pb2.PrivacyLedgerRow(lineage=r.lineage, noisy_rounds=r.noisy_rounds,
                                                  noiseless_rounds=r.noiseless_rounds, epsilon=r.epsilon,
                                                  delta=r.delta) for r in ledger])

    async def Pull(self, request, context):  # noqa: N802 (server streaming: authenticated here)
        who = "-"
        try:
            who = await asyncio.to_thread(self.cp.operator, context.invocation_metadata())
            row = await asyncio.to_thread(self.ops.bundle_of, request.name, request.version)
        except CpError as exc:
            await asyncio.to_thread(self.cp.audit, who, "Models.Pull", f"refused: {exc.message}"[:300], ok=False)
            await abort(context, exc)
        await asyncio.to_thread(self.cp.audit, who, "Models.Pull", f"{row.name} {row.version}")
        offset, step = 0, 1 << 20
        while chunk := await asyncio.to_thread(self.cp.store.bundle_chunk, row.manifest_sha, offset, step):
            offset += len(chunk)
            yield operator_pb2.PushChunk(data=chunk)


class PrivacyServicer(Base, operator_pb2_grpc.PrivacyServicer):
    @operator_call(audit=lambda request, reply: _request(reply))
    def Revoke(self, request, context, who):  # noqa: N802
        status = self.ops.revoke_consent(request.user_id, list(request.purposes), request.idempotency_key,
                                         request.tenant)
        log.info("%s filed %s: revoke %s (seq %d)", who, status.entry.request_id, status.entry.purposes,
                 status.entry.seq)
        return convert.request_status(status)

    @operator_call(audit=lambda request, reply: _request(reply))
    def Delete(self, request, context, who):  # noqa: N802
        status = self.ops.delete_user(request.user_id, request.idempotency_key, request.tenant)
        log.info("%s filed %s: delete (seq %d)", who, status.entry.request_id, status.entry.seq)
        return convert.request_status(status)

    @operator_call
    def Status(self, request, context, who):  # noqa: N802
        return convert.request_status(self.cp.ledger.status(request.request_id))

    @operator_call
    def List(self, request, context, who):  # noqa: N802
        return operator_pb2.ListPrivacyResponse(
            requests=[convert.request_status(s) for s in self.cp.ledger.recent(request.limit)])


class NodesServicer(Base, operator_pb2_grpc.NodesServicer):
    @operator_call
    def List(self, request, context, who):  # noqa: N802
        return operator_pb2.ListNodesResponse(nodes=[_node_info(n) for n in self.ops.nodes()])

    @operator_call(audit=lambda request, reply: reply.node_id)
    def Decommission(self, request, context, who):  # noqa: N802
        node = self.ops.decommission(request.node_id)
        log.info("%s decommissioned node %s", who, request.node_id)
        return _node_info(node)

    @operator_call(audit=lambda request, reply: (
        f"{reply.node_id} (token expires {dt.datetime.fromtimestamp(reply.expires_at, dt.UTC):%Y-%m-%d %H:%M:%S} UTC)"))
    def Enroll(self, request, context, who):  # noqa: N802
        token, expires = self.ops.enroll(request.node_id, request.ttl_s)
        return operator_pb2.NodeEnrollment(node_id=request.node_id, enrollment_token=token, expires_at=expires)

    @operator_call(audit=lambda request, reply: reply.node_id)
    def Revoke(self, request, context, who):  # noqa: N802
        node = self.ops.revoke_node(request.node_id)
        log.warning("%s revoked node %s", who, request.node_id)
        return _node_info(node)

    @operator_call(audit=lambda request, reply: f"{reply.node_id} quarantined={reply.quarantined}")
    def Quarantine(self, request, context, who):  # noqa: N802
        return _node_info(self.ops.quarantine(request.node_id, request.release))


class AppsServicer(Base, operator_pb2_grpc.AppsServicer):
    @operator_call(audit=lambda request, reply: f"app {reply.name} ({reply.app_id}) origins {','.join(reply.origins)}")
    def Add(self, request, context, who):  # noqa: N802
        issued = self.ops.add_app(request.name, list(request.origins), request.public_key, tenant=request.tenant,
                                  alg=request.alg, policy_version=request.policy_version,
                                  policy_url=request.policy_url)
        return convert.app_info(issued.app, client_key=issued.client_key, signing_secret=issued.signing_secret,
                                private_key=issued.private_key)

    @operator_call
    def List(self, request, context, who):  # noqa: N802
        return operator_pb2.ListAppsResponse(apps=[convert.app_info(a) for a in self.cp.apps.all()])

    @operator_call(audit=lambda request, reply: f"app {reply.name}: new client key and signing key {reply.kid}")
    def Rotate(self, request, context, who):  # noqa: N802
        issued = self.ops.rotate_app(request.name, request.grace_s)
        return convert.app_info(issued.app, client_key=issued.client_key, signing_secret=issued.signing_secret,
                                private_key=issued.private_key)

    @operator_call(audit=lambda request, reply: f"app {reply.name}" + (
        f" server key {request.server_key}" if request.server_key else ""))
    def Revoke(self, request, context, who):  # noqa: N802
        app = self.ops.revoke_app(request.name, request.server_key)
        return convert.app_info(app)

    @operator_call(audit=lambda request, reply: f"app {reply.name} server key {request.key_name} "
                                                f"scopes {','.join(request.scopes)}")
    def AddServerKey(self, request, context, who):  # noqa: N802
        issued = self.ops.add_server_key(request.name, request.key_name, list(request.scopes))
        return convert.app_info(issued.app, server_key=issued.server_key)

    @operator_call(audit=lambda request, reply: f"app {reply.name}: origins {','.join(reply.origins) or '-'}, "
                                                f"policy {reply.policy_version or '-'}")
    def Configure(self, request, context, who):  # noqa: N802
        app = self.ops.configure_app(
            request.name, origins=list(request.origins) if request.set_origins else None,
            policy_version=request.policy_version if request.HasField("policy_version") else None,
            policy_url=request.policy_url if request.HasField("policy_url") else None)
        return convert.app_info(app)

    @operator_call(audit=lambda request, reply: f"app {request.name}: development token")
    def Token(self, request, context, who):  # noqa: N802
        token, expires = self.cp.apps.token(request.name, request.user_id, request.ttl_s or 3600.0,
                                            list(request.consent), request.policy_version, self.cp.now())
        return operator_pb2.AppToken(token=token, expires_at=expires)


class CohortsServicer(Base, operator_pb2_grpc.CohortsServicer):
    @operator_call
    def Merged(self, request, context, who):  # noqa: N802
        now = self.cp.now()
        merged = self.cp.cohorts.merged(now, self.ops.tenant_filter(request.tenant))
        return sync_pb2.CohortPriors(generated_at=now, cohorts=[convert.aggregate_to_proto(a) for a in merged])

    @operator_call
    def Segments(self, request, context, who):  # noqa: N802
        return convert.segments.set_to_proto(self.cp.segments.current())

    @operator_call(audit=lambda request, reply: f"tenant {reply.tenant}: {reply.rows} daily rows, {reply.days} days, "
                   f"{reply.cohorts} cohorts from {request.source or '-'}")
    def Import(self, request, context, who):  # noqa: N802
        rows = [DailyRow(day=r.day, cohort=r.cohort, category=r.category, users=r.users, texts=r.texts,
                         negative=r.negative, sentiment_mean=r.sentiment_mean, neutral_share=r.neutral_share)
                for r in request.rows]
        return operator_pb2.ImportCohortsResponse(**self.ops.import_history(request.tenant, rows,
                                                                           source=request.source))


def _rule(reply) -> str:
    return f"{reply.name}: {reply.cohort} {reply.signal} {reply.op} {reply.threshold:g} -> {reply.action}"


class RulesServicer(Base, operator_pb2_grpc.RulesServicer):
    @operator_call(audit=lambda request, reply: _rule(reply))
    def Add(self, request, context, who):  # noqa: N802
        rule = self.ops.add_rule(convert.rule_from_proto(request))
        return convert.rule_to_proto(rule)

    @operator_call
    def List(self, request, context, who):  # noqa: N802
        version, rules = self.ops.rules()
        return sync_pb2.RuleSet(version=version, rules=[convert.rule_to_proto(r) for r in rules])

    @operator_call(audit=lambda request, reply: _rule(reply))
    def Remove(self, request, context, who):  # noqa: N802
        rule = self.ops.remove_rule(request.name)
        return convert.rule_to_proto(rule)

    @operator_call
    def History(self, request, context, who):  # noqa: N802
        rows = self.ops.rule_history(request.limit)
        return operator_pb2.RuleHistory(entries=[
            operator_pb2.RuleHistoryEntry(at=at, node_id=node, rule=rule, cohort=cohort, event=event, value=value)
            for at, node, rule, cohort, event, value in rows])


class ExperimentsServicer(Base, operator_pb2_grpc.ExperimentsServicer):
    @operator_call(audit=lambda request, reply: f"{reply.name}: " + ", ".join(
        f"{a.name}={a.weight}{' (holdout)' if a.holdout else ''}" for a in reply.arms))
    def Add(self, request, context, who):  # noqa: N802
        experiment = self.ops.add_experiment(convert.experiment_from_proto(request))
        return convert.experiment_to_proto(experiment)

    @operator_call
    def List(self, request, context, who):  # noqa: N802
        version, experiments = self.ops.experiments()
        return sync_pb2.ExperimentSet(version=version,
                                      experiments=[convert.experiment_to_proto(e) for e in experiments])

    @operator_call
    def Report(self, request, context, who):  # noqa: N802
        experiment, results = self.cp.experiments.report(request.name)
        return operator_pb2.ExperimentReport(
            name=experiment.name, holdout=next(a.name for a in experiment.arms if a.holdout),
            results=[operator_pb2.ArmResult(**msgspec.structs.asdict(r)) for r in results])


def _topics(reply) -> str:
    return f"tenant {reply.tenant}: {', '.join(t.name for t in reply.topics) or 'no topics'} (v{reply.version})"


class TopicsServicer(Base, operator_pb2_grpc.TopicsServicer):
    @operator_call(audit=lambda request, reply: f"{request.topic.name} -> " + _topics(reply))
    def Add(self, request, context, who):  # noqa: N802
        return topic_wire.set_to_proto(self.ops.add_topic(request.tenant, topic_wire.topic_from_proto(request.topic)))

    @operator_call
    def List(self, request, context, who):  # noqa: N802
        return topic_wire.sets_to_proto(*self.ops.topic_sets(request.tenant))

    @operator_call(audit=lambda request, reply: f"removed {request.name}: " + _topics(reply))
    def Remove(self, request, context, who):  # noqa: N802
        return topic_wire.set_to_proto(self.ops.remove_topic(request.tenant, request.name))

    @operator_call(audit=lambda request, reply: f"seeded {', '.join(reply.added) or 'nothing'}: " + _topics(reply.set))
    def Seed(self, request, context, who):  # noqa: N802
        topic_set, added, kept = self.ops.seed_topics(request.tenant)
        return operator_pb2.SeedTopicsResponse(set=topic_wire.set_to_proto(topic_set), added=added, kept=kept)

    @operator_call
    def Trends(self, request, context, who):  # noqa: N802
        trends = self.ops.trends(request.tenant, request.topic)
        return operator_pb2.TopicTrends(
            rule=self.cp.trends.rule.words(), generated_at=self.cp.now(), window_seconds=_window_seconds(trends),
            trends=[operator_pb2.TopicTrend(
                windows=[operator_pb2.TopicWindow(**msgspec.structs.asdict(w)) for w in t.windows],
                **{f: getattr(t, f) for f in t.__struct_fields__ if f != "windows"}) for t in trends])


def _window_seconds(trends) -> int:
    starts = sorted({w.window_start for t in trends for w in t.windows})
    return min((b - a for a, b in zip(starts, starts[1:], strict=False)), default=0)


def _hook(view) -> operator_pb2.WebhookInfo:
    h = view.hook
    return operator_pb2.WebhookInfo(tenant=h.tenant, url=h.url, secret=view.secret, created_at=h.created_at,
                                    updated_at=h.updated_at, pending=view.pending, failed=view.failed)


def _delivery(o) -> operator_pb2.WebhookDelivery:
    return operator_pb2.WebhookDelivery(event_id=o.event_id, tenant=o.tenant, type=o.type, state=o.state,
                                        attempts=o.attempts, created_at=o.created_at, next_at=o.next_at,
                                        delivered_at=o.delivered_at, last_error=o.last_error)


class WebhooksServicer(Base, operator_pb2_grpc.WebhooksServicer):
    @operator_call(audit=lambda request, reply: f"tenant {reply.tenant}: {reply.url}"
                   + (" (new signing secret)" if reply.secret else ""))
    def Set(self, request, context, who):  # noqa: N802
        return _hook(self.ops.set_webhook(request.tenant, request.url, request.rotate_secret))

    @operator_call
    def List(self, request, context, who):  # noqa: N802
        return operator_pb2.ListWebhooksResponse(webhooks=[_hook(v) for v in self.cp.webhooks.all()])

    @operator_call(audit=lambda request, reply: f"tenant {reply.tenant}: {reply.url} removed")
    def Remove(self, request, context, who):  # noqa: N802
        return _hook(self.ops.remove_webhook(request.tenant))

    @operator_call
    def Log(self, request, context, who):  # noqa: N802
        attempts, outbox = self.ops.webhook_log(request.tenant, request.limit)
        return operator_pb2.WebhookLog(
            attempts=[operator_pb2.WebhookAttempt(event_id=e, tenant=t, type=k, attempt=n, at=at, url=url, status=s,
                                                  error=err, duration_ms=ms)
                      for e, t, k, n, at, url, s, err, ms in attempts],
            deliveries=[_delivery(o) for o in outbox])

    @operator_call(audit=lambda request, reply: f"tenant {reply.tenant}: test notification {reply.event_id}")
    def Test(self, request, context, who):  # noqa: N802
        return _delivery(self.ops.test_webhook(request.tenant))


class AdminServicer(Base, operator_pb2_grpc.AdminServicer):
    @operator_call(audit=lambda request, reply: f"token {reply.name}")
    def AddToken(self, request, context, who):  # noqa: N802
        token = self.cp.add_token(request.name)
        return operator_pb2.TokenInfo(name=request.name, token=token, created_at=self.cp.now(), source="store")

    @operator_call
    def ListTokens(self, request, context, who):  # noqa: N802
        names, rows = self.ops.tokens()
        configured = [operator_pb2.TokenInfo(name=name, source="config") for name in names]
        stored = [operator_pb2.TokenInfo(name=n, created_at=c, revoked_at=r, source="store") for n, c, r in rows]
        return operator_pb2.ListTokensResponse(tokens=configured + stored)

    @operator_call(audit=lambda request, reply: f"token {reply.name}")
    def RevokeToken(self, request, context, who):  # noqa: N802
        self.cp.revoke_token(request.name)
        return operator_pb2.TokenInfo(name=request.name, revoked_at=self.cp.now(), source="store")

    @operator_call
    def Audit(self, request, context, who):  # noqa: N802
        return operator_pb2.AuditResponse(entries=[
            operator_pb2.AuditEntry(at=at, who=w, action=a, detail=d, ok=ok)
            for at, w, a, d, ok in self.ops.audit_entries(request.limit)])


def add_all(server: grpc.aio.Server, cp: ControlPlane) -> None:
    ops = OperatorService(cp)
    operator_pb2_grpc.add_AdminServicer_to_server(AdminServicer(cp, ops), server)
    operator_pb2_grpc.add_RulesServicer_to_server(RulesServicer(cp, ops), server)
    operator_pb2_grpc.add_ExperimentsServicer_to_server(ExperimentsServicer(cp, ops), server)
    operator_pb2_grpc.add_ModelsServicer_to_server(ModelsServicer(cp, ops), server)
    operator_pb2_grpc.add_PrivacyServicer_to_server(PrivacyServicer(cp, ops), server)
    operator_pb2_grpc.add_NodesServicer_to_server(NodesServicer(cp, ops), server)
    operator_pb2_grpc.add_CohortsServicer_to_server(CohortsServicer(cp, ops), server)
    operator_pb2_grpc.add_AppsServicer_to_server(AppsServicer(cp, ops), server)
    operator_pb2_grpc.add_TopicsServicer_to_server(TopicsServicer(cp, ops), server)
    operator_pb2_grpc.add_WebhooksServicer_to_server(WebhooksServicer(cp, ops), server)
