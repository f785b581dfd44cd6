"""Protobuf ↔ control-plane domain. Nothing else in the control plane touches protobuf types
except the servicers that call these functions."""

from __future__ import annotations

from control_plane.ledger import RequestStatus
from control_plane.nodes import NodeView
from control_plane.store import ModelRow, PrivacyEntry
from control_plane.sync_service import Heartbeat
from protos.sentiedge.v1 import common_pb2, operator_pb2, sync_pb2
from sentiedge_core import adaptation, cohorts, cooccurrence, experiments, rules, segments, topic_wire
from sentiedge_core.access import App


def model_ref(row: ModelRow | None) -> common_pb2.ModelRef:
    if row is None:
        return common_pb2.ModelRef()
    return common_pb2.ModelRef(name=row.name, version=row.version, manifest_sha256=row.manifest_sha)


def ref_tuple(ref: common_pb2.ModelRef) -> tuple[str, str, str]:
    return ref.name, ref.version, ref.manifest_sha256


def model_info(row: ModelRow, already: bool = False) -> operator_pb2.ModelInfo:
    return operator_pb2.ModelInfo(model=model_ref(row), bundle_sha256=row.bundle_sha, bundle_size=row.size,
                                  pushed_at=row.pushed_at, already_present=already)


def privacy_update(e: PrivacyEntry) -> sync_pb2.ControlMessage:
    return sync_pb2.ControlMessage(privacy=sync_pb2.PrivacyUpdate(
        seq=e.seq, request_id=e.request_id, kind=e.kind,  # type: ignore[arg-type]  # the enum's int value
        subject=e.subject, purposes=e.purposes, at=e.at, origin_node=e.origin_node, policy_version=e.policy_version))


aggregate_from_proto = cohorts.from_proto  # the core's one conversion, both ways
aggregate_to_proto = cohorts.to_proto


def request_status(s: RequestStatus) -> operator_pb2.PrivacyRequestStatus:
    e = s.entry
    return operator_pb2.PrivacyRequestStatus(
        request_id=e.request_id, seq=e.seq, kind=e.kind,  # type: ignore[arg-type]  # the enum's int value
        subject=e.subject, purposes=e.purposes, state=s.state,
        created_at=e.created_at, completed_at=s.completed_at,
        receipts=[operator_pb2.NodeReceipt(node_id=n, at=at) for n, at in s.receipts], missing=s.missing,
        origin_node=e.origin_node)


def node_info(v: NodeView, credential: str = "", quarantined: bool = False) -> operator_pb2.NodeInfo:
    n = v.node
    return operator_pb2.NodeInfo(credential=credential, quarantined=quarantined,
        node_id=n.node_id, region=n.region,
        model=common_pb2.ModelRef(name=n.model_name, version=n.model_version, manifest_sha256=n.model_sha),
        privacy_cursor=n.privacy_cursor, cursor_lag=v.cursor_lag, last_seen=n.last_seen,
        connected_since=n.connected_since, state=v.state, serving_personal=n.serving_personal)


def rollout_status(view) -> operator_pb2.RolloutStatus:
    from control_plane.registry import BUNDLED

    rollout = view.rollout
    return operator_pb2.RolloutStatus(
        name=view.name, current=model_ref(view.current), previous=model_ref(view.previous),
        percent=rollout.percent if rollout else 0, nodes=rollout.nodes if rollout else [], chosen=view.chosen,
        node_states=[operator_pb2.NodeModelState(node_id=n.node_id, assigned=model_ref(n.assigned),
                                                 serving=model_ref(n.serving), state=n.state, error=n.error)
                     for n in view.nodes],
        current_bundled=bool(rollout and rollout.current_sha == BUNDLED),
        previous_bundled=bool(rollout and rollout.previous_sha in (BUNDLED, "")))


rule_to_proto = rules.to_proto  # the core's one conversion, both ways
rule_from_proto = rules.from_proto
experiment_to_proto = experiments.to_proto
experiment_from_proto = experiments.from_proto


def outputs_record(health: sync_pb2.NodeHealth) -> dict:
    """A node's recent prediction counts and its model's reference, as the drift report reads them."""
    o = health.outputs
    return {"model": f"{health.model.name} {health.model.version}", "labels": list(o.labels),
            "label_counts": list(o.label_counts), "reference_labels": list(o.reference_labels),
            "confidence_counts": list(o.confidence_counts), "reference_confidence": list(o.reference_confidence)}


def bare_cohort(t: sync_pb2.TriggerEvent) -> str:
    """The cohort key of a trigger event without the tenant the edge put before it."""
    prefix = f"{t.tenant}:"
    return t.cohort[len(prefix):] if t.tenant and t.cohort.startswith(prefix) else t.cohort


