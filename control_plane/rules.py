"""Cohort trigger rules: validated here, stored, streamed to every edge (which evaluates them)."""

from __future__ import annotations

import re

import msgspec

from control_plane.errors import InvalidArgument, NotFound
from control_plane.store import Store
from control_plane.webhooks import notice
from sentiedge_core import topics
from sentiedge_core.rules import SIGNALS, TOPIC_SIGNALS, Rule
from sentiedge_core.segments import check_target

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
PART = re.compile(r"^(\*|[a-z0-9._-]+)$")


def validate(rule: Rule) -> Rule:
    if not NAME.match(rule.name):
        raise InvalidArgument("a rule name is 1-63 letters, digits, '.', '_' or '-'")
    parts = rule.cohort.lower().split("/")
    if len(parts) != 3 or not all(PART.match(p) for p in parts):
        raise InvalidArgument(f"cohort {rule.cohort!r} must be region/device/daypart, each a value or '*'")
    if rule.signal not in SIGNALS:
        raise InvalidArgument(f"signal {rule.signal!r} is not one of {', '.join(SIGNALS)}")
    if rule.topic:
        if not topics.NAME.match(rule.topic):
            raise InvalidArgument(f"topic {rule.topic[:60]!r} is not a topic name (control-plane topics list)")
        if rule.signal not in TOPIC_SIGNALS:
            raise InvalidArgument(f"a rule on a topic watches {' or '.join(TOPIC_SIGNALS)} of the texts that mention "
                                  f"it, not {rule.signal}")
        if rule.category:
            raise InvalidArgument("give a category or a topic, not both")
    if rule.op not in (">", "<"):
        raise InvalidArgument("op must be '>' or '<'")
    if (rule.op == ">" and rule.clear > rule.threshold) or (rule.op == "<" and rule.clear < rule.threshold):
        raise InvalidArgument(f"clear {rule.clear} must be on the other side of threshold {rule.threshold} "
                              f"(hysteresis: the action clears only past it)")
    if not 0 < rule.window_minutes <= 24 * 60:
        raise InvalidArgument("window_minutes must be in (0, 1440]")
    if rule.min_size < 1:
        raise InvalidArgument("min_size must be >= 1")
    if (why := check_target(rule.segment)) is not None:
        raise InvalidArgument(why)
    if not rule.action.strip():
        raise InvalidArgument("action is empty: name the content variant or flag to serve")
    return msgspec.structs.replace(rule, cohort=rule.cohort.lower(), category=rule.category.lower())


class RuleBook:
    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, rule: Rule, now: float) -> Rule:
        rule = validate(rule)
        self.store.put_rule(rule.name, msgspec.json.encode(rule).decode(), now)
        return rule

    def remove(self, name: str, now: float) -> Rule:
        rule = next((r for r in self.all() if r.name == name), None)
        if rule is None or not self.store.remove_rule(name, now):
            raise NotFound(f"no rule {name!r}")
        self.store.forget_trigger(name)
        return rule

    def reported(self, node_id: str, tenant: str, name: str, cohort: str, active: bool, value: float, at: float,
                 now: float) -> bool:
        """An edge's trigger transition in a tenant's cohort: when it changes the fleet's state
        (active while any edge has it active) the tenant's webhook is notified, once."""
        rule = next((r for r in self.all() if r.name == name), None)

        def make(fleet_active: bool):
            return notice("trigger.activated" if fleet_active else "trigger.cleared", tenant, {
                "rule": name, "cohort": cohort, "active": fleet_active, "value": value, "at": at, "node": node_id,
                "action": rule.action if rule else "", "signal": rule.signal if rule else "",
                "topic": rule.topic if rule else "", "threshold": rule.threshold if rule else None}, now)

        return self.store.report_trigger(tenant, name, cohort, node_id, active, at, make, now)

    def all(self) -> list[Rule]:
        return [msgspec.json.decode(body, type=Rule) for body in self.store.rules()]
