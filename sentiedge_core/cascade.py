"""Cascade arithmetic, shared by the engine and by the build that chooses its parameters.

Texts take the short or the long route by length. On each route the fast stage's
margin is temperature-scaled into a probability; where its confidence reaches the
route's threshold it answers. Otherwise the text escalates:
a logistic "stacker" fitted on validation data combines both stages' margins, so the
transformer corrects the fast stage rather than replacing it (long reviews keep the
fast stage's whole-text view). Both are fitted on validation data per route, the
stacker on exactly the texts the route escalates, so confidences stay calibrated. On the
short route, texts of at most ``thin_tokens`` tokens may have a stacker of their own
(``thin_stacker``, fitted on mixed-domain validation: mostly customers' words).
"""

from __future__ import annotations

import re

import numpy as np

from sentiedge_core.bundle import CascadeSpec, RouteSpec


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


def is_long(tokens: np.ndarray, spec: CascadeSpec) -> np.ndarray:
    return np.asarray(tokens) > spec.long_text_tokens


def route_values(tokens: np.ndarray, spec: CascadeSpec, pick) -> np.ndarray:
    long = is_long(tokens, spec)
    return np.where(long, pick(spec.long), pick(spec.short))


def fast_probability(margin: np.ndarray, temperature: float | np.ndarray) -> np.ndarray:
    return sigmoid(np.asarray(margin, dtype=np.float64) / temperature)


def fast_temperatures(tokens: np.ndarray, spec: CascadeSpec) -> np.ndarray:
    """The fast stage's temperature for each text: its length bucket's, else its route's."""
    temperature = route_values(tokens, spec, lambda r: r.temperature).astype(np.float64)
    if spec.length_buckets:
        tokens = np.asarray(tokens)
        index = np.searchsorted(np.asarray(spec.length_buckets), tokens, side="left")
        inside = index < len(spec.length_buckets)
        temperature = np.where(inside, np.asarray(spec.bucket_temperatures + [1.0])[index], temperature)
    return temperature


def route_fast_probability(fast_margin: np.ndarray, tokens: np.ndarray, spec: CascadeSpec) -> np.ndarray:
    return fast_probability(fast_margin, fast_temperatures(tokens, spec))


def escalate(fast_margin: np.ndarray, tokens: np.ndarray, spec: CascadeSpec,
             negated: np.ndarray | None = None) -> np.ndarray:
    p = route_fast_probability(fast_margin, tokens, spec)
    confidence = np.maximum(p, 1 - p)
    unsure = confidence < route_values(tokens, spec, lambda r: r.threshold)
    return unsure | thin(tokens, spec, negated)


def thin(tokens: np.ndarray, spec: CascadeSpec, negated: np.ndarray | None = None) -> np.ndarray:
    """Short-route texts whose evidence is too thin for the fast stage to answer alone: few
    tokens, or a negation it cannot scope (it sees words and word pairs, not "not ... at all")."""
    tokens = np.asarray(tokens)
    cue = np.zeros(tokens.shape, dtype=bool) if negated is None or not spec.negation_cues else np.asarray(negated)
    return few_tokens(tokens, spec) | (~is_long(tokens, spec) & cue)


def few_tokens(tokens: np.ndarray, spec: CascadeSpec) -> np.ndarray:
    """Short-route texts of at most ``thin_tokens`` tokens (none when the rule is off)."""
    tokens = np.asarray(tokens)
    return ~is_long(tokens, spec) & (tokens <= spec.thin_tokens)


def thin_stacked(tokens: np.ndarray, spec: CascadeSpec) -> np.ndarray:
    """Texts that the thin stacker answers when they escalate (none without one)."""
    return few_tokens(tokens, spec) if spec.thin_stacker else np.zeros(np.shape(tokens), dtype=bool)


def negation_pattern(cues: list[str]):
    """A regex finding any cue as a whole word (cues ending in "n't" match as suffixes)."""
    words = [re.escape(c) for c in cues if not c.startswith("n'")]
    suffixes = [re.escape(c) for c in cues if c.startswith("n'")]
    parts = ([r"\b(?:" + "|".join(words) + r")\b"] if words else []) + \
            ([r"(?:" + "|".join(suffixes) + r")\b"] if suffixes else [])
    return re.compile("|".join(parts), re.IGNORECASE) if parts else None


def stacker_probability(fast_margin: np.ndarray, transformer_margin: np.ndarray, stacker: list[float]) -> np.ndarray:
    w_fast, w_transformer, bias = stacker
    return sigmoid(w_fast * np.asarray(fast_margin, np.float64)
                   + w_transformer * np.asarray(transformer_margin, np.float64) + bias)


def stacked_probability(fast_margin: np.ndarray, transformer_margin: np.ndarray, route: RouteSpec) -> np.ndarray:
    return stacker_probability(fast_margin, transformer_margin, route.stacker)


def stacked(fast_margin: np.ndarray, transformer_margin: np.ndarray, tokens: np.ndarray,
            spec: CascadeSpec) -> np.ndarray:
    p = np.where(is_long(tokens, spec), stacked_probability(fast_margin, transformer_margin, spec.long),
                 stacked_probability(fast_margin, transformer_margin, spec.short))
    if spec.thin_stacker:
        thin_p = stacker_probability(fast_margin, transformer_margin, spec.thin_stacker)
        p = np.where(thin_stacked(tokens, spec), thin_p, p)
    return p


def answered(fast_margin: np.ndarray, transformer_margin: np.ndarray, exit_p: np.ndarray | None,
             tokens: np.ndarray, spec: CascadeSpec) -> np.ndarray:
    """P(positive) for escalated texts: an early exit's own calibrated answer where one
    answered (``exit_p`` not NaN), else the stacker over both stages' margins."""
    if exit_p is None:
        return stacked(fast_margin, transformer_margin, tokens, spec)
    exited = ~np.isnan(exit_p)
    p = stacked(fast_margin, np.where(exited, 0.0, transformer_margin), tokens, spec)
    return np.where(exited, exit_p, p)


def combine(fast_margin: np.ndarray, transformer_margin: np.ndarray, tokens: np.ndarray,
            spec: CascadeSpec, negated: np.ndarray | None = None,
            exit_p: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """P(positive) for every text and whether it escalated. ``transformer_margin`` may
    hold anything (e.g. NaN) where the text did not escalate; ``exit_p`` is what an early
    exit answered (NaN where none did; None: the bundle has no exits)."""
    escalated = escalate(fast_margin, tokens, spec, negated)
    safe_tm = np.where(escalated, transformer_margin, 0.0)
    safe_exit = None if exit_p is None else np.where(escalated, exit_p, np.nan)
    p = np.where(escalated, answered(fast_margin, safe_tm, safe_exit, tokens, spec),
                 route_fast_probability(fast_margin, tokens, spec))
    return p, escalated
