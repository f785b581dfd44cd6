"""Calibration under shift: the short route's stackers fitted on movie and customer validation.

The transformer of 1.4 reads customers' words far better than the fast stage does, so on
them a stacker fitted mostly on movie snippets is *under*-confident (mean confidence 0.86 at
92% accuracy on the customer validation texts). Two changes, both fitted on validation:

* the escalated short-route texts of at most ``thin_tokens`` tokens — mostly customers'
  words, few movie snippets — get a stacker of their own (``CascadeSpec.thin_stacker``;
  with fewer than ``MIN_STACKER_TEXTS`` of them, none);
* in each of the two fits the customer texts may weigh ``customer_weight`` times as much,
  in total, as the movie texts beside them.

:func:`choose` picks among these fits and the previous one (1.2-1.4.0: one short-route
stacker, every text weighing the same) by the **cross-fitted** log-loss on the customer texts
(each text scored by stackers fitted without its fold), among the fits that do no harm in
domain: on each movie source's validation split, an ECE no higher than the previous fit's.

ECE on a few hundred texts is noisy: :func:`ece_noise_floor` gives the ECE that a perfectly
calibrated model with the same confidences would show on the same number of texts.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec
import numpy as np

from models.calibration import fit_logistic
from models.cascade_fit import MIN_STACKER_TEXTS, Margins, cascade_probability, mixed_domain_short_stacker
from models.metrics import MAX_ECE, expected_calibration_error
from sentiedge_core import cascade
from sentiedge_core.bundle import CascadeSpec

CUSTOMER_WEIGHTS = (0.0, 0.5, 1.0, 2.0)  # 0: one weight per text
FOLDS = 5
SEED = 20261205


def _escalated_short(m: Margins, spec: CascadeSpec) -> np.ndarray:
    return cascade.escalate(m.fast, m.tokens, spec, m.negated) & ~cascade.is_long(m.tokens, spec)


def _fit(parts: list[tuple[Margins, np.ndarray]], customer_weight: float) -> list[float]:
    """One stacker on the selected texts of (movie, customers); customers' total weight is
    ``customer_weight`` times the movie texts' (0: plain, one weight per text)."""
    (movie, m_sel), (cust, c_sel) = parts
    x = np.vstack([np.column_stack([m.fast[s], m.transformer[s]]) for m, s in parts])
    y = np.concatenate([m.y[s] for m, s in parts])
    n_movie, n_cust = int(m_sel.sum()), int(c_sel.sum())
    per_customer = customer_weight * n_movie / n_cust if customer_weight > 0 and n_cust and n_movie else 1.0
    weights = np.concatenate([np.ones(n_movie), np.full(n_cust, per_customer)])
    return fit_logistic(x, y, sample_weight=weights)


def fit_stackers(spec: CascadeSpec, movie: Margins, customers: Margins, customer_weight: float) -> CascadeSpec:
    """``spec`` with the short route's stacker and the thin stacker fitted on both domains."""
    thin = msgspec.structs.replace(spec, thin_stacker=[0.0, 0.0, 0.0])  # routing only: which texts it answers
    split = [[(m, _escalated_short(m, spec) & (cascade.thin_stacked(m.tokens, thin) == answered_by_thin))
              for m in (movie, customers)] for answered_by_thin in (False, True)]
    labels = np.concatenate([m.y[s] for m, s in split[1]])
    if labels.size < MIN_STACKER_TEXTS or len(set(labels.tolist())) < 2:  # too few: one stacker for the route
        whole = [(m, _escalated_short(m, spec)) for m in (movie, customers)]
        short = msgspec.structs.replace(spec.short, stacker=_fit(whole, customer_weight))
        return msgspec.structs.replace(spec, short=short, thin_stacker=[])
    short, thin_stacker = (_fit(parts, customer_weight) for parts in split)
    return msgspec.structs.replace(spec, short=msgspec.structs.replace(spec.short, stacker=short),
                                   thin_stacker=thin_stacker)