def heartbeat_from_proto(beat: sync_pb2.Heartbeat) -> Heartbeat:
    health = beat.health
    return Heartbeat(
        model=ref_tuple(health.model), serving_personal=health.serving_personal,
        quality=[(q.model, q.labelled, q.disagreements) for q in health.quality],
        outputs=outputs_record(health) if health.HasField("outputs") else None,
        experiments=[(e.window_start, e.experiment, e.arm, e.cohort, e.exposures, e.clicks, e.conversions, e.value,
                      e.tenant) for e in beat.experiments],
        triggers=[(t.at, t.rule, t.cohort, t.active, t.value, t.tenant, bare_cohort(t)) for t in beat.triggers],
        cohorts=[aggregate_from_proto(a) for a in beat.cohorts],
        segments=[segments.summary_from_proto(s) for s in beat.segments],
        cooccurrence=[cooccurrence.window_from_proto(w) for w in beat.cooccurrence])


def pending_messages(p) -> list[sync_pb2.ControlMessage]:
    """What ``SyncService.pending`` computed, as the messages of the stream, in order."""
    out = [privacy_update(e) for e in p.privacy]
    if p.assignment is not None:
        a = p.assignment
        out.append(sync_pb2.ControlMessage(model=sync_pb2.ModelAssignment(
            model=model_ref(a), bundle_sha256=a.bundle_sha, bundle_size=a.size, bundled=a.bundled)))
    if p.priors is not None:
        out.append(sync_pb2.ControlMessage(priors=sync_pb2.CohortPriors(
            generated_at=p.priors.generated_at, cohorts=[aggregate_to_proto(a) for a in p.priors.cohorts],
            recent=[aggregate_to_proto(a) for a in p.priors.recent])))
    if p.rules is not None:
        out.append(sync_pb2.ControlMessage(rules=sync_pb2.RuleSet(
            version=p.rules[0], rules=[rule_to_proto(r) for r in p.rules[1]])))
    if p.experiments is not None:
        out.append(sync_pb2.ControlMessage(experiments=sync_pb2.ExperimentSet(
            version=p.experiments[0], experiments=[experiment_to_proto(e) for e in p.experiments[1]])))
    if p.apps is not None:
        out.append(sync_pb2.ControlMessage(apps=apps_to_proto(*p.apps)))
    if p.segments is not None:
        out.append(sync_pb2.ControlMessage(segments=segments.set_to_proto(p.segments)))
    if p.topics is not None:
        out.append(sync_pb2.ControlMessage(topics=topic_wire.sets_to_proto(*p.topics)))
    for table in p.neighbours or []:  # one message per tenant: each bounded by its table's size
        out.append(sync_pb2.ControlMessage(neighbours=cooccurrence.table_to_proto(table)))
    if p.adaptation is not None:
        out.append(sync_pb2.ControlMessage(adaptation=adaptation.round_to_proto(p.adaptation)))
    return out


def adaptation_job(job, awaiting_signature: bool = False) -> operator_pb2.AdaptationJob:
    return operator_pb2.AdaptationJob(
        job=job.job_id, model=common_pb2.ModelRef(name=job.name, version=job.version, manifest_sha256=job.base_sha),
        state=job.state, round=job.round, rounds=job.rounds, noise_multiplier=job.noise_multiplier, clip=job.clip,
        epsilon=job.epsilon, delta=job.delta, candidate=job.candidate, error=job.error,
        history=[operator_pb2.AdaptationRoundInfo(round=r.round, edges=r.edges, labels=r.labels,
                                                  update_norm=r.update_norm, declined=r.declined) for r in job.history],
        created_at=job.created_at, updated_at=job.updated_at, awaiting_signature=awaiting_signature)


def apps_to_proto(version: int, apps: list[App], legacy_tenant: str = "") -> sync_pb2.AppSet:
    return sync_pb2.AppSet(version=version, legacy_tenant=legacy_tenant, apps=[sync_pb2.App(
        app_id=a.app_id, name=a.name, origins=a.origins, revoked_at=a.revoked_at, tenant=a.tenant_id,
        policy_version=a.policy_version, policy_url=a.policy_url,
        client_keys=[sync_pb2.KeyDigest(sha256=k.sha256, not_after=k.not_after) for k in a.client_keys],
        signing_keys=[sync_pb2.SigningKey(kid=k.kid, alg=k.alg, secret=k.secret, public_key=k.public_key,
                                          not_after=k.not_after) for k in a.signing_keys],
        server_keys=[sync_pb2.ServerKey(name=k.name, sha256=k.sha256, scopes=k.scopes, revoked_at=k.revoked_at)
                     for k in a.server_keys]) for a in apps])


def app_info(a: App, *, client_key: str = "", signing_secret: str = "", private_key: str = "",
             server_key: str = "") -> operator_pb2.AppInfo:
    current = [k for k in a.signing_keys if not k.not_after]
    return operator_pb2.AppInfo(
        name=a.name, app_id=a.app_id, origins=a.origins, client_key=client_key, signing_secret=signing_secret,
        private_key=private_key, tenant=a.tenant_id, alg=current[-1].alg if current else "",
        policy_version=a.policy_version, policy_url=a.policy_url,
        kid=current[-1].kid if current else "", server_key=server_key, revoked_at=a.revoked_at,
        client_keys=len(a.client_keys),
        server_keys=[operator_pb2.ServerKeyInfo(name=k.name, scopes=k.scopes, revoked_at=k.revoked_at)
                     for k in a.server_keys])
