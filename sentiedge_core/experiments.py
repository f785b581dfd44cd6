"""Experiments as the control plane defines them; every edge assigns units the same way."""

from __future__ import annotations

import hashlib

import msgspec

KINDS = ("exposure", "click", "conversion")


class Arm(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    weight: int
    holdout: bool = False


class Experiment(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    salt: str
    arms: list[Arm]


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
