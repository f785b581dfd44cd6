"""One node's share of a tenant's topic mentions, per window, over every cohort of the tenant.

The one-node cap of a merged cell (control_plane.cohorts) holds per cell: a node alone in cells
of cohorts nobody else reports (a rogue can invent region and device values: they are the
clients' own) would count in full there. Topic trends and topic triggers read mentions, so
before anything reads them each node's mentions of a topic in a tenant's window are bounded
over the whole tenant:

* a node's weight for a topic is the larger of its ``all`` cell's mentions and the sum over its
  other cells (so neither a small ``all`` cell nor many small cells hide its claim);
* where other nodes report cells of the tenant in that window, a node's weight is at most
  ``share/(1−share)`` times the others' (or times ``floor``, the cohort minimum, where they
  mention the topic less), :func:`control_plane.influence.present_share_factors`; every cell
  of the node has that topic's mentions, negative mentions and sentiment sum scaled by the same
  factor (its shares kept, its weight cut);
* a node alone in the tenant's window (a one-edge fleet) is bounded by its cohort cap only.
"""

from __future__ import annotations

import math
from collections import defaultdict

from control_plane.influence import present_share_factors
from sentiedge_core.cohorts import ALL, Aggregate

Cells = dict[tuple[str, int, str], dict[str, Aggregate]]  # (tenant, window, cohort) -> node -> its part


def node_weights(cells: Cells) -> dict[tuple[str, int], dict[str, dict[str, float]]]:
    """(tenant, window) → node → topic → its weight (every node that reports the window, a node
    that mentions no topic with an empty map)."""
    everyone: dict[tuple[str, int], dict[str, dict[str, int]]] = defaultdict(dict)
    others: dict[tuple[str, int], dict[str, dict[str, int]]] = defaultdict(dict)
    for (tenant, window, cohort), parts in cells.items():
        for node, a in parts.items():
            into = (everyone if cohort == ALL else others)[(tenant, window)].setdefault(node, {})
            everyone[(tenant, window)].setdefault(node, {})
            for topic, n in a.aspect_texts.items():
                into[topic] = into.get(topic, 0) + n
    out: dict[tuple[str, int], dict[str, dict[str, float]]] = {}
    for key, nodes in everyone.items():
        rest = others.get(key, {})
        out[key] = {node: {t: float(max(all_cell.get(t, 0), rest.get(node, {}).get(t, 0)))
                           for t in {*all_cell, *rest.get(node, {})}}
                    for node, all_cell in nodes.items()}
    return out


def factors(cells: Cells, share: float, floor: float) -> dict[tuple[str, int, str], dict[str, float]]:
    """(tenant, window, node) → topic → the factor its mentions are scaled by (only those under 1)."""
    out: dict[tuple[str, int, str], dict[str, float]] = {}
    for (tenant, window), nodes in node_weights(cells).items():
        for topic in {t for weights in nodes.values() for t in weights}:
            found = present_share_factors({n: w.get(topic, 0.0) for n, w in nodes.items()}, share, floor)
            for node, f in found.items():
                if f < 1.0:
                    out.setdefault((tenant, window, node), {})[topic] = f
    return out


def scaled_topics(a: Aggregate, topic_factors: dict[str, float]) -> Aggregate:
    """``a`` with each listed topic's mentions (rounded down), negative mentions and sentiment
    sum scaled by its factor; a topic left with no mention leaves the cell."""
    texts, negative, sentiment = dict(a.aspect_texts), dict(a.aspect_negative), dict(a.aspect_sentiment)
    for topic, f in topic_factors.items():
        if topic not in texts:
            continue
        texts[topic] = int(math.floor(texts[topic] * f))
        if texts[topic] <= 0:
            for field in (texts, negative, sentiment):
                field.pop(topic, None)
            continue
        if topic in negative:
            negative[topic] = min(texts[topic], int(math.floor(negative[topic] * f)))
        if topic in sentiment:
            sentiment[topic] *= f
    return Aggregate(**{**{f: getattr(a, f) for f in a.__struct_fields__}, "aspect_texts": texts,
                        "aspect_negative": negative, "aspect_sentiment": sentiment})


def capped(cells: Cells, share: float, floor: float) -> Cells:
    """The cells with every node's topic mentions bounded over its tenant's window."""
    found = factors(cells, share, floor)
    if not found:
        return cells
    return {(tenant, window, cohort): {node: scaled_topics(a, found[(tenant, window, node)])
                                       if (tenant, window, node) in found else a for node, a in parts.items()}
            for (tenant, window, cohort), parts in cells.items()}
