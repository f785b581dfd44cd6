"""gRPC transport of the operator services (Models, Privacy, Nodes, Cohorts). Every call
needs an operator token; domain errors become their gRPC status with the message."""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import logging
import tempfile
from pathlib import Path

import grpc
import msgspec

from control_plane import convert
from control_plane.errors import CpError, InvalidArgument
from control_plane.state import ControlPlane
from control_plane.sync_servicer import NODE_ID
from sentiedge_core.monitoring import DRIFT_PSI_THRESHOLD, drift_report
from protos.sentiedge.v1 import operator_pb2, operator_pb2_grpc, sync_pb2

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
            await context.abort(error.code, error.message)
        return result

    return wrapper


class Base:
    def __init__(self, cp: ControlPlane) -> None:
        self.cp = cp


def _quality_row(model: str, scope: str, labelled: int, disagreements: int) -> operator_pb2.QualityRow:
    return operator_pb2.QualityRow(model=model, scope=scope, labelled=labelled, disagreements=disagreements,
                                   disagreement_rate=disagreements / labelled if labelled else 0.0)


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
        return operator_pb2.ListModelsResponse(models=[convert.model_info(m) for m in self.cp.store.models()])

    @operator_call(audit=lambda request, reply: _rollout(reply))
    def Rollout(self, request, context, who):  # noqa: N802
        percent = request.percent if request.HasField("percent") else None
        rollout, warnings = self.cp.registry.rollout(request.name, request.version, percent, list(request.nodes),
                                                     self.cp.now(), allow_unknown=request.allow_unknown)
        status = self._status(request.name)
        log.info("%s rolled out %s %s to %s", who, request.name, request.version, ",".join(status.chosen) or "no node")
        self.cp.wake_all()
        status.warnings.extend(warnings)
        return status

    @operator_call(audit=lambda request, reply: _rollout(reply))
    def Rollback(self, request, context, who):  # noqa: N802
        self.cp.registry.rollback(request.name, self.cp.now())
        log.info("%s rolled back %s", who, request.name)
        self.cp.wake_all()
        return self._status(request.name)

    @operator_call
    def Status(self, request, context, who):  # noqa: N802
        return self._status(request.name)

    @operator_call
    def Drift(self, request, context, who):  # noqa: N802
        """PSI of each node's recent predictions against its model's reference, and of all
        nodes on the same model together."""
        outputs = [{**json.loads(body), "scope": node_id} for node_id, body, _ in self.cp.store.outputs()]
        rows = drift_report(outputs, DRIFT_PSI_THRESHOLD)
        return operator_pb2.DriftReport(rows=[operator_pb2.DriftRow(**r) for r in rows], threshold=DRIFT_PSI_THRESHOLD)

    @operator_call
    def Quality(self, request, context, who):  # noqa: N802
        """Disagreement of sampled, labelled predictions per model version: each node, and all."""
        rows, merged = [], {}
        for node_id, model, labelled, disagreements in self.cp.store.quality():
            rows.append(_quality_row(model, node_id, labelled, disagreements))
            total = merged.setdefault(model, [0, 0])
            total[0] += labelled
            total[1] += disagreements
        rows += [_quality_row(model, "all", n, d) for model, (n, d) in sorted(merged.items())]
        return operator_pb2.QualityReport(rows=rows)

    def _status(self, name: str) -> operator_pb2.RolloutStatus:
        return convert.rollout_status(self.cp.registry.status(name, self.cp.nodes.views(self.cp.now())))


class PrivacyServicer(Base, operator_pb2_grpc.PrivacyServicer):
    @operator_call(audit=lambda request, reply: _request(reply))
    def Revoke(self, request, context, who):  # noqa: N802
        entry = self.cp.ledger.revoke(request.user_id, list(request.purposes), self.cp.now(), request.idempotency_key)
        log.info("%s filed %s: revoke %s (seq %d)", who, entry.request_id, entry.purposes, entry.seq)
        self.cp.wake_all()
        return convert.request_status(self.cp.ledger.status(entry.request_id))

    @operator_call(audit=lambda request, reply: _request(reply))
    def Delete(self, request, context, who):  # noqa: N802
        entry = self.cp.ledger.delete(request.user_id, self.cp.now(), request.idempotency_key)
        log.info("%s filed %s: delete (seq %d)", who, entry.request_id, entry.seq)
        self.cp.wake_all()
        return convert.request_status(self.cp.ledger.status(entry.request_id))

    @operator_call
    def Status(self, request, context, who):  # noqa: N802
        return convert.request_status(self.cp.ledger.status(request.request_id))

    @operator_call
    def List(self, request, context, who):  # noqa: N802
        return operator_pb2.ListPrivacyResponse(
            requests=[convert.request_status(s) for s in self.cp.ledger.recent(request.limit)])