def crossfitted(fit: Callable[[Margins], CascadeSpec], customers: Margins, folds: int = FOLDS,
                seed: int = SEED) -> np.ndarray:
    """P(positive) for every customer text from ``fit`` (customer texts -> cascade) made
    without that text's fold."""
    order = np.random.default_rng(seed).permutation(customers.y.size)
    p = np.zeros(customers.y.size)
    for fold in np.array_split(order, folds):
        held = np.zeros(customers.y.size, dtype=bool)
        held[fold] = True
        p[held] = cascade_probability(customers.where(held), fit(customers.where(~held)))[0]
    return p


def log_loss(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(np.asarray(p, np.float64), 1e-7, 1 - 1e-7)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def previous(spec: CascadeSpec, movie: Margins, customers: Margins) -> CascadeSpec:
    """1.2-1.4.0's fit: one short-route stacker on both domains, one weight per text."""
    return msgspec.structs.replace(spec, short=msgspec.structs.replace(
        spec.short, stacker=mixed_domain_short_stacker(spec, movie, customers)), thin_stacker=[])


def source_eces(spec: CascadeSpec, movie: Margins) -> dict[str, float]:
    return {source: expected_calibration_error(cascade_probability(part, spec)[0], part.y)
            for source in sorted(set(movie.sources.tolist())) for part in [movie.where(movie.sources == source)]}


def choose(spec: CascadeSpec, movie: Margins, customers: Margins, max_ece: float = MAX_ECE,
           weights: tuple[float, ...] = CUSTOMER_WEIGHTS, keep: str | None = None) -> tuple[CascadeSpec, dict]:
    """The fit with the lowest cross-fitted customer log-loss that does no harm in domain: on
    each movie source's validation its ECE is at most the previous fit's (and ``max_ece``).
    The previous fit is a candidate too, so one always qualifies. ``keep`` names the fit to
    take regardless (a release that must keep its base's choice), still reporting every trial."""
    old = previous(spec, movie, customers)
    bound = {source: min(max_ece, ece) for source, ece in source_eces(old, movie).items()}
    candidates = [("previous (one short-route stacker, unweighted)", None, old,
                   crossfitted(lambda c: previous(spec, movie, c), customers))]
    candidates += [(f"thin stacker, customer weight {w:g}", w, fit_stackers(spec, movie, customers, w),
                    crossfitted(lambda c, w=w: fit_stackers(spec, movie, c, w), customers)) for w in weights]
    trials = []
    for name, weight, fitted, p_cv in candidates:
        eces = source_eces(fitted, movie)
        trials.append({"fit": name, "customer_weight": weight,
                       "customer_crossfitted_log_loss": round(log_loss(p_cv, customers.y), 4),
                       "customer_crossfitted_ece": round(expected_calibration_error(p_cv, customers.y), 4),
                       "movie_validation_ece": {k: round(v, 4) for k, v in eces.items()},
                       "allowed": all(eces[k] <= bound[k] + 1e-12 for k in bound)})
    if keep is not None:
        kept = [i for i, t in enumerate(trials) if t["fit"] == keep]
        if not kept:
            raise ValueError(f"no calibration-under-shift fit named {keep!r}")
        best = kept[0]
    else:
        best = min((i for i, t in enumerate(trials) if t["allowed"]),
                   key=lambda i: trials[i]["customer_crossfitted_log_loss"])
    return candidates[best][2], {"chosen": trials[best]["fit"], "trials": trials, "crossfitted_p": candidates[best][3]}


def ece_noise_floor(p: np.ndarray, draws: int = 400, seed: int = SEED) -> dict:
    """The ECE a perfectly calibrated model with these confidences would show on this many
    texts (labels drawn from its own probabilities): mean and 90th percentile."""
    rng = np.random.default_rng(seed)
    p = np.asarray(p, np.float64)
    eces = [expected_calibration_error(p, (rng.random(p.size) < p).astype(int)) for _ in range(draws)]
    return {"mean": round(float(np.mean(eces)), 4), "p90": round(float(np.quantile(eces, 0.9)), 4)}


def confidence_gap(p: np.ndarray, y: np.ndarray) -> float:
    """Mean confidence minus accuracy: < 0 under-confident, > 0 over-confident."""
    p = np.asarray(p, np.float64)
    return round(float(np.maximum(p, 1 - p).mean() - ((p >= 0.5) == np.asarray(y)).mean()), 4)
