"""The collaborative signal, "often chosen with X": item co-occurrence counted on the edges,
merged on the control plane, streamed back as an item-neighbour table. Both services use the
types here and their one wire conversion.

* An edge counts, per closed window and tenant, how many distinct consenting users chose each
  item and each pair of items (:class:`PairWindow`); only counts of at least the cohort minimum
  of users leave it, so nothing one person did is in a window.
* The control plane merges the windows of every edge per tenant (one node's share bounded) and
  keeps, per item, its ``top_m`` neighbours by :func:`similarity` (:class:`NeighbourTable`).
* An edge scores a candidate by its similarity to the user's own recent items
  (edge_node.personalization.cooccurrence).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import msgspec

from protos.sentiedge.v1 import sync_pb2

MAX_ITEM_CHARS = 256  # an item id longer than this is not an item id (the edges' own limit is EDGE_MAX_ID_CHARS)


class PairWindow(msgspec.Struct, kw_only=True):
    """One tenant's closed window at one edge: distinct users per item and per pair of items,
    each count at least the minimum size. Nothing in it is per user."""

    tenant: str
    window_start: int
    window_seconds: int
    items: dict[str, int] = {}
    pairs: list[tuple[str, str, int]] = []  # (a, b, users) with a < b


class NeighbourTable(msgspec.Struct, kw_only=True):
    """One tenant's item-neighbour table: item → its neighbours, strongest first."""

    tenant: str
    version: int = 0
    built_at: float = 0.0
    items: dict[str, list[tuple[str, float]]] = {}


def pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)


def similarity(users: float, users_a: float, users_b: float, shrink: float) -> float:
    """Cosine similarity of two items' user sets, ``c / sqrt(n_a n_b)``, shrunk by ``c / (c + shrink)``
    so that a pair seen by few users counts less than one seen by many with the same cosine."""
    if users <= 0 or users_a <= 0 or users_b <= 0:
        return 0.0
    return users / math.sqrt(users_a * users_b) * users / (users + shrink)


# (users of the pair, users of a, users of b, shrink) → similarity; symmetric in a and b (the
# edges read the table both ways)
Similarity = Callable[[float, float, float, float], float]


def top_neighbours(pairs: dict[tuple[str, str], float], items: dict[str, float], *, top_m: int, max_items: int,
                   shrink: float, order: list[str] | None = None,
                   measure: Similarity = similarity) -> dict[str, list[tuple[str, float]]]:
    """Item → its ``top_m`` neighbours with their ``measure`` (default: :func:`similarity`, rounded
    to 5 places), strongest first (ties by id), for at most ``max_items`` items: the first in
    ``order`` (default: those chosen by the most users) among the items of some pair (an item no
    kept pair names has no neighbour to give, so items one node alone reports cannot crowd the
    others out of the table)."""
    paired = {item for pair in pairs for item in pair}
    ranked = order if order is not None else sorted(items, key=lambda i: (-items[i], i))
    keep = set([i for i in ranked if i in paired and i in items][:max_items])
    out: dict[str, list[tuple[str, float]]] = {}
    for (a, b), c in pairs.items():
        if a not in keep or b not in keep:
            continue
        sim = round(measure(c, items[a], items[b], shrink), 5)
        if sim <= 0:
            continue
        out.setdefault(a, []).append((b, sim))
        out.setdefault(b, []).append((a, sim))
    return {i: sorted(ns, key=lambda t: (-t[1], t[0]))[:top_m] for i, ns in sorted(out.items())}


# --- the wire --------------------------------------------------------------------------------
def window_to_proto(w: PairWindow) -> sync_pb2.PairWindow:
    return sync_pb2.PairWindow(tenant=w.tenant, window_start=w.window_start, window_seconds=w.window_seconds,
                               items=w.items, pairs=[sync_pb2.ItemPair(a=a, b=b, users=n) for a, b, n in w.pairs])


def window_from_proto(m: sync_pb2.PairWindow) -> PairWindow:
    return PairWindow(tenant=m.tenant, window_start=m.window_start, window_seconds=m.window_seconds,
                      items=dict(m.items), pairs=[(p.a, p.b, p.users) for p in m.pairs])


def table_to_proto(t: NeighbourTable) -> sync_pb2.NeighbourTable:
    return sync_pb2.NeighbourTable(tenant=t.tenant, version=t.version, built_at=t.built_at, items=[
        sync_pb2.ItemNeighbours(item=item, neighbours=[n for n, _ in ns], similarity=[s for _, s in ns])
        for item, ns in t.items.items()])


def table_from_proto(m: sync_pb2.NeighbourTable) -> NeighbourTable:
    return NeighbourTable(tenant=m.tenant, version=m.version, built_at=m.built_at, items={
        e.item: list(zip(e.neighbours, e.similarity, strict=False)) for e in m.items})
