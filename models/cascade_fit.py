"""Choosing the cascade's parameters on the validation split, and scoring them on test.

Everything here works on precomputed logit margins, so trying a threshold costs
nothing: the expensive part (running the transformer) happens once per split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.calibration import fit_logistic, fit_temperature
from models.metrics import report
from sentiedge_core import cascade
from sentiedge_core.bundle import CascadeSpec, RouteSpec

# One point of accuracy is worth escalating 50 points more of the traffic: the
# transformer costs ~50x the fast stage, so thresholds stop where gains flatten.
ESCALATION_COST = 0.02
THRESHOLDS = np.round(np.arange(0.50, 1.0001, 0.01), 2)
# Fewer escalated validation texts than this and the stacker is fitted on the whole route.
MIN_STACKER_TEXTS = 60


@dataclass
class Margins:
    """Per-text margins of both stages on one split, plus labels and sources."""

    fast: np.ndarray
    tokens: np.ndarray
    transformer: np.ndarray
    y: np.ndarray
    sources: np.ndarray
    negated: np.ndarray | None = None  # which texts hold a negation cue (thin evidence)
    exit_p: np.ndarray | None = None  # what an early exit answered (NaN: none did; None: no exits)

    def where(self, mask: np.ndarray) -> Margins:
        return Margins(self.fast[mask], self.tokens[mask], self.transformer[mask], self.y[mask], self.sources[mask],
                       None if self.negated is None else self.negated[mask],
                       None if self.exit_p is None else self.exit_p[mask])


# Thin evidence (a design constant, not tuned): on the short route a text of at most
# THIN_TOKENS fast-tokenizer tokens (about seven words) or with a negation cue always escalates.
THIN_TOKENS = 10
# Length buckets of the fast stage's calibration (fast-tokenizer tokens; a design constant):
# its temperature falls from ~6.6 for ten tokens to ~0.7 for whole reviews (validation).
LENGTH_BUCKETS = (10, 25, 60, 126, 400, 1_000_000)
MIN_BUCKET_TEXTS = 30  # a sparser bucket takes the temperature fitted on every text
NEGATION_CUES = ["not", "no", "never", "nothing", "nobody", "none", "neither", "nor", "without", "hardly",
                 "barely", "n't", "cannot"]


def negated(texts: list[str]) -> np.ndarray:
    pattern = cascade.negation_pattern(NEGATION_CUES)
    return np.asarray([pattern.search(t) is not None for t in texts], dtype=bool)


def fit_route(m: Margins, escalation_cost: float = ESCALATION_COST,
              forced: np.ndarray | None = None, temperatures: np.ndarray | None = None) -> tuple[RouteSpec, dict]:
    """Temperature of the fast stage on this route, then for every candidate threshold a
    stacker fitted on the texts that threshold escalates (and the ``forced`` ones: thin
    evidence); keeps the threshold that best trades validation accuracy against escalation rate."""
    forced = np.zeros(m.y.size, dtype=bool) if forced is None else forced
    temperature = fit_temperature(m.fast, m.y)
    # Per-text temperatures (length buckets) when given; the route's own is kept for texts past them.
    p_fast = cascade.fast_probability(m.fast, temperature if temperatures is None else temperatures)
    confidence = np.maximum(p_fast, 1 - p_fast)
    features = np.column_stack([m.fast, m.transformer])
    whole_route = fit_logistic(features, m.y)
    best = None
    for threshold in THRESHOLDS:
        escalated = (confidence < threshold) | forced
        enough = escalated.sum() >= MIN_STACKER_TEXTS and len(set(m.y[escalated].tolist())) == 2
        stacker = fit_logistic(features[escalated], m.y[escalated]) if enough else whole_route
        route = RouteSpec(temperature=temperature, threshold=float(threshold), stacker=stacker)
        p = np.where(escalated, cascade.stacked_probability(m.fast, m.transformer, route), p_fast)
        accuracy = float(((p >= 0.5) == m.y).mean())
        utility = accuracy - escalation_cost * float(escalated.mean())
        if best is None or utility > best[0] + 1e-12:
            best = (utility, route, accuracy, float(escalated.mean()))
    _, route, accuracy, rate = best
    return route, {"validation_accuracy": round(accuracy, 4), "validation_escalation_rate": round(rate, 4),
                   "n": int(m.y.size)}


def fit_length_buckets(m: Margins) -> list[float]:
    """The fast stage's temperature in each of LENGTH_BUCKETS, fitted on validation."""
    temperatures, low, overall = [], 0, fit_temperature(m.fast, m.y)
    for high in LENGTH_BUCKETS:
        inside = (m.tokens > low) & (m.tokens <= high)
        enough = inside.sum() >= MIN_BUCKET_TEXTS and len(set(m.y[inside].tolist())) == 2
        temperatures.append(fit_temperature(m.fast[inside], m.y[inside]) if enough else overall)
        low = high
    return temperatures


