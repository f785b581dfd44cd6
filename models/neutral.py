"""The neutral class: a three-way head over the transformer's pooled output (``train`` extra).

    python -m models.neutral BUNDLE --out DIR [--version V] [--validate-only] [--threads 2]

"where is my order?" and "it arrived today" are neither positive nor negative; a two-label model
must call them one or the other. This fits, beside the binary head, a linear head with three rows
(negative, neutral, positive) over the same pooled encoder output, on the VADER training split
(:mod:`models.vader_gold`: tweets, Amazon and NYT sentences, each the mean of 20+ raters; neutral
is a mean within [-1, 1]) and the customer training texts (all clearly positive or negative,
repeated ``CUSTOMER_REPEATS`` times: VADER's middle band holds many mild opinions, and a head
trained on it alone called 18% of the customer validation texts neutral). Texts the fast stage
answers are never neutral. A text an early exit answers is judged by that exit's own three-row
head over the hidden states the exit reads (bundle 1.7+; ``--no-exit-heads``: only texts that run
through the whole encoder are judged, 1.6.0's rule, which left most neutral texts to the exits'
positive or negative answer).

Chosen on validation only, as served (the fast stage's and the exits' routing applied): the L2
strength and a bias on the neutral row, maximising the mean of the three VADER domains' three-way
macro-F1, among the candidates that call at most ``MAX_CUSTOMER_NEUTRAL`` of the customer
validation texts neutral. The neutral head never changes ``score``. Its probabilities are then
temperature-scaled on validation (one temperature, NLL). The head is written as
``transformer-neutral.json``, the manifest names it and lists the label set; then, once, the
VADER and movie test splits and the everyday sets are scored, the drift reference is measured
with every label, and golden examples are kept (the old ones the bundle still gets right, and
neutral ones from ``models/everyday_neutral.csv``). Pooled features are cached under
``build/neutral-features/`` by the bundle's manifest digest.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import numpy as np

from models import vader_gold
from models.evaluate import three_way_report
from sentiedge_core.bundle import MANIFEST, Golden, encode_manifest, read_manifest, sha256_file
from sentiedge_core.inference import NEUTRAL, SentimentModel
from sentiedge_core.stages import NEUTRAL_LABELS, NeutralHead

NEUTRAL_FILE = "transformer-neutral.json"
EVERYDAY = Path(__file__).resolve().parents[1] / "tests" / "data" / "everyday_short.csv"
EVERYDAY_NEUTRAL = Path(__file__).resolve().parent / "everyday_neutral.csv"
GOLDEN_MIN = 0.6  # as models.release: a golden example is one the bundle gets right with this confidence
NEUTRAL_GOLDEN_MIN = 0.5  # three labels: 0.5 is well past a three-way coin flip
MAX_NEUTRAL_GOLDEN = 10
MAX_CUSTOMER_NEUTRAL = 0.05  # of models/customer_validation.csv (all clearly positive or negative)
CUSTOMER_TRAIN = Path(__file__).resolve().parent / "customer_train.csv"
CUSTOMER_REPEATS = 6  # the customer training texts (all polar) beside the VADER training split, repeated
CUSTOMER_VALIDATION = Path(__file__).resolve().parent / "customer_validation.csv"
CACHE = Path(__file__).resolve().parents[1] / "build" / "neutral-features"
C_GRID = (0.003, 0.01, 0.03, 0.1)
BIAS_GRID = tuple(np.round(np.arange(-1.5, 1.51, 0.125), 3))


@dataclass
class Features:
    texts: list[str]
    pooled: np.ndarray  # [n, d], every text run to the end
    served: np.ndarray  # [n] bool: the text reaches the end of the encoder as served
    y: np.ndarray  # [n] 0 negative, 1 neutral, 2 positive
    domain: np.ndarray  # [n] str
    lower: list[np.ndarray] = field(default_factory=list)  # per early exit: its pooled hidden states [n, w]
    exit_layer: np.ndarray | None = None  # [n] the layer of the exit that answers the text as served, 0 = none

    def at_exit(self, layer: int) -> np.ndarray:
        """Texts the exit after ``layer`` answers as served (escalated by the fast stage, then fired)."""
        if self.exit_layer is None:
            return np.zeros(self.y.size, dtype=bool)
        return self.exit_layer == layer

    def rows(self, index: np.ndarray) -> Features:
        return Features([self.texts[i] for i in index], self.pooled[index], self.served[index], self.y[index],
                        self.domain[index], [f[index] for f in self.lower],
                        None if self.exit_layer is None else self.exit_layer[index])


def joined(*parts: Features) -> Features:
    return Features([t for p in parts for t in p.texts], np.vstack([p.pooled for p in parts]),
                    np.concatenate([p.served for p in parts]), np.concatenate([p.y for p in parts]),
                    np.concatenate([p.domain for p in parts]),
                    [np.vstack([p.lower[i] for p in parts]) for i in range(len(parts[0].lower))],
                    np.concatenate([p.exit_layer for p in parts]))


def features(model: SentimentModel, texts: list[str], y: np.ndarray, domain: list[str], desc: str,
             cache: Path | None = None) -> Features:
    """Every text's pooled output (run to the end) and whether it reaches the end as served; kept
    in ``cache`` (an .npz named by the bundle's manifest digest) so a second fit reads them back."""
    from tqdm import tqdm

    exits = len(model.transformer_stage.exits)
    if cache is not None and cache.exists():
        held = np.load(cache)
        if len(held["served"]) == len(texts) and "exit_layer" in held:
            return Features(texts, held["pooled"], held["served"], y, np.asarray(domain),
                            [held[f"lower{i}"] for i in range(exits)], held["exit_layer"])
    pooled, served, exit_layer, lower = [], [], [], [[] for _ in range(exits)]
    for start in tqdm(range(0, len(texts), 32), desc=desc, unit="batch", file=sys.stderr):
        chunk = texts[start : start + 32]
        escalate = np.asarray([v.escalate for v in model.fast(chunk)])
        for text, escalated in zip(chunk, escalate, strict=True):  # one text per run, as served
            run = model.transformer_stage.forward([text], early=False, keep_features=True)
            pooled.append(run.pooled[0])
            served.append(bool(escalated and run.exit_layer[0] == 0))
            exit_layer.append(int(run.exit_layer[0]) if escalated else 0)
            for i in range(exits):
                lower[i].append(run.exit_features[i][0])
    f = Features(texts, np.asarray(pooled, np.float64), np.asarray(served, bool), y, np.asarray(domain),
                 [np.asarray(v, np.float64) for v in lower], np.asarray(exit_layer, np.int64))
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, pooled=f.pooled, served=f.served, exit_layer=f.exit_layer,
                 **{f"lower{i}": v for i, v in enumerate(f.lower)})
    return f