class NodesServicer(Base, operator_pb2_grpc.NodesServicer):
    def _info(self, node_id: str) -> operator_pb2.NodeInfo:
        view = next((v for v in self.cp.nodes.views(self.cp.now()) if v.node.node_id == node_id), None)
        quarantined = node_id in self.cp.store.quarantined()
        credential = self.cp.node_auth.credential_of(node_id)
        if view is None:  # enrolled, never connected yet
            return operator_pb2.NodeInfo(node_id=node_id, state="never connected", credential=credential,
                                         quarantined=quarantined)
        return convert.node_info(view, credential, quarantined)

    @operator_call
    def List(self, request, context, who):  # noqa: N802
        quarantined = self.cp.store.quarantined()
        return operator_pb2.ListNodesResponse(nodes=[
            convert.node_info(v, self.cp.node_auth.credential_of(v.node.node_id), v.node.node_id in quarantined)
            for v in self.cp.nodes.views(self.cp.now())])

    @operator_call(audit=lambda request, reply: reply.node_id)
    def Decommission(self, request, context, who):  # noqa: N802
        self.cp.nodes.decommission(request.node_id)
        log.info("%s decommissioned node %s", who, request.node_id)
        return self._info(request.node_id)

    @operator_call(audit=lambda request, reply: f"{reply.node_id} (token expires {reply.expires_at:.0f})")
    def Enroll(self, request, context, who):  # noqa: N802
        if not NODE_ID.match(request.node_id):
            raise InvalidArgument("node id must be 1-63 letters, digits, '.', '_' or '-'")
        if self.cp.settings.tls:
            raise InvalidArgument("this control plane uses mTLS: issue the node a certificate "
                                  "(control-plane certs issue NODE) instead of an enrollment token")
        token, expires = self.cp.node_auth.enroll(request.node_id, request.ttl_s or 86400.0, self.cp.now())
        return operator_pb2.NodeEnrollment(node_id=request.node_id, enrollment_token=token, expires_at=expires)

    @operator_call(audit=lambda request, reply: reply.node_id)
    def Revoke(self, request, context, who):  # noqa: N802
        if not NODE_ID.match(request.node_id):
            raise InvalidArgument("node id must be 1-63 letters, digits, '.', '_' or '-'")
        self.cp.store.revoke_credential(request.node_id, self.cp.now())
        log.warning("%s revoked node %s", who, request.node_id)
        self.cp.wake_all()  # its open streams close
        return self._info(request.node_id)

    @operator_call(audit=lambda request, reply: f"{reply.node_id} quarantined={reply.quarantined}")
    def Quarantine(self, request, context, who):  # noqa: N802
        if not NODE_ID.match(request.node_id):
            raise InvalidArgument("node id must be 1-63 letters, digits, '.', '_' or '-'")
        self.cp.store.set_quarantine(request.node_id, not request.release)
        self.cp.cohorts.changed()
        self.cp.wake_all()  # merged priors change for every edge
        return self._info(request.node_id)


class AppsServicer(Base, operator_pb2_grpc.AppsServicer):
    @operator_call(audit=lambda request, reply: f"app {reply.name} ({reply.app_id}) origins {','.join(reply.origins)}")
    def Add(self, request, context, who):  # noqa: N802
        issued = self.cp.apps.add(request.name, list(request.origins), request.public_key, self.cp.now())
        self.cp.wake_all()
        return convert.app_info(issued.app, client_key=issued.client_key, signing_secret=issued.signing_secret)

    @operator_call
    def List(self, request, context, who):  # noqa: N802
        return operator_pb2.ListAppsResponse(apps=[convert.app_info(a) for a in self.cp.apps.all()])

    @operator_call(audit=lambda request, reply: f"app {reply.name}: new client key and signing secret {reply.kid}")
    def Rotate(self, request, context, who):  # noqa: N802
        issued = self.cp.apps.rotate(request.name, request.grace_s, self.cp.now())
        self.cp.wake_all()
        return convert.app_info(issued.app, client_key=issued.client_key, signing_secret=issued.signing_secret)

    @operator_call(audit=lambda request, reply: f"app {reply.name}" + (
        f" server key {request.server_key}" if request.server_key else ""))
    def Revoke(self, request, context, who):  # noqa: N802
        app = self.cp.apps.revoke(request.name, request.server_key, self.cp.now())
        self.cp.wake_all()
        return convert.app_info(app)

    @operator_call(audit=lambda request, reply: f"app {reply.name} server key {request.key_name} "
                                                f"scopes {','.join(request.scopes)}")
    def AddServerKey(self, request, context, who):  # noqa: N802
        issued = self.cp.apps.add_server_key(request.name, request.key_name, list(request.scopes), self.cp.now())
        self.cp.wake_all()
        return convert.app_info(issued.app, server_key=issued.server_key)

    @operator_call(audit=lambda request, reply: f"app {request.name}: development token")
    def Token(self, request, context, who):  # noqa: N802
        token, expires = self.cp.apps.token(request.name, request.user_id, request.ttl_s or 3600.0,
                                            list(request.consent), request.policy_version, self.cp.now())
        return operator_pb2.AppToken(token=token, expires_at=expires)


