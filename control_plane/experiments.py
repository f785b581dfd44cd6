"""Experiments: definitions, merged counts, and the report (lift over the holdout).

Statistics, per arm and cohort against the holdout of the same cohort: conversion rate,
absolute difference with a 95% Wald interval, relative lift, and the two-sided p-value of
the pooled two-proportion z-test (the textbook tests; checked against statsmodels in the
tests). A result carries a warning when the sample is too small to conclude.
"""

from __future__ import annotations

import math
import re

import msgspec

from control_plane.errors import InvalidArgument, NotFound
from control_plane.store import Store
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


class ExperimentBook:
    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, experiment: Experiment, now: float) -> Experiment:
        experiment = validate(experiment)
        if any(e.name == experiment.name for e in self.all()):
            raise InvalidArgument(f"experiment {experiment.name!r} exists; assignments must not change under it")
        self.store.put_experiment(experiment.name, msgspec.json.encode(experiment).decode(), now)
        return experiment

    def all(self) -> list[Experiment]:
        return [msgspec.json.decode(body, type=Experiment) for body in self.store.experiments()]

    def report(self, name: str) -> tuple[Experiment, list[Result]]:
        experiment = next((e for e in self.all() if e.name == name), None)
        if experiment is None:
            raise NotFound(f"no experiment {name!r}")
        holdout = next(a.name for a in experiment.arms if a.holdout)
        counts: dict[tuple[str, str], list] = {}
        for arm, cohort, exposures, conversions, value in self.store.experiment_counts(name):
            for key in ((arm, cohort), (arm, "all")):
                c = counts.setdefault(key, [0, 0, 0.0])
                c[0] += exposures
                c[1] += conversions
                c[2] += value
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