def vader_features(model: SentimentModel, items: list[vader_gold.Rated], desc: str, cache: Path | None) -> Features:
    texts, y = vader_gold.three_way(items)
    return features(model, texts, y, [it.domain for it in items], desc, cache)


def fit(x: np.ndarray, y: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.linear_model import LogisticRegression

    mean, std = x.mean(0), x.std(0) + 1e-6
    lr = LogisticRegression(C=c, max_iter=2000, class_weight="balanced")
    lr.fit((x - mean) / std, y)
    weights = lr.coef_ / std  # folded: the head reads the raw vector
    bias = lr.intercept_ - weights @ mean
    return weights, bias


@dataclass
class Heads:
    """The neutral head over the pooled output and, per early exit (by layer), one over the
    exit's pooled hidden states for the texts that exit answers."""

    final: NeutralHead
    exits: dict[int, NeutralHead] = field(default_factory=dict)

    def neutral(self, f: Features, layers: list[int]) -> np.ndarray:
        """Which texts of ``f`` are served neutral (``layers``: the bundle's exits' layers, in order)."""
        out = f.served & self.final.is_neutral(f.pooled)
        for index, layer in enumerate(layers):
            if layer in self.exits:
                out |= f.at_exit(layer) & self.exits[layer].is_neutral(f.lower[index])
        return out


def served_predictions(heads: Heads, f: Features, binary_positive: np.ndarray, layers: list[int]) -> np.ndarray:
    """Three-way labels as the edge serves them: the binary answer, or neutral where a head says so."""
    return np.where(heads.neutral(f, layers), 1, np.where(binary_positive, 2, 0))


def macro_f1_by_domain(pred: np.ndarray, f: Features) -> dict[str, dict]:
    return {d: three_way_report(pred[f.domain == d], f.y[f.domain == d]) for d in vader_gold.DOMAINS}


def fit_temperature3(logits: np.ndarray, y: np.ndarray) -> float:
    """One temperature for a softmax (golden-section on log T, NLL)."""
    lo, hi, ratio = np.log(0.05), np.log(20.0), (np.sqrt(5) - 1) / 2

    def nll(log_t: float) -> float:
        z = logits / np.exp(log_t)
        z = z - z.max(1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(1, keepdims=True))
        return float(-logp[np.arange(len(y)), y].mean())

    for _ in range(80):
        a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        lo, hi = (lo, b) if nll(a) < nll(b) else (a, hi)
    return float(np.exp((lo + hi) / 2))


def ece3(probs: np.ndarray, y: np.ndarray, bins: int = 15) -> float:
    confidence, pred = probs.max(1), probs.argmax(1)
    edges = np.linspace(1 / 3, 1.0, bins + 1)
    index = np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, bins - 1)
    return float(sum((index == b).mean() * abs((pred == y)[index == b].mean() - confidence[index == b].mean())
                     for b in range(bins) if (index == b).any()))


