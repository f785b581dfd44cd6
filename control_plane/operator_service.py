"""The operator use cases: each method is one operator call, in domain terms.

The gRPC servicers (control_plane.admin_servicers) authenticate, run these in a worker
thread, audit, and convert the result; everything that decides or combines lives here or in
the domain modules it calls. Nothing here knows gRPC or protobuf.
"""

from __future__ import annotations

import json

import msgspec

from control_plane.adaptation import Job, LedgerRow
from control_plane.apps import Issued
from control_plane.errors import FailedPrecondition, InvalidArgument, NotFound
from control_plane.ledger import RequestStatus, check_user_id
from control_plane.model_quality import Comparison, canaries, merge_quality
from control_plane.nodes import NODE_ID, NodeView
from control_plane.registry import RolloutView
from control_plane.rules import validate as validate_rule
from control_plane.state import ControlPlane
from control_plane.store import ModelRow
from control_plane.store.webhooks import Outgoing
from control_plane.trends import Trend
from control_plane.webhooks import HookView
from sentiedge_core.access import App
from sentiedge_core.daily import DailyRow
from sentiedge_core.experiments import Experiment
from sentiedge_core.monitoring import DRIFT_PSI_THRESHOLD, drift_report
from sentiedge_core.privacy import tenant_user
from sentiedge_core.rules import Rule
from sentiedge_core.topics import Topic, TopicSet, starter


class QualityRow(msgspec.Struct, kw_only=True):
    model: str
    scope: str  # a node id, or "all"
    labelled: int
    disagreements: int

    @property
    def rate(self) -> float:
        return self.disagreements / self.labelled if self.labelled else 0.0


class NodeState(msgspec.Struct, kw_only=True):
    node_id: str
    view: NodeView | None  # None: enrolled, never connected
    credential: str
    quarantined: bool


def _node_id(node_id: str) -> str:
    if not NODE_ID.match(node_id):
        raise InvalidArgument("node id must be 1-63 letters, digits, '.', '_' or '-'")
    return node_id


