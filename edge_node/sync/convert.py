"""Protobuf ↔ edge domain. The sync agent is the only other edge module that sees protobuf."""

from __future__ import annotations

import msgspec

from edge_node.personalization.cohorts import CohortPrior
from edge_node.personalization.experiments import ExpCell, Experiment
from edge_node.personalization.triggers import Rule, Transition
from edge_node.records import CohortCell, PrivacyRequest
from protos.sentiedge.v1 import common_pb2, sync_pb2
from sentiedge_core import cohorts
from sentiedge_core import experiments as experiment_wire
from sentiedge_core import rules as rule_wire
from sentiedge_core.access import App, AppSet, KeyDigest, ServerKey, SigningKey
from sentiedge_core.privacy import policy_version_problem

KINDS = {"delete_user": common_pb2.PRIVACY_KIND_DELETE_USER, "revoke_consent": common_pb2.PRIVACY_KIND_REVOKE_CONSENT}


def model_ref(name: str, version: str, manifest_sha: str) -> common_pb2.ModelRef:
    return common_pb2.ModelRef(name=name, version=version, manifest_sha256=manifest_sha)


def aggregate(window: int, window_s: int, tenant: str, cohort: str, cell: CohortCell) -> sync_pb2.CohortAggregate:
    """A tenant's closed cell upstream, per-category counts included (the core's one wire conversion)."""
    return cohorts.to_proto(cohorts.Aggregate(tenant=tenant, window_start=window, window_seconds=window_s,
                                              cohort=cohort, **msgspec.structs.asdict(cell)))


def priors(message: sync_pb2.CohortPriors) -> dict[str, dict[str, CohortPrior]]:
    """tenant → cohort → prior."""
    out: dict[str, dict[str, CohortPrior]] = {}
    for a in message.cohorts:
        out.setdefault(a.tenant, {})[a.cohort] = CohortPrior(
            users=a.users, texts=a.texts, negative=a.negative, events=a.events, sentiment_sum=a.sentiment_sum,
            categories=dict(a.categories))
    return out


def filing(request: PrivacyRequest) -> sync_pb2.EdgeMessage:
    return sync_pb2.EdgeMessage(filing=sync_pb2.PrivacyFiling(
        request_id=request.request_id, kind=KINDS[request.kind], subject=request.subject,
        purposes=request.purposes, at=request.at, policy_version=_filed_version(request.policy_version)))


def _filed_version(version: str) -> str:
    """One that fails the check (none can be queued now) is filed without it: the control plane
    would refuse the whole filing for it."""
    return version if version and not policy_version_problem(version) else ""


def ack_privacy(seq: int, error: str = "") -> sync_pb2.EdgeMessage:
    status = common_pb2.ACK_STATUS_NACK if error else common_pb2.ACK_STATUS_ACK
    return sync_pb2.EdgeMessage(ack=sync_pb2.Ack(status=status, error=error, privacy_seq=seq))


def ack_model(ref: common_pb2.ModelRef, error: str = "") -> sync_pb2.EdgeMessage:
    status = common_pb2.ACK_STATUS_NACK if error else common_pb2.ACK_STATUS_ACK
    return sync_pb2.EdgeMessage(ack=sync_pb2.Ack(status=status, error=error, model=ref))


def rules(message: sync_pb2.RuleSet) -> list[Rule]:
    return [rule_wire.from_proto(r) for r in message.rules]


def trigger_event(t: Transition) -> sync_pb2.TriggerEvent:
    return sync_pb2.TriggerEvent(rule=t.rule, cohort=t.reported_cohort(), active=t.active, value=t.value, at=t.at,
                                 tenant=t.tenant)


def experiments(message: sync_pb2.ExperimentSet) -> list[Experiment]:
    return [experiment_wire.from_proto(e) for e in message.experiments]


def experiment_aggregate(window: int, name: str, arm: str, tenant: str, cohort: str,
                         cell: ExpCell) -> sync_pb2.ExperimentAggregate:
    return sync_pb2.ExperimentAggregate(window_start=window, experiment=name, arm=arm, tenant=tenant, cohort=cohort,
                                        exposures=cell.exposures, clicks=cell.clicks, conversions=cell.conversions,
                                        value=cell.value)


def recent_cells(message: sync_pb2.CohortPriors) -> dict[tuple[int, str, str], CohortCell]:
    out = {}
    for m in message.recent:  # a cell is the aggregate without its window, tenant and cohort
        a = cohorts.from_proto(m)
        out[(a.window_start, a.tenant, a.cohort)] = CohortCell(
            **{f: getattr(a, f) for f in CohortCell.__struct_fields__})
    return out


def apps(message: sync_pb2.AppSet) -> AppSet:
    return AppSet(version=message.version, legacy_tenant=message.legacy_tenant, apps=[App(
        app_id=a.app_id, name=a.name, origins=list(a.origins), revoked_at=a.revoked_at, tenant=a.tenant,
        policy_version=a.policy_version, policy_url=a.policy_url,
        client_keys=[KeyDigest(sha256=k.sha256, not_after=k.not_after) for k in a.client_keys],
        signing_keys=[SigningKey(kid=k.kid, alg=k.alg, secret=k.secret, public_key=k.public_key,
                                 not_after=k.not_after) for k in a.signing_keys],
        server_keys=[ServerKey(name=k.name, sha256=k.sha256, scopes=list(k.scopes), revoked_at=k.revoked_at)
                     for k in a.server_keys]) for a in message.apps])
