"""PROTOTYPE: the collaborative signal, "often chosen with X", in-process only.

Not wired into Sync, the store or /v1/rank's request path yet: ``bench/ranking.py`` measures it.

* Edge side (:class:`PairCounter`): per window, each ``cohort_analytics`` user's items (the
  ones not disliked) form pairs; a user adds at most 1 to a pair per window and brings at
  most ``max_items`` items per window (the most recent), so one user's weight is bounded.
  :meth:`PairCounter.export` releases only pairs (and item counts) seen by at least ``k``
  distinct users: nothing that one or two people did leaves the node.
* Control plane (:func:`merge`): the nodes' exports add up, each node's count for a pair
  clipped to ``node_bound`` (the one-node bound: one node cannot make two items neighbours).
* Back to the edges (:func:`neighbour_table`): per item its ``top_n`` neighbours by cosine
  similarity of the user sets, c_ij / sqrt(n_i n_j), shrunk by c_ij / (c_ij + shrink).
* Ranking (:func:`scores`): a candidate scores the sum of its similarity to the user's recent
  items, normalized so the best candidate is 1, and names the item that contributed most.
"""

from __future__ import annotations

import math
from collections import defaultdict

Pair = tuple[str, str]


def _pair(a: str, b: str) -> Pair:
    return (a, b) if a < b else (b, a)


class PairCounter:
    """One edge's co-occurrence counts for the open windows (prototype: in memory)."""

    def __init__(self, *, window_s: float, max_items: int = 50, k: int = 3) -> None:
        self.window_s = window_s
        self.max_items = max_items
        self.k = k
        self._baskets: dict[tuple[int, str], dict[str, float]] = {}  # (window, subject) → item → last time

    def add(self, subject: str, item: str, at: float) -> None:
        basket = self._baskets.setdefault((int(at // self.window_s), subject), {})
        basket[item] = max(basket.get(item, at), at)

    def forget(self, subject: str) -> None:
        """Consent for cohort_analytics withdrawn, or the user deleted: their baskets go."""
        for key in [key for key in self._baskets if key[1] == subject]:
            del self._baskets[key]

    def export(self) -> tuple[dict[Pair, int], dict[str, int]]:
        """(pair → users, item → users) over the windows held, only counts of >= k users."""
        pairs: dict[Pair, int] = defaultdict(int)
        items: dict[str, int] = defaultdict(int)
        for basket in self._baskets.values():
            kept = sorted(basket, key=basket.__getitem__)[-self.max_items:]
            for x, a in enumerate(kept):
                items[a] += 1
                for b in kept[x + 1:]:
                    pairs[_pair(a, b)] += 1
        return ({p: n for p, n in pairs.items() if n >= self.k},
                {i: n for i, n in items.items() if n >= self.k})


def merge(exports: list[tuple[dict[Pair, int], dict[str, int]]], *, node_bound: int) -> tuple[dict[Pair, int],
                                                                                                 dict[str, int]]:
    """The control plane's sum of the nodes' exports, each node's count clipped to ``node_bound``."""
    pairs: dict[Pair, int] = defaultdict(int)
    items: dict[str, int] = defaultdict(int)
    for node_pairs, node_items in exports:
        for p, n in node_pairs.items():
            pairs[p] += min(n, node_bound)
        for i, n in node_items.items():
            items[i] += min(n, node_bound)
    return dict(pairs), dict(items)


def neighbour_table(pairs: dict[Pair, int], items: dict[str, int], *, top_n: int = 50,
                    shrink: float = 5.0) -> dict[str, list[tuple[str, float]]]:
    """Item → its ``top_n`` neighbours with their similarity, strongest first."""
    out: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for (a, b), c in pairs.items():
        na, nb = items.get(a, c), items.get(b, c)
        sim = c / math.sqrt(na * nb) * c / (c + shrink)
        out[a].append((b, sim))
        out[b].append((a, sim))
    return {i: sorted(ns, key=lambda t: -t[1])[:top_n] for i, ns in out.items()}


def scores(table: dict[str, list[tuple[str, float]]], recent: dict[str, float],
           candidates: list[str]) -> dict[str, tuple[float, str]]:
    """Candidate → (score in [0, 1], the recent item that contributed most); ``recent`` maps the
    user's recent items to a weight (e.g. 1, or decayed by age)."""
    wanted = set(candidates)
    total: dict[str, float] = defaultdict(float)
    best: dict[str, tuple[float, str]] = {}
    for item, weight in recent.items():
        for other, sim in table.get(item, ()):
            if other not in wanted:
                continue
            part = weight * sim
            total[other] += part
            if other not in best or part > best[other][0]:
                best[other] = (part, item)
    top = max(total.values(), default=0.0)
    if top <= 0:
        return {}
    return {c: (total[c] / top, best[c][1]) for c in total}
