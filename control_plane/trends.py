"""Topic trends: each topic's merged sentiment over recent windows, and a rising negative share
flagged by a stated statistical rule.

The numbers are each node's ``all`` cell of the tenant (every consenting user of the tenant at
that node, once; ``CohortMerge.everyone``: cells under the minimum size left out, each node's
share of the cell bounded, and its share of each topic's mentions bounded over the whole tenant,
control_plane.topic_share), summed per tenant, topic and window. Cohorts a node makes up do not
count here; windows are the control plane's (``CP_COHORT_WINDOW_MINUTES``; cells of another
length or alignment were refused on intake). The rule, one-sided two-proportion z-test against
the trailing baseline:

* the *recent* period is the last ``recent_windows`` windows up to the latest window the tenant
  has data for that has closed by the control plane's clock; the *baseline* is the
  ``baseline_windows`` windows before it;
* x₁ of n₁ recent mentions of the topic were negative, x₂ of n₂ in the baseline; with the pooled
  share p̂ = (x₁+x₂)/(n₁+n₂), z = (x₁/n₁ − x₂/n₂) / √(p̂(1−p̂)(1/n₁ + 1/n₂)) and p = 1 − Φ(z);
* it is judged only when n₁ and n₂ are both at least ``min_mentions`` (below, a note says so);
* the trend *fires* when p < ``alpha``, and once fired it *clears* only when p ≥ 10·``alpha`` or
  the counts fall under the minimum (hysteresis: it does not flap around alpha);
* **no single node flips a trend**: where several nodes report the tenant, a change (firing or
  clearing) must also follow from the counts with any one node left out, wherever what is left
  is enough to judge; else the trend holds its state and says which node's counts disagree.
  So a node cannot fire a trend the other nodes' counts do not show, nor clear one they still
  show; it can hold one in its state (dilute a rise), and where the counts without some node
  would flip a trend that holds, its note says so and names that node. A node whose counts
  alone are enough to judge (a one-edge fleet, or the only node mentioning the topic that often)
  still decides alone: that is the single edge's case, bounded by its cohort cap, and it is the
  residual risk (docs/operations.md).

Mentions are counted per text, at most ``ASPECT_TEXTS_PER_USER`` per user, topic and window
(the edges' clip), so one user cannot make a trend; texts of one user are not independent,
which the clip and the minimum count temper but do not remove: the rule is a screen for
people to look at, not a proof. A fired or cleared trend is notified once (the store's
compare-and-set: one replica wins) through the tenant's webhook.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import msgspec

from control_plane.webhooks import notice
from sentiedge_core.cohorts import Aggregate

CLEAR_FACTOR = 10.0  # a fired trend clears at p >= CLEAR_FACTOR * alpha


class TrendRule(NamedTuple):
    recent_windows: int = 2
    baseline_windows: int = 12
    min_mentions: int = 20
    alpha: float = 0.01

    def words(self) -> str:
        return (f"one-sided two-proportion z-test: the negative share of the last {self.recent_windows} windows "
                f"against the {self.baseline_windows} windows before them; judged with at least "
                f"{self.min_mentions} mentions on each side; fires at p < {self.alpha:g}, clears at "
                f"p >= {CLEAR_FACTOR * self.alpha:g}")


class Window(msgspec.Struct, kw_only=True):
    window_start: int
    texts: int = 0
    negative: int = 0
    sentiment_sum: float = 0.0
    users: int = 0


class Trend(msgspec.Struct, kw_only=True):
    tenant: str
    topic: str
    windows: list[Window]
    recent_texts: int = 0
    recent_negative: int = 0
    baseline_texts: int = 0
    baseline_negative: int = 0
    recent_share: float = 0.0
    baseline_share: float = 0.0
    z: float = 0.0
    p_value: float = 1.0
    rising: bool = False
    firing: bool = False
    note: str = ""
    mean_sentiment: float = 0.0


def one_sided_two_proportion(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float]:
    """(z, p) of H₁: share₁ > share₂, with the pooled standard error; (0, 1) without data."""
    if n1 <= 0 or n2 <= 0:
        return 0.0, 1.0
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:  # every mention negative, or none: the shares are equal
        return 0.0, 0.5
    z = (x1 / n1 - x2 / n2) / se
    return z, 0.5 * math.erfc(z / math.sqrt(2))


Cells = dict[tuple[str, int], dict[str, Aggregate]]  # (tenant, window) -> node -> its all cell


def windows_by_topic(cells: Cells, without: str = "") -> dict[tuple[str, str], dict[int, Window]]:
    """Per (tenant, topic), its numbers per window summed over the nodes (but ``without``)."""
    out: dict[tuple[str, str], dict[int, Window]] = {}
    for (tenant, start), parts in cells.items():
        for node, c in parts.items():
            if node == without:
                continue
            for topic, n in c.aspect_texts.items():
                w = out.setdefault((tenant, topic), {}).setdefault(start, Window(window_start=start))
                w.texts += n
                w.negative += c.aspect_negative.get(topic, 0)
                w.sentiment_sum += c.aspect_sentiment.get(topic, 0.0)
                w.users += c.users
    return out


def judge(tenant: str, topic: str, windows: dict[int, Window], latest: int, window_s: int, rule: TrendRule,
          firing: bool) -> Trend:
    """The trend of one topic: its windows over both periods, the test, and its state."""
    recent_from = latest - (rule.recent_windows - 1) * window_s
    baseline_from = recent_from - rule.baseline_windows * window_s
    shown = sorted((w for s, w in windows.items() if baseline_from <= s <= latest), key=lambda w: w.window_start)
    recent = [w for w in shown if w.window_start >= recent_from]
    baseline = [w for w in shown if w.window_start < recent_from]
    n1, x1 = sum(w.texts for w in recent), sum(w.negative for w in recent)
    n2, x2 = sum(w.texts for w in baseline), sum(w.negative for w in baseline)
    z, p = one_sided_two_proportion(x1, n1, x2, n2)
    enough = n1 >= rule.min_mentions and n2 >= rule.min_mentions
    rising = enough and p < rule.alpha
    texts = sum(w.texts for w in shown)
    return Trend(
        tenant=tenant, topic=topic, windows=shown, recent_texts=n1, recent_negative=x1, baseline_texts=n2,
        baseline_negative=x2, recent_share=x1 / n1 if n1 else 0.0, baseline_share=x2 / n2 if n2 else 0.0, z=z,
        p_value=p, rising=rising, firing=enough and (p < CLEAR_FACTOR * rule.alpha if firing else rising),
        note="" if enough else (f"too few mentions to judge: {n1} recent, {n2} baseline (at least "
                                f"{rule.min_mentions} each)"),
        mean_sentiment=sum(w.sentiment_sum for w in shown) / texts if texts else 0.0)


class Trends:
    def __init__(self, store, cohorts, topics, rule: TrendRule) -> None:
        self.store = store
        self.cohorts = cohorts  # CohortMerge: the merged cells
        self.topics = topics  # TopicCatalog: which topics each tenant has
        self.rule = rule
        self.last: list[Trend] = []  # the latest evaluation's trends (what the metrics show)

    def report(self, now: float, tenant: str | None = None, topic: str = "") -> list[Trend]:
        """Every topic of every tenant (or of one), judged against its notified state."""
        window_s = int(self.cohorts.window_s)
        cells = {k: parts for k, parts in self.cohorts.everyone(now, tenant).items() if k[1] + window_s <= now}
        states = self.store.trend_states()
        out = []
        for topic_set in self.topics.sets():
            if tenant is not None and topic_set.tenant != tenant:
                continue
            t = topic_set.tenant
            mine = {k: parts for k, parts in cells.items() if k[0] == t}
            by_topic = windows_by_topic(mine)
            nodes = sorted({node for parts in mine.values() for node in parts})
            without = {node: windows_by_topic(mine, node) for node in nodes} if len(nodes) > 1 else {}
            latest = max((w for _, w in mine), default=0)
            for name in sorted(x.name for x in topic_set.topics):
                if topic and name != topic:
                    continue
                state = states.get((t, name), False)
                trend = judge(t, name, by_topic.get((t, name), {}), latest, window_s, self.rule, state)
                alternatives = {node: judge(t, name, rest.get((t, name), {}), latest, window_s, self.rule, state)
                                for node, rest in without.items()}
                trend = held(trend, state, alternatives) if trend.firing != state else \
                    contested(trend, state, alternatives)
                out.append(trend)
        return out

    def evaluate(self, now: float) -> list[Trend]:
        """Judge every topic; each whose state changes is stored and notified (once). Returns those."""
        states = self.store.trend_states()
        changed = []
        self.last = self.report(now)
        for trend in self.last:
            if trend.firing == states.get((trend.tenant, trend.topic), False):
                continue
            kind = "trend.fired" if trend.firing else "trend.cleared"
            if self.store.flip_trend(trend.tenant, trend.topic, trend.firing, now,
                                     notice(kind, trend.tenant, _payload(trend, self.rule), now)):
                changed.append(trend)
        return changed


def held(trend: Trend, state: bool, without: dict[str, Trend]) -> Trend:
    """``trend``, whose counts flip its state, held where the counts without some node are
    enough to judge and do not flip it: no single node flips a trend."""
    for node, rest in without.items():
        if not rest.note and rest.firing == state:
            return msgspec.structs.replace(trend, firing=state, note=(
                f"held {'firing' if state else 'quiet'}: without node {node} the counts do not "
                f"{'clear' if state else 'fire'} it (no single node flips a trend)"))
    return trend


def contested(trend: Trend, state: bool, without: dict[str, Trend]) -> Trend:
    """``trend``, whose counts keep its state, with a note where the counts without some node
    would flip it: one node may be holding it (a rise it dilutes stays quiet), and the note
    names that node for an operator to look at."""
    if trend.note:
        return trend
    for node, rest in without.items():
        if not rest.note and rest.firing != state:
            return msgspec.structs.replace(trend, note=(
                f"{'firing' if state else 'quiet'}, but without node {node} the counts "
                f"{'clear' if state else 'fire'} it (one node may be holding it)"))
    return trend


def _payload(t: Trend, rule: TrendRule) -> dict:
    return {"topic": t.topic, "recent_share": round(t.recent_share, 4), "baseline_share": round(t.baseline_share, 4),
            "recent_mentions": t.recent_texts, "baseline_mentions": t.baseline_texts, "z": round(t.z, 3),
            "p_value": t.p_value, "mean_sentiment": round(t.mean_sentiment, 4),
            "window_start": t.windows[-1].window_start if t.windows else 0, "rule": rule.words()}