class OperatorService:
    def __init__(self, cp: ControlPlane) -> None:
        self.cp = cp

    # --- models -----------------------------------------------------------------------------
    def models(self) -> list[ModelRow]:
        return self.cp.store.models()

    def rollout(self, name: str, version: str, percent: int | None, nodes: list[str],
                allow_unknown: bool) -> tuple[RolloutView, list[str]]:
        _, warnings = self.cp.registry.rollout(name, version, percent, nodes, self.cp.now(),
                                               allow_unknown=allow_unknown)
        self.cp.wake_all()
        return self.rollout_status(name), warnings

    def rollback(self, name: str) -> RolloutView:
        self.cp.registry.rollback(name, self.cp.now())
        self.cp.wake_all()
        return self.rollout_status(name)

    def rollout_status(self, name: str) -> RolloutView:
        return self.cp.registry.status(name, self.cp.nodes.views(self.cp.now()))

    def drift(self) -> tuple[list[dict], float]:
        """PSI of each node's recent predictions against its model's reference, and of all
        nodes on the same model together."""
        outputs = [{**json.loads(body), "scope": node_id} for node_id, body, _ in self.cp.store.outputs()]
        return drift_report(outputs, DRIFT_PSI_THRESHOLD), DRIFT_PSI_THRESHOLD

    def quality(self, name: str = "") -> tuple[list[QualityRow], list[Comparison]]:
        """Disagreement of sampled, labelled predictions per model version (each node, and all),
        and for each rollout with a previous version, the current one compared with it."""
        chosen = [r for r in self.cp.store.quality() if not name or r[1].split(" ", 1)[0] == name]
        rows = [QualityRow(model=model, scope=node_id, labelled=labelled, disagreements=disagreements)
                for node_id, model, labelled, disagreements in chosen]
        merged = merge_quality(chosen)
        return rows + [QualityRow(model=model, scope="all", labelled=n, disagreements=d)
                       for model, (n, d) in sorted(merged.items())], canaries(self.cp.store, name)

    # --- adaptation -------------------------------------------------------------------------
    def adapt(self, name: str, version: str, **options) -> Job:
        row = self.cp.store.model(name=name, version=version)  # None: start() says what is missing
        if row is not None and not any(v.state == "connected" and v.node.model_sha == row.manifest_sha
                                       for v in self.cp.nodes.views(self.cp.now())):
            raise FailedPrecondition(f"no connected edge serves {name} {version}: its labels are on the edges "
                                     f"that served it (control-plane models status {name})")
        job = self.cp.adaptations.start(name, version, now=self.cp.now(), **options)
        self.cp.wake_all()  # the first round goes out to the edges now
        return job

    def adaptations(self, name: str, job_id: str) -> tuple[list[Job], list[LedgerRow]]:
        return self.cp.adaptations.jobs(name, job_id), self.cp.adaptations.ledger()

    def awaiting_signature(self, job: Job) -> bool:
        return bool(job.candidate_sha) and self.cp.registry.awaiting_signature(job.candidate_sha)

    def bundle_of(self, name: str, version: str) -> ModelRow:
        row = self.cp.store.model(name=name, version=version)
        if row is None:
            raise NotFound(f"no model {name} {version} (control-plane models list)")
        return row

    # --- privacy ----------------------------------------------------------------------------
    def _tenant_user(self, tenant: str, user_id: str) -> str:
        """The user as the edges' records name it: pseudonyms are keyed per tenant."""
        check_user_id(user_id)
        return tenant_user(self.cp.apps.tenant_of_request(tenant), user_id, self.cp.apps.legacy_tenant)

    def revoke_consent(self, user_id: str, purposes: list[str], idempotency_key: str,
                       tenant: str = "") -> RequestStatus:
        entry = self.cp.ledger.revoke(self._tenant_user(tenant, user_id), purposes, self.cp.now(), idempotency_key)
        self.cp.wake_all()
        return self.cp.ledger.status(entry.request_id)

    def delete_user(self, user_id: str, idempotency_key: str, tenant: str = "") -> RequestStatus:
        entry = self.cp.ledger.delete(self._tenant_user(tenant, user_id), self.cp.now(), idempotency_key)
        self.cp.wake_all()
        return self.cp.ledger.status(entry.request_id)

    # --- apps -------------------------------------------------------------------------------
    def add_app(self, name: str, origins: list[str], public_key: str, **options: str) -> Issued:
        issued = self.cp.apps.add(name, origins, public_key, self.cp.now(), **options)
        self.cp.wake_all()
        return issued

    def configure_app(self, name: str, **changes) -> App:
        app = self.cp.apps.configure(name, self.cp.now(), **changes)
        self.cp.wake_all()
        return app

    def rotate_app(self, name: str, grace_s: float) -> Issued:
        issued = self.cp.apps.rotate(name, grace_s, self.cp.now())
        self.cp.wake_all()
        return issued

    def revoke_app(self, name: str, server_key: str) -> App:
        app = self.cp.apps.revoke(name, server_key, self.cp.now())
        self.cp.wake_all()
        return app

    def add_server_key(self, name: str, key_name: str, scopes: list[str]) -> Issued:
        issued = self.cp.apps.add_server_key(name, key_name, scopes, self.cp.now())
        self.cp.wake_all()
        return issued

    # --- nodes ------------------------------------------------------------------------------
    def node(self, node_id: str) -> NodeState:
        view = next((v for v in self.cp.nodes.views(self.cp.now()) if v.node.node_id == node_id), None)
        return NodeState(node_id=node_id, view=view, credential=self.cp.node_auth.credential_of(node_id),
                         quarantined=node_id in self.cp.store.quarantined())

    def nodes(self) -> list[NodeState]:
        quarantined = self.cp.store.quarantined()
        return [NodeState(node_id=v.node.node_id, view=v, credential=self.cp.node_auth.credential_of(v.node.node_id),
                          quarantined=v.node.node_id in quarantined) for v in self.cp.nodes.views(self.cp.now())]

    def decommission(self, node_id: str) -> NodeState:
        self.cp.nodes.decommission(node_id)
        return self.node(node_id)

    def enroll(self, node_id: str, ttl_s: float) -> tuple[str, float]:
        _node_id(node_id)
        if self.cp.settings.tls:
            raise InvalidArgument("this control plane uses mTLS: issue the node a certificate "
                                  "(control-plane certs issue NODE) instead of an enrollment token")
        return self.cp.node_auth.enroll(node_id, ttl_s or 86400.0, self.cp.now())

    def revoke_node(self, node_id: str) -> NodeState:
        self.cp.store.revoke_credential(_node_id(node_id), self.cp.now())
        self.cp.wake_all()  # its open streams close
        return self.node(node_id)

    def quarantine(self, node_id: str, release: bool) -> NodeState:
        self.cp.store.set_quarantine(_node_id(node_id), not release)
        self.cp.cohorts.changed()
        self.cp.neighbours.rebuild(self.cp.now())  # its co-occurrence leaves (or rejoins) every table
        self.cp.wake_all()  # merged priors change for every edge
        return self.node(node_id)

    def import_history(self, tenant: str, rows: list[DailyRow], *, source: str) -> dict:
        """A backfill's daily aggregates for one tenant (a known one; may be left out while there
        is only one): stored, then streamed as priors."""
        tenant = self.cp.apps.tenant_of_request(tenant)
        done = {**self.cp.history.import_rows(tenant, rows, source=source, at=self.cp.now()), "tenant": tenant}
        self.cp.cohorts.changed()
        self.cp.wake_all()  # the priors every edge gets change
        return done

    # --- aggregates per tenant --------------------------------------------------------------
    def _known_tenant(self, tenant: str) -> str:
        known = self.cp.apps.tenants()
        if tenant not in known and tenant != self.cp.apps.legacy_tenant:
            raise InvalidArgument(f"no tenant {tenant!r}; tenants are {', '.join(known) or 'none'} "
                                  f"(control-plane apps list)")
        return tenant

    def tenant_filter(self, tenant: str) -> str | None:
        """The tenant an operator's view of aggregates is limited to (None: every tenant's)."""
        return self._known_tenant(tenant) if tenant else None

    # --- rules, experiments -----------------------------------------------------------------
    def add_rule(self, rule: Rule) -> Rule:
        if rule.tenant:
            self._known_tenant(rule.tenant)
        if rule.topic:
            self._topic_exists(validate_rule(rule).topic, rule.tenant)
        rule = self.cp.rules.add(rule, self.cp.now())
        self.cp.wake_all()
        return rule

    def remove_rule(self, name: str) -> Rule:
        rule = self.cp.rules.remove(name, self.cp.now())
        self.cp.wake_all()
        return rule

    def rules(self) -> tuple[int, list[Rule]]:
        return self.cp.store.rules_version(), self.cp.rules.all()

    def rule_history(self, limit: int) -> list[tuple]:
        return self.cp.store.rule_history(max(1, min(limit or 50, 10_000)))

    def add_experiment(self, experiment: Experiment) -> Experiment:
        if experiment.tenant:
            self._known_tenant(experiment.tenant)
        experiment = self.cp.experiments.add(experiment, self.cp.now())
        self.cp.wake_all()
        return experiment

    def experiments(self) -> tuple[int, list[Experiment]]:
        return self.cp.store.experiments_version(), self.cp.experiments.all()

    # --- topics, trends, webhooks -----------------------------------------------------------
    def _topic_exists(self, topic: str, tenant: str) -> None:
        """A rule may watch a topic only some tenant (its own, when it names one) has."""
        sets = [s for s in self.cp.topics.sets() if not tenant or s.tenant == tenant]
        if not any(t.name == topic for s in sets for t in s.topics):
            whose = f"tenant {tenant} has no topic" if tenant else "no tenant has a topic"
            raise InvalidArgument(f"{whose} {topic!r} (control-plane topics list; add it with topics add)")

    def _topic_tenant(self, tenant: str) -> str:
        return self.cp.apps.tenant_of_request(tenant, "the tenant whose topics these are")

    def _hook_tenant(self, tenant: str) -> str:
        return self.cp.apps.tenant_of_request(tenant, "the tenant whose webhook this is")

    def add_topic(self, tenant: str, topic: Topic) -> TopicSet:
        topic_set = self.cp.topics.add(self._topic_tenant(tenant), topic, self.cp.now())
        self.cp.wake_all()  # every edge gets the tenant's new set
        return topic_set

    def remove_topic(self, tenant: str, name: str) -> TopicSet:
        topic_set = self.cp.topics.remove(self._topic_tenant(tenant), name, self.cp.now())
        self.cp.wake_all()
        return topic_set

    def seed_topics(self, tenant: str) -> tuple[TopicSet, list[str], list[str]]:
        done = self.cp.topics.seed(self._topic_tenant(tenant), starter(), self.cp.now())
        if done[1]:
            self.cp.wake_all()
        return done

    def topic_sets(self, tenant: str) -> tuple[int, list[TopicSet]]:
        if tenant:
            return self.cp.topics.version(), [self.cp.topics.set_of(self._known_tenant(tenant))]
        return self.cp.topics.version(), self.cp.topics.sets()

    def trends(self, tenant: str, topic: str) -> list[Trend]:
        return self.cp.trends.report(self.cp.now(), self.tenant_filter(tenant), topic)

    def set_webhook(self, tenant: str, url: str, rotate: bool) -> HookView:
        return self.cp.webhooks.set(self._hook_tenant(tenant), url, rotate, self.cp.now())

    def remove_webhook(self, tenant: str) -> HookView:
        return self.cp.webhooks.remove(self._hook_tenant(tenant), self.cp.now())

    def test_webhook(self, tenant: str) -> Outgoing:
        return self.cp.webhooks.test(self._hook_tenant(tenant), self.cp.now())

    def webhook_log(self, tenant: str, limit: int) -> tuple[list[tuple], list[Outgoing]]:
        return self.cp.webhooks.log(self.tenant_filter(tenant), limit)

    # --- operators --------------------------------------------------------------------------
    def tokens(self) -> tuple[list[str], list[tuple[str, float, float]]]:
        """Configured token names, and stored tokens as (name, created at, revoked at)."""
        return sorted(set(self.cp.tokens.values())), self.cp.store.tokens()

    def audit_entries(self, limit: int) -> list[tuple[float, str, str, str, bool]]:
        return self.cp.store.audit_entries(max(1, min(limit or 50, 10_000)))
