"""Experiments as the control plane defines them; every edge assigns units the same way. Their
one conversion to and from the wire is here too."""

from __future__ import annotations

import hashlib

import msgspec

from protos.sentiedge.v1 import sync_pb2

KINDS = ("exposure", "click", "conversion")


class Arm(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    weight: int
    holdout: bool = False


class Experiment(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    salt: str
    arms: list[Arm]
    segment: str = ""  # only users of this learned segment ("s2") take part; empty: everyone
    tenant: str = ""  # only this tenant's users (and anonymous traffic of its apps) take part; empty: every tenant's


def targets(experiment: Experiment, segment: str | None) -> bool:
    """Whether a unit in ``segment`` (None: none known) takes part in the experiment."""
    return not experiment.segment or experiment.segment == segment


def runs_for(experiment: Experiment, tenant: str) -> bool:
    """Whether the experiment takes ``tenant``'s units (another tenant's does not exist for them)."""
    return not experiment.tenant or experiment.tenant == tenant


def assign(experiment: Experiment, unit: str) -> Arm:
    """The unit's arm: a hash of experiment, salt and unit, so every edge agrees unprompted."""
    total = sum(a.weight for a in experiment.arms)
    digest = hashlib.sha256(f"{experiment.name}|{experiment.salt}|{unit}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") % total
    for arm in experiment.arms:
        if point < arm.weight:
            return arm
        point -= arm.weight
    return experiment.arms[-1]


def to_proto(e: Experiment) -> sync_pb2.Experiment:
    return sync_pb2.Experiment(name=e.name, salt=e.salt, segment=e.segment, tenant=e.tenant, arms=[
        sync_pb2.Arm(name=a.name, weight=a.weight, holdout=a.holdout) for a in e.arms])


def from_proto(e: sync_pb2.Experiment) -> Experiment:
    return Experiment(name=e.name, salt=e.salt, segment=e.segment, tenant=e.tenant,
                      arms=[Arm(name=a.name, weight=a.weight, holdout=a.holdout) for a in e.arms])