def choose(train: Features, validation: Features, positive: np.ndarray, customers: Features,
           layers: list[int], exit_heads: bool = True) -> tuple[Heads, dict]:
    """``positive``: whether the served cascade calls each validation text positive. A candidate
    may call at most ``MAX_CUSTOMER_NEUTRAL`` of the customer validation texts (every one a clear
    opinion) neutral: a neutral class must not swallow what customers plainly say. The head over
    the pooled output is chosen first; then, with ``exit_heads``, each early exit's in turn (given
    the heads chosen before it), kept only where it raises the validation score."""
    trials: list[dict] = []

    def judged(heads: Heads) -> tuple[float, dict, float]:
        by_domain = macro_f1_by_domain(served_predictions(heads, validation, positive, layers), validation)
        return (float(np.mean([r["macro_f1"] for r in by_domain.values()])), by_domain,
                float(heads.neutral(customers, layers).mean()))

    def search(name: str, x: np.ndarray, make) -> tuple | None:
        best = None
        for c in C_GRID:
            weights, bias = fit(x, train.y, c)
            for shift in BIAS_GRID:
                b = bias.copy()
                b[1] += shift
                head = NeutralHead(weights=weights.tolist(), bias=b.tolist(), temperature=1.0)
                score, by_domain, customer_neutral = judged(make(head))
                trials.append({"head": name, "C": c, "neutral_bias": float(shift), "mean_macro_f1": round(score, 4),
                               "customer_neutral": round(customer_neutral, 4)})
                if customer_neutral <= MAX_CUSTOMER_NEUTRAL and (best is None or score > best[0]):
                    best = (score, c, float(shift), head, by_domain)
        return best

    found = search("pooled", train.pooled, lambda head: Heads(head))
    assert found is not None  # a neutral row biased far enough down calls no customer text neutral
    score, c, shift, final, by_domain = found
    heads = Heads(_calibrated(final, validation.pooled[validation.served], validation.y[validation.served]))
    chosen: dict = {"C": c, "neutral_bias": shift, "temperature": round(heads.final.temperature, 4), "exits": {}}
    for index, layer in enumerate(layers if exit_heads else []):
        found = search(f"exit after layer {layer}", train.lower[index],
                       lambda head, layer=layer: Heads(heads.final, heads.exits | {layer: head}))
        if found is None or found[0] <= score + 1e-9:
            continue
        score, c, shift, head, by_domain = found
        at = validation.at_exit(layer)
        heads.exits[layer] = _calibrated(head, validation.lower[index][at], validation.y[at])
        chosen["exits"][str(layer)] = {"C": c, "neutral_bias": shift,
                                       "temperature": round(heads.exits[layer].temperature, 4)}
    judged_any = validation.served | np.isin(validation.exit_layer, list(heads.exits))
    probs = np.full((validation.y.size, 3), np.nan)  # each judged text's probabilities from the head that judges it
    probs[validation.served] = heads.final.probabilities(validation.pooled[validation.served])
    for layer, head in heads.exits.items():
        at = validation.at_exit(layer)
        probs[at] = head.probabilities(validation.lower[layers.index(layer)][at])
    chosen |= {"customer_validation_called_neutral": round(float(heads.neutral(customers, layers).mean()), 4),
               "rule": f"best mean three-way macro-F1 over the three VADER validation domains, as served, with at "
                       f"most {MAX_CUSTOMER_NEUTRAL:.0%} of the customer validation texts called neutral; the "
                       "pooled output's head first, then each early exit's where it raises that mean",
               "validation_three_way": by_domain,
               "validation_ece_served": round(ece3(probs[judged_any], validation.y[judged_any]), 4),
               "validation_served_share": round(float(judged_any.mean()), 4),
               "neutral_reach": round(float(judged_any[validation.y == 1].mean()), 4),
               "trials": trials}
    return heads, chosen


