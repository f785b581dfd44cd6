"""Sorting what a heartbeat carries into what may be added and what is refused, per reason."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def screen(items: Sequence[T], problem: Callable[[T], str | None], limit: int) -> tuple[list[T], dict[str, int]]:
    """(the first ``limit`` items without a problem, reason → how many were refused); items past
    ``limit`` are refused as ``too_many``."""
    kept: list[T] = []
    refused: dict[str, int] = {}
    for item in items[:limit]:
        why = problem(item)
        if why is None:
            kept.append(item)
        else:
            refused[why] = refused.get(why, 0) + 1
    if len(items) > limit:
        refused["too_many"] = len(items) - limit
    return kept, refused