def concatenate(*parts: Margins) -> Margins:
    """One set of margins from several (every part with or without negation cues and exits alike)."""
    def joined(name: str):
        values = [getattr(m, name) for m in parts]
        return None if any(v is None for v in values) else np.concatenate(values)
    return Margins(*(np.concatenate([getattr(m, f) for m in parts]) for f in ("fast", "tokens", "transformer", "y")),
                   np.concatenate([np.asarray(m.sources) for m in parts]), joined("negated"), joined("exit_p"))


def fit_cascade(validation: Margins, long_text_tokens: int, escalation_cost: float = ESCALATION_COST,
                short_extra: Margins | None = None) -> tuple[CascadeSpec, dict]:
    """``short_extra``: more validation texts (e.g. rated tweets, product and news sentences) the short
    route is fitted on beside ``validation``'s short texts, so its threshold is chosen where
    the fast stage is weak too, not on movie snippets alone."""
    long = validation.tokens > long_text_tokens
    rule = CascadeSpec(long_text_tokens=long_text_tokens, short=RouteSpec(temperature=1, threshold=0, stacker=[]),
                       long=RouteSpec(temperature=1, threshold=0, stacker=[]), thin_tokens=THIN_TOKENS,
                       negation_cues=NEGATION_CUES if validation.negated is not None else [],
                       length_buckets=list(LENGTH_BUCKETS), bucket_temperatures=fit_length_buckets(validation))
    temperatures = cascade.fast_temperatures(validation.tokens, rule)
    short_part = validation.where(~long)
    if short_extra is not None:
        short_part = concatenate(short_part, short_extra.where(short_extra.tokens <= long_text_tokens))
    short_temperatures = cascade.fast_temperatures(short_part.tokens, rule)
    short_spec, short_info = fit_route(short_part, escalation_cost,
                                       cascade.thin(short_part.tokens, rule, short_part.negated), short_temperatures)
    long_spec, long_info = fit_route(validation.where(long), escalation_cost, temperatures=temperatures[long])
    spec = CascadeSpec(long_text_tokens=long_text_tokens, short=short_spec, long=long_spec,
                       thin_tokens=rule.thin_tokens, negation_cues=rule.negation_cues,
                       length_buckets=rule.length_buckets, bucket_temperatures=rule.bucket_temperatures)
    return spec, {"short": short_info, "long": long_info}


def mixed_domain_short_stacker(spec: CascadeSpec, *parts: Margins) -> list[float]:
    """The short route's stacker fitted on every part's texts that the route escalates (movie
    validation and customer validation): calibrated for both domains, not only for movies."""
    features, labels = [], []
    for m in parts:
        escalated = cascade.escalate(m.fast, m.tokens, spec, m.negated) & ~cascade.is_long(m.tokens, spec)
        features.append(np.column_stack([m.fast[escalated], m.transformer[escalated]]))
        labels.append(m.y[escalated])
    return fit_logistic(np.vstack(features), np.concatenate(labels))


def cascade_probability(m: Margins, spec: CascadeSpec) -> tuple[np.ndarray, np.ndarray]:
    return cascade.combine(m.fast, m.transformer, m.tokens, spec, m.negated, m.exit_p)


def evaluate(m: Margins, spec: CascadeSpec, transformer_temperature: float) -> dict:
    """Metrics per source for each stage alone and for the cascade."""
    out = {}
    for source in sorted(set(m.sources.tolist())):
        part = m.where(m.sources == source)
        p_cascade, escalated = cascade_probability(part, spec)
        out[source] = {
            "fast": report(cascade.route_fast_probability(part.fast, part.tokens, spec), part.y),
            "transformer": report(cascade.fast_probability(part.transformer, transformer_temperature), part.y),
            "cascade": report(p_cascade, part.y) | {"escalation_rate": round(float(escalated.mean()), 4)},
        }
    return out
