"""Experiments: definitions, merged counts, and the report (lift over the holdout).

Counts arrive and are stored per tenant (``ExperimentAggregate.tenant``); the report covers
every tenant's units or, filtered, one tenant's. An experiment with a ``tenant`` takes only
that tenant's units at the edges.

Statistics, per arm and cohort against the holdout of the same cohort: conversion rate,
absolute difference with a 95% Wald interval, relative lift, and the two-sided p-value of
the pooled two-proportion z-test (the textbook tests; checked against statsmodels in the
tests). A result carries a warning when the sample is too small to conclude.

One node, bounded influence (see :mod:`control_plane.influence`):

* On arrival (:meth:`ExperimentBook.ingest`), a node's exposures per window, experiment, arm
  and cohort are at most what its traffic makes plausible: its cohort cap (the most users it
  may report per cell now, which grows with time, not heartbeats) times
  ``CP_EXPERIMENT_EXPOSURES_PER_USER`` (20); clicks and conversions never above its exposures;
  a value that is not finite counts 0 (and a value shrinks with its clipped conversions).
  10¹² exposures from a new node count as 100 × 20 = 2,000.
* In the report, where two or more nodes report an arm in a cohort (and for the arm over all
  cohorts), one node's exposures, conversions and value count for at most
  ``CP_MAX_NODE_SHARE`` (0.75) of the merged arm (or ``share/(1−share)`` × 100 exposures when the
  others have fewer): it moves an arm's conversion rate by at most ``share`` (its own rate can
  differ from the others' by at most 1) and an arm only it reports is bounded by the per-window
  cap above.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import msgspec

from control_plane.errors import InvalidArgument, NotFound
from control_plane.influence import share_factors
from control_plane.intake import misaligned, screen, within_key_limit
from control_plane.store import Store
from sentiedge_core.cohorts import ALL, key_problem
from sentiedge_core.experiments import Arm, Experiment
from sentiedge_core.segments import check_target

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
Z95 = 1.959963984540054
MIN_EXPOSURES = 100
MIN_OUTCOMES = 10


class Result(msgspec.Struct, kw_only=True):
    arm: str
    cohort: str
    exposures: int
    conversions: int
    conversion_rate: float
    value: float
    is_holdout: bool
    lift: float = 0.0
    diff: float = 0.0
    ci_low: float = 0.0
    ci_high: float = 0.0
    p_value: float = 1.0
    warning: str = ""


def two_proportions(x_t: int, n_t: int, x_h: int, n_h: int) -> tuple[float, float, float, float]:
    """(difference, 95% CI low, high, two-sided p-value) of treatment vs holdout rates."""
    p_t, p_h = x_t / n_t, x_h / n_h
    diff = p_t - p_h
    se = math.sqrt(p_t * (1 - p_t) / n_t + p_h * (1 - p_h) / n_h)
    pooled = (x_t + x_h) / (n_t + n_h)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n_t + 1 / n_h))
    p_value = math.erfc(abs(diff / se0) / math.sqrt(2)) if se0 > 0 else 1.0
    return diff, diff - Z95 * se, diff + Z95 * se, p_value


def validate(e: Experiment) -> Experiment:
    if not NAME.match(e.name):
        raise InvalidArgument("an experiment name is 1-63 letters, digits, '.', '_' or '-'")
    names = [a.name for a in e.arms]
    if len(e.arms) < 2 or len(set(names)) != len(names) or any(not NAME.match(n) for n in names):
        raise InvalidArgument("an experiment needs two or more arms with distinct names")
    if any(a.weight < 0 for a in e.arms) or sum(a.weight for a in e.arms) == 0:
        raise InvalidArgument("arm weights must be >= 0 and not all 0")
    if (why := check_target(e.segment)) is not None:
        raise InvalidArgument(why)
    if sum(a.holdout for a in e.arms) != 1:
        raise InvalidArgument("exactly one arm must be the holdout (it gets no personalization)")
    return e


MAX_ROWS_PER_BEAT = 20_000  # experiment count rows one heartbeat may carry
MAX_VALUE_PER_CONVERSION = 1e6  # a value (revenue, say) beyond this per conversion is not believed


class ExperimentBook:
    def __init__(self, store: Store, *, cap=None, exposures_per_user: int = 20, max_node_share: float = 0.75) -> None:
        self.store = store
        self.cap = cap  # node, now -> the most users it may report per cohort cell (CohortMerge.cap)
        self.exposures_per_user = exposures_per_user
        self.max_node_share = max_node_share
        self.legacy_tenant = ""  # owns the counts stored before tenants (control_plane.apps.AppBook.legacy_tenant)
        # -> the tenants rows may name (None: any); set by the wiring
        self.known_tenants: Callable[[], set[str] | None] = lambda: None
        self.horizon_s = 30 * 86400.0  # counts of windows older than this are not taken
        self.window_s = 1800.0  # the cohort window (CP_COHORT_WINDOW_MINUTES): counts are per such window
        self.max_node_cohorts = 2000  # distinct cohort keys per node, tenant and window (CP_MAX_NODE_COHORTS_...)

    def bound(self, row: tuple, most: int) -> tuple:
        """One count row (window, experiment, arm, cohort, exposures, clicks, conversions, value,
        tenant) clipped to ``most`` exposures, with clicks and conversions never above the exposures."""
        window, experiment, arm, cohort, exposures, clicks, conversions, value, *tenant = row
        n = max(0, min(int(exposures), most))
        x = max(0, min(int(conversions), n))
        value = float(value) if math.isfinite(value) else 0.0
        value = max(-MAX_VALUE_PER_CONVERSION * x, min(MAX_VALUE_PER_CONVERSION * x, value))
        if x < conversions:  # the value of the conversions that count
            value = value * x / conversions if conversions else 0.0
        return (window, experiment, arm, cohort, n, max(0, min(int(clicks), n)), x, value, *tenant)

    def ingest(self, node_id: str, rows: list[tuple], now: float) -> int:
        """Store a node's closed windows of experiment counts, bounded; returns how many were
        clipped or dropped: an experiment or arm that does not exist, an unknown tenant, a cohort
        key no edge builds, a window of the cohort length misaligned, in the future or past the
        horizon, and new cohort keys past ``max_node_cohorts`` per tenant and window (so made-up
        names, arms, keys and windows cannot grow the store)."""
        if not rows:
            return 0
        known = self.known_tenants()
        arms = {e.name: {a.name for a in e.arms} for e in self.all()}

        def problem(r: tuple) -> str | None:
            window, experiment, arm, cohort, *_ = r
            tenant = r[8] if len(r) > 8 else ""
            if arm not in arms.get(experiment, ()):
                return "experiment"
            if known is not None and tenant and tenant not in known:
                return "tenant"
            if key_problem(cohort) is not None or misaligned(window, self.window_s):
                return "key"
            return None if now - self.horizon_s <= window <= now else "window_time"

        kept, _ = screen(rows, problem, MAX_ROWS_PER_BEAT)
        kept = within_key_limit(kept, lambda r: (r[8] if len(r) > 8 else "", r[0]),
                                lambda r: None if r[3] == ALL else r[3],
                                lambda g: self.store.experiment_cohorts(node_id, *g) - {ALL}, self.max_node_cohorts)
        most = (self.cap(node_id, now) if self.cap else 10_000) * self.exposures_per_user
        bounded = [self.bound(r, most) for r in kept]
        if bounded:
            self.store.put_experiment_counts(node_id, bounded)
        return len(rows) - len(kept) + sum(tuple(b) != tuple(r) for b, r in zip(bounded, kept, strict=False))

    def _counts(self, name: str, tenant: str | None = None) -> dict[tuple[str, str], list]:
        """(arm, cohort) -> [exposures, conversions, value], each node's share capped, with "all"
        cohorts per arm (capped again over each node's total for the arm). ``tenant``: that
        tenant's counts only (rows from before tenants are the legacy tenant's)."""
        tenants = None if tenant is None else [tenant] + ([""] if tenant == self.legacy_tenant else [])
        parts: dict[tuple[str, str], dict[str, list]] = {}
        for arm, cohort, node, exposures, conversions, value in self.store.experiment_counts_by_node(name, tenants):
            for key in ((arm, cohort), (arm, "all")):
                c = parts.setdefault(key, {}).setdefault(node, [0, 0, 0.0])
                c[0] += exposures
                c[1] += conversions
                c[2] += value
        counts = {}
        for key, nodes in parts.items():
            factors = share_factors({node: float(c[0]) for node, c in nodes.items()}, self.max_node_share,
                                    MIN_EXPOSURES)
            # Value is a sum of its own (revenue, say): its share is capped on its own weights too,
            # or a node with few exposures could claim almost all of an arm's value.
            value_factors = share_factors({node: abs(c[2]) for node, c in nodes.items()}, self.max_node_share)
            total = counts[key] = [0, 0, 0.0]
            for node, (n, x, v) in nodes.items():
                f = factors[node]
                total[0] += n if f >= 1 else int(math.floor(n * f))
                total[1] += x if f >= 1 else int(math.floor(x * f))
                total[2] += v * min(f, value_factors[node])
        return counts

    def add(self, experiment: Experiment, now: float) -> Experiment:
        experiment = validate(experiment)
        if any(e.name == experiment.name for e in self.all()):
            raise InvalidArgument(f"experiment {experiment.name!r} exists; assignments must not change under it")
        self.store.put_experiment(experiment.name, msgspec.json.encode(experiment).decode(), now)
        return experiment

    def all(self) -> list[Experiment]:
        return [msgspec.json.decode(body, type=Experiment) for body in self.store.experiments()]

    def report(self, name: str, tenant: str | None = None) -> tuple[Experiment, list[Result]]:
        """Per arm and cohort against the holdout; ``tenant``: that tenant's units only (counts
        are kept per tenant; an experiment for one tenant has that tenant's alone)."""
        experiment = next((e for e in self.all() if e.name == name), None)
        if experiment is None:
            raise NotFound(f"no experiment {name!r}")
        holdout = next(a.name for a in experiment.arms if a.holdout)
        counts = self._counts(name, tenant)
        results = []
        for (arm, cohort), (n, x, value) in sorted(counts.items(), key=lambda kv: (kv[0][1] != "all", kv[0])):
            r = Result(arm=arm, cohort=cohort, exposures=n, conversions=x, conversion_rate=x / n if n else 0.0,
                       value=value, is_holdout=arm == holdout)
            base = counts.get((holdout, cohort))
            if arm != holdout and base and base[0] and n:
                r.diff, r.ci_low, r.ci_high, r.p_value = two_proportions(x, n, base[1], base[0])
                r.lift = r.diff / (base[1] / base[0]) if base[1] else 0.0
                small = min(n, base[0]) < MIN_EXPOSURES or min(x, base[1], n - x, base[0] - base[1]) < MIN_OUTCOMES
                if small:
                    r.warning = (f"sample too small to conclude (needs {MIN_EXPOSURES}+ exposures per arm and "
                                 f"{MIN_OUTCOMES}+ conversions and non-conversions)")
            elif arm != holdout:
                r.warning = "no holdout data in this cohort"
            results.append(r)
        return experiment, results


__all__ = ["Arm", "Experiment", "ExperimentBook", "two_proportions"]