class CohortsServicer(Base, operator_pb2_grpc.CohortsServicer):
    @operator_call
    def Merged(self, request, context, who):  # noqa: N802
        now = self.cp.now()
        return sync_pb2.CohortPriors(generated_at=now,
                                     cohorts=[convert.aggregate_to_proto(a) for a in self.cp.cohorts.merged(now)])


def _rule(reply) -> str:
    return f"{reply.name}: {reply.cohort} {reply.signal} {reply.op} {reply.threshold:g} -> {reply.action}"


class RulesServicer(Base, operator_pb2_grpc.RulesServicer):
    @operator_call(audit=lambda request, reply: _rule(reply))
    def Add(self, request, context, who):  # noqa: N802
        rule = self.cp.rules.add(convert.rule_from_proto(request), self.cp.now())
        self.cp.wake_all()
        return convert.rule_to_proto(rule)

    @operator_call
    def List(self, request, context, who):  # noqa: N802
        return sync_pb2.RuleSet(version=self.cp.store.rules_version(),
                                rules=[convert.rule_to_proto(r) for r in self.cp.rules.all()])

    @operator_call(audit=lambda request, reply: _rule(reply))
    def Remove(self, request, context, who):  # noqa: N802
        rule = self.cp.rules.remove(request.name, self.cp.now())
        self.cp.wake_all()
        return convert.rule_to_proto(rule)

    @operator_call
    def History(self, request, context, who):  # noqa: N802
        rows = self.cp.store.rule_history(max(1, min(request.limit or 50, 10_000)))
        return operator_pb2.RuleHistory(entries=[
            operator_pb2.RuleHistoryEntry(at=at, node_id=node, rule=rule, cohort=cohort, event=event, value=value)
            for at, node, rule, cohort, event, value in rows])


class ExperimentsServicer(Base, operator_pb2_grpc.ExperimentsServicer):
    @operator_call(audit=lambda request, reply: f"{reply.name}: " + ", ".join(
        f"{a.name}={a.weight}{' (holdout)' if a.holdout else ''}" for a in reply.arms))
    def Add(self, request, context, who):  # noqa: N802
        experiment = self.cp.experiments.add(convert.experiment_from_proto(request), self.cp.now())
        self.cp.wake_all()
        return convert.experiment_to_proto(experiment)

    @operator_call
    def List(self, request, context, who):  # noqa: N802
        return sync_pb2.ExperimentSet(version=self.cp.store.experiments_version(),
                                      experiments=[convert.experiment_to_proto(e) for e in self.cp.experiments.all()])

    @operator_call
    def Report(self, request, context, who):  # noqa: N802
        experiment, results = self.cp.experiments.report(request.name)
        return operator_pb2.ExperimentReport(
            name=experiment.name, holdout=next(a.name for a in experiment.arms if a.holdout),
            results=[operator_pb2.ArmResult(**msgspec.structs.asdict(r)) for r in results])


class AdminServicer(Base, operator_pb2_grpc.AdminServicer):
    @operator_call(audit=lambda request, reply: f"token {reply.name}")
    def AddToken(self, request, context, who):  # noqa: N802
        token = self.cp.add_token(request.name)
        return operator_pb2.TokenInfo(name=request.name, token=token, created_at=self.cp.now(), source="store")

    @operator_call
    def ListTokens(self, request, context, who):  # noqa: N802
        configured = [operator_pb2.TokenInfo(name=name, source="config") for name in sorted(set(self.cp.tokens.values()))]
        stored = [operator_pb2.TokenInfo(name=n, created_at=c, revoked_at=r, source="store")
                  for n, c, r in self.cp.store.tokens()]
        return operator_pb2.ListTokensResponse(tokens=configured + stored)

    @operator_call(audit=lambda request, reply: f"token {reply.name}")
    def RevokeToken(self, request, context, who):  # noqa: N802
        self.cp.revoke_token(request.name)
        return operator_pb2.TokenInfo(name=request.name, revoked_at=self.cp.now(), source="store")

    @operator_call
    def Audit(self, request, context, who):  # noqa: N802
        limit = max(1, min(request.limit or 50, 10_000))
        return operator_pb2.AuditResponse(entries=[
            operator_pb2.AuditEntry(at=at, who=w, action=a, detail=d, ok=ok)
            for at, w, a, d, ok in self.cp.store.audit_entries(limit)])


def add_all(server: grpc.aio.Server, cp: ControlPlane) -> None:
    operator_pb2_grpc.add_AdminServicer_to_server(AdminServicer(cp), server)
    operator_pb2_grpc.add_RulesServicer_to_server(RulesServicer(cp), server)
    operator_pb2_grpc.add_ExperimentsServicer_to_server(ExperimentsServicer(cp), server)
    operator_pb2_grpc.add_ModelsServicer_to_server(ModelsServicer(cp), server)
    operator_pb2_grpc.add_PrivacyServicer_to_server(PrivacyServicer(cp), server)
    operator_pb2_grpc.add_NodesServicer_to_server(NodesServicer(cp), server)
    operator_pb2_grpc.add_CohortsServicer_to_server(CohortsServicer(cp), server)
    operator_pb2_grpc.add_AppsServicer_to_server(AppsServicer(cp), server)
