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


def misaligned(window_start: int, window_s: float) -> bool:
    """The window does not start where a window of ``window_s`` seconds starts."""
    return int(round(window_start / window_s) * window_s) != window_start


def within_key_limit(items: Sequence[T], group: Callable[[T], tuple], key: Callable[[T], str | None],
                     held: Callable[[tuple], set[str]], limit: int) -> list[T]:
    """``items`` but those that would bring a group's distinct keys (what earlier heartbeats
    stored, ``held``, included) past ``limit``; an item whose key is None (a tenant-wide cell)
    or already held passes."""
    keys_of: dict[tuple, set[str]] = {}
    kept: list[T] = []
    for item in items:
        k = key(item)
        if k is not None:
            g = group(item)
            keys = keys_of.get(g)
            if keys is None:
                keys = keys_of[g] = set(held(g))
            if k not in keys:
                if len(keys) >= limit:
                    continue
                keys.add(k)
        kept.append(item)
    return kept
