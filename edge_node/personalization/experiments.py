"""Experiments with holdouts on the edge: deterministic assignment and aggregate counting.

A unit (the user id, or the request's cohort for anonymous traffic) is assigned by a hash
of experiment name, salt and unit, so every edge puts it in the same arm with no state and
no coordination. The holdout arm gets no personalization. Exposures and outcomes are
counted per window, experiment, arm, tenant and cohort — counts only, never who — and windows
with fewer exposures than the minimum size never leave the edge. An experiment with a
``tenant`` takes that tenant's units only; for any other tenant it does not exist.
"""

from __future__ import annotations

import msgspec

from edge_node.errors import Conflict, InvalidInput
from edge_node.personalization.cohorts import SEPARATOR
from edge_node.records import Keys, Stored
from edge_node.store import EdgeStore
from sentiedge_core.experiments import KINDS, Arm, Experiment, assign, runs_for, targets

__all__ = ["KINDS", "Arm", "Experiment", "assign", "Assignment", "ExpCell", "ExperimentBook"]

class Assignment(msgspec.Struct, kw_only=True):
    experiment: str
    arm: str
    holdout: bool


class ExpCell(Stored, kw_only=True):
    exposures: int = 0
    clicks: int = 0
    conversions: int = 0
    value: float = 0.0


class ExperimentBook:
    def __init__(self, store: EdgeStore, *, window_s: float, min_size: int, horizon_s: float) -> None:
        self.store = store
        self.window_s = window_s
        self.min_size = min_size
        self.horizon_s = horizon_s
        self.experiments: dict[str, Experiment] = {}
        self.version = 0

    def set(self, experiments: list[Experiment], version: int) -> None:
        self.experiments = {e.name: e for e in experiments if e.arms and sum(a.weight for a in e.arms) > 0}
        self.version = version

    def assignments(self, unit: str, segment: str | None, tenant: str) -> list[Assignment]:
        """The unit's arm in every running experiment it takes part in (an experiment that
        targets a learned segment takes only units in ``segment``, one for a tenant only that
        tenant's units)."""
        out = []
        for experiment in self.experiments.values():
            if not targets(experiment, segment) or not runs_for(experiment, tenant):
                continue
            arm = assign(experiment, unit)
            out.append(Assignment(experiment=experiment.name, arm=arm.name, holdout=arm.holdout))
        return out

    def held_out(self, unit: str, segment: str | None = None, tenant: str = "") -> str | None:
        """The experiment whose holdout arm this unit (of ``tenant``) is in, if any (no
        personalization then)."""
        return next((a.experiment for a in self.assignments(unit, segment, tenant) if a.holdout), None)

    def record(self, name: str, unit: str, kind: str, value: float, cohort: str, now: float,
               segment: str | None = None, *, tenant: str) -> Assignment:
        experiment = self.experiments.get(name)
        if experiment is None or not runs_for(experiment, tenant):
            raise InvalidInput(f"no running experiment {name!r}", field="experiment")
        if not targets(experiment, segment):
            raise Conflict(f"experiment {name!r} runs in learned segment {experiment.segment} only and this unit is "
                           f"{'in ' + segment if segment else 'in no segment'}: nothing counted",
                           reason="not_in_segment", field="user_id")
        if kind not in KINDS:
            raise InvalidInput(f"kind {kind!r} is not one of {', '.join(KINDS)}", field="kind")
        arm = assign(experiment, unit)
        window = int(now // self.window_s * self.window_s)
        key = f"exp|{window}|{name}|{arm.name}|{tenant}{SEPARATOR}{cohort}"
        with self.store.transaction():
            cell = self.store.get(key, ExpCell) or ExpCell()
            if cell.exposures == cell.clicks == cell.conversions == 0:
                index = self.store.get(f"exps|{window}", Keys) or Keys()
                index.keys.append(key)
                self.store.put(f"exps|{window}", index, ttl=self.horizon_s + self.window_s)
            cell.exposures += kind == "exposure"
            cell.clicks += kind == "click"
            cell.conversions += kind == "conversion"
            cell.value += value if kind == "conversion" else 0.0
            self.store.put(key, cell, ttl=self.horizon_s + self.window_s)
        return Assignment(experiment=name, arm=arm.name, holdout=arm.holdout)

    def export(self, window: int, legacy_tenant: str = "") -> list[tuple[str, str, str, str, ExpCell]]:
        """(experiment, arm, tenant, cohort, cell) of a window, minimum size applied. Counts from
        before tenants (no tenant in their key) are the legacy tenant's, or, with none, not sent."""
        index = self.store.get(f"exps|{window}", Keys)
        out = []
        for key in index.keys if index else []:
            cell = self.store.get(key, ExpCell)
            _, _, name, arm, rest = key.split("|", 4)
            tenant, sep, cohort = rest.partition(SEPARATOR)
            if not sep:
                tenant, cohort = legacy_tenant, rest
            if cell is not None and cell.exposures >= self.min_size and tenant:
                out.append((name, arm, tenant, cohort, cell))
        return out
