"""Cohort sentiment triggers: act on cohorts before persons.

Rules come from the control plane. Each names a cohort selector (``eu/mobile/*``), a
signal over a window (mean sentiment, share of negative texts, event or text volume, each
optionally for one category; or the share of negative mentions, or the mentions, of one topic
among the texts' aspects), a comparison, a threshold,
a minimum cohort size and an action. An action turns on when the signal crosses the
threshold and off only when it crosses back past the ``clear`` value (hysteresis), so it
does not flap. Signals come from the cohort windows merged over every edge by the control plane
where a window has closed and been merged, and from this edge's own cells otherwise
(the open window): consenting users only.

Rules act per tenant: a rule with a ``tenant`` reads and serves that tenant's cohorts only;
a rule without one is evaluated for each tenant's cohorts apart — its state, hysteresis and
action are per (rule, tenant, cohort), never on a merge of several tenants' users.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import msgspec

from edge_node.personalization.cohorts import CohortBook
from sentiedge_core.rules import LABELS, SIGNALS, Rule, matches

__all__ = ["LABELS", "SIGNALS", "Rule", "matches", "Action", "Transition", "TriggerBook"]

REEVALUATE_S = 1.0


class Action(msgspec.Struct, kw_only=True):
    action: str
    rule: str
    reason: str  # "cohort eu/mobile/evening: negative share 0.41 > 0.30 over 30 min"


class Transition(msgspec.Struct, kw_only=True):
    rule: str
    cohort: str
    active: bool
    value: float
    at: float
    tenant: str = ""

    def reported_cohort(self) -> str:
        """The cohort as the rule's history names it: TriggerEvent has no tenant of its own, so
        the tenant goes before the cohort key ("shop:eu/mobile/evening"); operators only read it."""
        return f"{self.tenant}:{self.cohort}" if self.tenant else self.cohort


class _State:
    __slots__ = ("active", "value", "checked", "crossed_at", "served")

    def __init__(self) -> None:
        self.active = False
        self.value = 0.0
        self.checked = 0.0
        self.crossed_at = 0.0
        self.served = True


class TriggerBook:
    def __init__(self, cohorts: CohortBook, *, on_activation: Callable[[str], None] | None = None,
                 on_served: Callable[[float], None] | None = None,
                 claim: Callable[[str, str, str, bool], bool] | None = None,
                 shared_active: Callable[[str, str, str], bool] | None = None) -> None:
        self.cohorts = cohorts
        self.rules: list[Rule] = []
        self.version = 0
        self.on_activation = on_activation
        self.on_served = on_served
        # Several workers of one node evaluate the same shared cells: the one whose flip
        # changes the node's shared state (``claim``) reports the transition, the others follow.
        self.claim = claim
        self.shared_active = shared_active  # the node's state of a rule in a tenant's cohort, as last claimed
        self._state: dict[tuple[str, str, str], _State] = {}  # (rule, tenant, cohort)
        self.transitions: deque[Transition] = deque(maxlen=10_000)  # drained into heartbeats

    def set_rules(self, rules: list[Rule], version: int) -> None:
        names = {r.name for r in rules}
        self.rules = rules
        self.version = version
        self._state = {k: v for k, v in self._state.items() if k[0] in names}

    @staticmethod
    def applies(rule: Rule, key: str, tenant: str) -> bool:
        return (not rule.tenant or rule.tenant == tenant) and matches(rule.cohort, key)

    def signal(self, rule: Rule, key: str, now: float, tenant: str) -> tuple[float, int]:
        """The rule's signal and the tenant's cohort's size (users summed over the window's cells)."""
        users = texts = negative = events = 0
        sentiment = 0.0
        window = self.cohorts.window_of(now)
        start = now - rule.window_minutes * 60
        while window + self.cohorts.window_s > start:
            # A closed window merged over every edge (it includes this one) beats the local view;
            # the open window is only known here.
            cell = (self.cohorts.remote_windows.get((window, tenant, key))
                    or self.cohorts.cells(window, tenant).get(key))
            if cell is not None:
                users += cell.users
                if rule.topic:  # the texts that mention the topic (their aspects)
                    texts += cell.aspect_texts.get(rule.topic, 0)
                    negative += cell.aspect_negative.get(rule.topic, 0)
                elif rule.category:  # the topic's share of the cohort's activity
                    events += cell.topic_events.get(rule.category, 0)
                    sentiment += cell.topic_sentiment.get(rule.category, 0.0)
                    texts += cell.topic_texts.get(rule.category, 0)
                    negative += cell.topic_negative.get(rule.category, 0)
                else:
                    events += cell.events
                    sentiment += cell.sentiment_sum
                    texts += cell.texts
                    negative += cell.negative
            window -= int(self.cohorts.window_s)
        value = {"mean_sentiment": sentiment / users if users else 0.0,
                 "negative_share": negative / texts if texts else 0.0,
                 "event_volume": float(events), "text_volume": float(texts)}[rule.signal]
        return value, users

    def evaluate(self, key: str, now: float, tenant: str) -> None:
        """Re-check every rule matching the tenant's cohort; record transitions."""
        for rule in self.rules:
            if not self.applies(rule, key, tenant):
                continue
            state = self._state.setdefault((rule.name, tenant, key), _State())
            if self.shared_active is not None:  # start from the node's state: hysteresis alike on every worker
                state.active = self.shared_active(rule.name, key, tenant)
            value, users = self.signal(rule, key, now, tenant)
            state.value, state.checked = value, now
            big_enough = users >= rule.min_size
            above = value > rule.threshold if rule.op == ">" else value < rule.threshold
            cleared = value < rule.clear if rule.op == ">" else value > rule.clear
            if not state.active and big_enough and above:
                state.active, state.crossed_at, state.served = True, now, False
                if self.claim is None or self.claim(rule.name, key, tenant, True):
                    self._transition(rule, key, tenant, True, value, now)
                    if self.on_activation is not None:
                        self.on_activation(rule.name)
            elif state.active and (cleared or not big_enough):
                state.active = False
                if self.claim is None or self.claim(rule.name, key, tenant, False):
                    self._transition(rule, key, tenant, False, value, now)

    def _behind(self, rule: str, key: str, tenant: str) -> bool:
        """Another worker of this node flipped the rule in this cohort since this one looked."""
        if self.shared_active is None:
            return False
        state = self._state.get((rule, tenant, key))
        return self.shared_active(rule, key, tenant) != (state is not None and state.active)

    def _transition(self, rule: Rule, key: str, tenant: str, active: bool, value: float, now: float) -> None:
        self.transitions.append(Transition(rule=rule.name, cohort=key, tenant=tenant, active=active,
                                           value=round(value, 4), at=now))

    def active(self, key: str, now: float, segment: str | None, tenant: str) -> list[Action]:
        """Actions to serve for a tenant's cohort now (re-evaluated at most every second); a rule
        that targets a learned segment serves only users in ``segment``."""
        if not self.rules:
            return []
        if any(self.applies(r, key, tenant)
               and (now - self._state.get((r.name, tenant, key), _State()).checked > REEVALUATE_S
                    or self._behind(r.name, key, tenant)) for r in self.rules):
            self.evaluate(key, now, tenant)
        out = []
        for rule in self.rules:
            if rule.tenant and rule.tenant != tenant:
                continue
            state = self._state.get((rule.name, tenant, key))
            if state is None or not state.active or (rule.segment and rule.segment != segment):
                continue
            if not state.served:
                state.served = True
                if self.on_served is not None:
                    self.on_served(max(now - state.crossed_at, 0.0))
            label = LABELS[rule.signal] + (f" of {rule.category}" if rule.category else "") + (
                f" of topic {rule.topic}" if rule.topic else "")
            value = f"{state.value:.2f}" if "volume" not in rule.signal else f"{state.value:.0f}"
            out.append(Action(action=rule.action, rule=rule.name,
                              reason=f"cohort {key}: {label} {value} {rule.op} {rule.threshold:g} over "
                                     f"{rule.window_minutes:g} min"))
        return out