def _calibrated(head: NeutralHead, x: np.ndarray, y: np.ndarray) -> NeutralHead:
    """``head`` with one temperature fitted (NLL) on the texts it judges as served."""
    logits = x @ np.asarray(head.weights).T + np.asarray(head.bias)
    return NeutralHead(weights=head.weights, bias=head.bias, temperature=fit_temperature3(logits, y))


def label_shares(results: list) -> dict:
    """The drift reference (:mod:`sentiedge_core.monitoring`) of served results, every label counted."""
    from sentiedge_core import monitoring

    n = len(results)
    bins = [0] * (len(monitoring.CONFIDENCE_BINS) - 1)
    for r in results:
        bins[monitoring.confidence_bin(r.confidence)] += 1
    return {"labels": {label: round(sum(r.label == label for r in results) / n, 6) for label in NEUTRAL_LABELS},
            "confidence_bins": monitoring.CONFIDENCE_BINS, "confidence": [round(b / n, 6) for b in bins], "n": n}


def finish(staging: Path, splits: dict, threads: int) -> tuple[list[Golden], dict, dict]:
    """Scored once, after the decision: the VADER test split, the movie test splits, the everyday
    sets. Returns the golden examples, the metrics to add and the drift reference."""
    from models.data import load_corpus, read_labelled_csv
    from models.evaluate import vader_figures

    model = SentimentModel(staging, threads=threads, check_golden=False)
    old = read_manifest(staging)
    test = splits["test"]
    by_domain = {d: [it for it in test if it.domain == d] for d in vader_gold.DOMAINS}
    vader = vader_figures({d: model.score([it.text for it in items]) for d, items in by_domain.items()}, by_domain)
    movie = load_corpus().test
    movie_results = model.score(movie.texts)
    movie_neutral = float(np.mean([r.label == NEUTRAL for r in movie_results]))
    everyday = read_labelled_csv(str(EVERYDAY))
    everyday_results = model.score(everyday.texts)
    everyday_accuracy = float(np.mean([r.label == ("positive" if y else "negative")
                                       for r, y in zip(everyday_results, everyday.labels, strict=True)]))
    neutral_texts = [row.split(",", 1)[0] for row in EVERYDAY_NEUTRAL.read_text().splitlines()[1:] if row]
    neutral_results = model.score(neutral_texts)
    golden_old = model.score([g.text for g in old.golden])
    golden = [g for g, r in zip(old.golden, golden_old, strict=True)
              if r.label == g.label and r.confidence >= GOLDEN_MIN]
    golden += [Golden(text=t, label=NEUTRAL) for t, r in zip(neutral_texts, neutral_results, strict=True)
               if r.label == NEUTRAL and r.confidence >= NEUTRAL_GOLDEN_MIN][:MAX_NEUTRAL_GOLDEN]
    metrics = {
        "vader_test_int8": vader,
        "neutral_share_on_movie_test": round(movie_neutral, 4),
        "everyday_floor_labels_int8": {"accuracy": round(everyday_accuracy, 4), "n": len(everyday_results),
                                       "note": "label as served (a neutral answer counts as wrong)"},
        "everyday_neutral_int8": {"neutral_recall": round(float(np.mean([r.label == NEUTRAL
                                                                         for r in neutral_results])), 4),
                                  "n": len(neutral_results),
                                  "note": "models/everyday_neutral.csv: 30 hand-written neutral customer texts, "
                                          "never used to fit or choose"},
    }
    return golden, metrics, label_shares(movie_results)


