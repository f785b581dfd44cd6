"""What a heartbeat's trigger transitions may add: the rule history and the tenant's webhook.

A tenant's webhook follows the fleet's state of a rule in a cohort (active while any edge
reports it active), so an enrolled node's word is enough to send ``trigger.activated``. What
a node may report is therefore checked before anything is stored or notified:

* the rule exists and acts on that tenant (a rule added with ``--tenant`` acts on its own);
* the tenant is one the control plane knows (an edge from before tenants names none: history only);
* the cohort is a key an edge builds (``all`` never carries a rule) that the rule's selector matches;
* it happened inside the cohort horizon and not in the future (``FUTURE_S`` of clock skew allowed);
* at most ``MAX_PER_BEAT`` per heartbeat (an edge keeps at most that many unreceipted) and
  ``PER_NODE_PER_S`` per node over time (a bucket of ``MAX_PER_BEAT``): an edge re-evaluates a
  cohort at most once a second and its rules have hysteresis, so honest transitions come far
  slower; a node flapping a rule to flood the history and the webhook is cut to that rate.

Quarantined nodes' transitions are left out too. Refusals are counted per node and reason
(``sentiedge_cp_trigger_events_refused_total``). What is left is docs/operations.md's residual:
a node can still report a real rule active in a cohort key of its choosing that the rule's
selector matches; the notice names the node.
"""

from __future__ import annotations

from collections.abc import Callable

from control_plane.intake import screen
from sentiedge_core.access import RateLimiter
from sentiedge_core.cohorts import ALL, key_problem
from sentiedge_core.rules import Rule, matches

MAX_PER_BEAT = 1000  # an edge's own bound on unreceipted transitions (edge_node.fleet.MAX_PENDING_TRIGGERS)
PER_NODE_PER_S = 1.0
FUTURE_S = 300.0

# (at, rule, cohort as reported, active, value, tenant, the bare cohort key)
Report = tuple[float, str, str, bool, float, str, str]


class TriggerIntake:
    def __init__(self, *, rules: Callable[[], list[Rule]], known_tenants: Callable[[], set[str] | None],
                 quarantined: Callable[[], set[str]], horizon_s: float,
                 on_refused: Callable[[str, str, int], None] = lambda node, reason, n: None) -> None:
        self.rules = rules
        self.known_tenants = known_tenants
        self.quarantined = quarantined
        self.horizon_s = horizon_s
        self.on_refused = on_refused
        self.limit = RateLimiter(PER_NODE_PER_S, MAX_PER_BEAT)

    def problem(self, report: Report, rules: dict[str, Rule], known: set[str] | None, now: float) -> str | None:
        """Why a node may not report this transition (a reason of the refusal metric), or None."""
        at, name, _, _, _, tenant, key = report
        rule = rules.get(name)
        if rule is None or (rule.tenant and tenant and rule.tenant != tenant):
            return "rule"
        if tenant and known is not None and tenant not in known:
            return "tenant"
        if key == ALL or key_problem(key) is not None or not matches(rule.cohort, key):
            return "cohort"
        if not now - self.horizon_s <= at <= now + FUTURE_S:
            return "time"
        return None

    def accept(self, node_id: str, reports: list[Report], now: float) -> list[Report]:
        """The transitions a heartbeat may add; the others are refused, counted per reason."""
        if not reports:
            return []
        if node_id in self.quarantined():
            self.on_refused(node_id, "quarantined", len(reports))
            return []
        rules, known = {r.name: r for r in self.rules()}, self.known_tenants()
        plausible, refused = screen(reports, lambda r: self.problem(r, rules, known, now), MAX_PER_BEAT)
        kept = [r for r in plausible if self.limit.take(node_id, now) == 0]
        if len(kept) < len(plausible):
            refused["rate"] = len(plausible) - len(kept)
        for why, n in refused.items():
            self.on_refused(node_id, why, n)
        return kept