def exit_file(layer: int) -> str:
    return f"transformer-exit-{layer}-neutral.json"


def write_bundle(source: Path, out: Path, heads: Heads, chosen: dict, provenance: dict, splits: dict,
                 threads: int, version: str | None = None) -> dict:
    staging = out.with_name(out.name + ".staging")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source, staging)
    manifest = read_manifest(staging)
    stage = manifest.stage("transformer")
    for ex in stage.exits:  # heads of an earlier fit go; the chosen ones are written below
        if ex.neutral:
            manifest.files.pop(ex.neutral, None)
            (staging / ex.neutral).unlink(missing_ok=True)
            ex.neutral = ""
    written = {NEUTRAL_FILE: heads.final}
    for ex in stage.exits:
        if ex.layer in heads.exits:
            ex.neutral = exit_file(ex.layer)
            written[ex.neutral] = heads.exits[ex.layer]
    for name, head in written.items():
        (staging / name).write_bytes(msgspec.json.encode(head))
        manifest.files[name] = sha256_file(staging / name)
    stage.neutral = NEUTRAL_FILE
    manifest.label_set = list(NEUTRAL_LABELS)
    manifest.version = version or manifest.version
    (staging / MANIFEST).write_bytes(encode_manifest(manifest))
    golden, metrics, reference = finish(staging, splits, threads)
    manifest.golden = golden
    manifest.metrics = manifest.metrics | metrics | {"neutral_validation": {
        k: v for k, v in chosen.items() if k != "trials"}}
    manifest.reference = reference
    manifest.provenance["neutral"] = provenance
    (staging / MANIFEST).write_bytes(encode_manifest(manifest))
    SentimentModel(staging, threads=threads)  # digests and golden examples check out
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.neutral", description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--sdist", help="the vaderSentiment 3.3.2 source distribution (default: build/data/)")
    parser.add_argument("--version", help="the new bundle's version (default: the source bundle's)")
    parser.add_argument("--validate-only", action="store_true")
    parser.add_argument("--no-exit-heads", action="store_true",
                        help="judge only texts that run through the whole encoder (1.6.0's rule); by default each "
                             "early exit gets a neutral head of its own where it raises the validation score")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    try:
        splits = vader_gold.load_splits(args.sdist)
        model = SentimentModel(args.bundle, threads=args.threads, check_golden=False)
    except (OSError, ValueError) as exc:
        print(f"neutral: error: {exc}", file=sys.stderr)
        return 2
    from models.data import read_labelled_csv

    digest = sha256_file(args.bundle / MANIFEST)[:16]
    vader_train = vader_features(model, splits["train"], "train", CACHE / f"{digest}-train.npz")
    ct = read_labelled_csv(str(CUSTOMER_TRAIN))
    customer_train = features(model, ct.texts, np.asarray(ct.labels) * 2, ["customers"] * len(ct.texts),
                              "customer train", CACHE / f"{digest}-customer-train.npz")
    train = joined(vader_train, *[customer_train] * CUSTOMER_REPEATS)
    validation = vader_features(model, splits["validation"], "validation", CACHE / f"{digest}-validation.npz")
    cust = read_labelled_csv(str(CUSTOMER_VALIDATION))
    customers = features(model, cust.texts, np.asarray(cust.labels) * 2, ["customers"] * len(cust.texts),
                         "customers", CACHE / f"{digest}-customers.npz")
    positive = np.asarray([r.score > 0 for r in model.score(validation.texts)])
    layers = [e.layer for e in model.transformer_stage.exits]
    heads, chosen = choose(train, validation, positive, customers, layers, exit_heads=not args.no_exit_heads)
    print(json.dumps({k: v for k, v in chosen.items() if k != "trials"}, indent=1))
    if not args.validate_only:
        provenance = {"data": "VADER train split (models/vader_gold.py), neutral: |mean| <= 1; "
                              f"models/customer_train.csv (polar) x{CUSTOMER_REPEATS}",
                      "sizes": {"train": int(train.y.size), "validation": int(validation.y.size)},
                      "chosen_on": "validation split only, as served"}
        metrics = write_bundle(args.bundle, args.out, heads, chosen, provenance, splits, args.threads, args.version)
        print(json.dumps(metrics, indent=1))
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
