"""Evaluate a bundle on your own labelled data.

    python -m models.evaluate BUNDLE --data FILE.csv [--json]
    python -m models.evaluate BUNDLE --vader validation [--sdist PATH] [--json]

FILE.csv needs columns ``text,label`` (label 1 = positive, 0 = negative; ``positive`` /
``negative`` also accepted; ``neutral`` rows add a three-way view with the labels as served,
the two-way metrics count the other rows). Prints accuracy, balanced accuracy, macro-F1, expected
calibration error, the confusion matrix and how many texts escalated to the transformer.
Needs only the serving stack.

``--vader SPLIT`` scores the VADER paper's human-rated tweets, Amazon and NYT sentences
(:mod:`models.vader_gold`; SPLIT is ``validation`` or ``test``, scored once after a decision): per
domain, the binary metrics on the texts whose raters' mean is beyond 1 either way, and a three-way
view (neutral: |mean| <= 1). A model without a neutral label gets the three-way view through a cut
on |score| chosen on the same texts (``neutral_cut``): an optimistic figure, for reference only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from models.data import NEUTRAL_ROW, read_labelled_csv
from models.metrics import format_report, report
from sentiedge_core.errors import SentiedgeError
from sentiedge_core.inference import SentimentModel


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", type=Path)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="CSV with columns text,label")
    source.add_argument("--vader", choices=("validation", "test"), help="the VADER gold split (models.vader_gold)")
    parser.add_argument("--sdist", help="the vaderSentiment 3.3.2 sdist or a folder holding it")
    parser.add_argument("--candidate", action="store_true",
                        help="a staged candidate (models.release --validate-only): it has no golden examples yet")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    args = parser.parse_args(argv)
    if args.vader:
        return vader_main(args)
    try:
        split = read_labelled_csv(args.data, neutral=True)
        model = SentimentModel(args.bundle, threads=args.threads, check_golden=not args.candidate)
    except (ValueError, OSError, SentiedgeError) as exc:
        print(f"evaluate: error: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 2
    if not split.texts:
        print(f"evaluate: error: {args.data} has no rows", file=sys.stderr)
        return 2
    from tqdm import tqdm

    results = []
    with tqdm(total=len(split), desc="scoring", unit="text", file=sys.stderr) as bar:
        for start in range(0, len(split), 64):
            chunk = split.texts[start : start + 64]
            results.extend(model.score(chunk))
            bar.update(len(chunk))
    y = np.asarray(split.labels)
    polar = y != NEUTRAL_ROW
    if not polar.any():
        print(f"evaluate: error: {args.data} has no positive or negative rows", file=sys.stderr)
        return 2
    p_positive = np.asarray([(r.score + 1) / 2 for r in results])
    metrics = report(p_positive[polar], y[polar])  # the two-way view: rows labelled positive or negative
    metrics["escalation_rate"] = round(float(np.mean([r.stage == "transformer" for r in results])), 4)
    if not polar.all():  # rows labelled neutral: the three-way view, with the labels as served
        pred = np.asarray([{"negative": 0, "neutral": 1, "positive": 2}.get(r.label, 1) for r in results])
        metrics["three_way"] = three_way_report(pred, np.where(polar, y * 2, 1))
    if args.json:
        print(json.dumps({"bundle": str(args.bundle), "model": model.name, "version": model.version, **metrics}))
    else:
        print(format_report(f"{model.name} {model.version} on {args.data} ({int(polar.sum())} positive or "
                            f"negative rows)", metrics))
        print(f"  escalated          {metrics['escalation_rate']:.1%} of texts to the transformer")
        if "three_way" in metrics:
            t = metrics["three_way"]
            print(f"  three-way          macro-F1 {t['macro_f1']:.4f}, accuracy {t['accuracy']:.4f} on all {t['n']} "
                  f"rows ({int((~polar).sum())} labelled neutral); confusion (rows: true negative/neutral/positive) "
                  f"{t['confusion']}")
    return 0


def three_way_report(pred: np.ndarray, y: np.ndarray) -> dict:
    """Accuracy, macro-F1 and the confusion matrix over negative (0), neutral (1), positive (2)."""
    confusion = np.zeros((3, 3), dtype=int)
    np.add.at(confusion, (y, pred), 1)
    f1s = []
    for c in range(3):
        tp, support, predicted = confusion[c, c], confusion[c].sum(), confusion[:, c].sum()
        precision, recall = (tp / predicted if predicted else 0.0), (tp / support if support else 0.0)
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return {"n": int(y.size), "accuracy": round(float((pred == y).mean()), 4),
            "macro_f1": round(float(np.mean(f1s)), 4), "confusion": confusion.tolist()}


def vader_figures(results_by_domain: dict, items_by_domain: dict) -> dict:
    """Per domain: binary report on |mean| > 1 and the three-way view, from each text's result."""
    from models import vader_gold

    out = {}
    for domain, results in results_by_domain.items():
        items = items_by_domain[domain]
        score = np.asarray([r.score for r in results])
        labels = [r.label for r in results]
        polar = np.asarray([abs(it.mean) > vader_gold.POLAR for it in items])
        y2 = np.asarray([int(it.mean > 0) for it in items])[polar]
        binary = report((score[polar] + 1) / 2, y2)
        _, y3 = vader_gold.three_way(items)
        if "neutral" in labels:
            pred = np.asarray([{"negative": 0, "neutral": 1, "positive": 2}.get(label, 1) for label in labels])
            three = three_way_report(pred, y3) | {"neutral_cut": None}
        else:
            best = None
            for cut in np.round(np.arange(0.0, 1.0, 0.02), 2):
                pred = np.where(np.abs(score) <= cut, 1, np.where(score > 0, 2, 0))
                r = three_way_report(pred, y3) | {"neutral_cut": float(cut)}
                best = r if best is None or r["macro_f1"] > best["macro_f1"] else best
            three = best
        out[domain] = {"binary": binary | {"escalation_rate": round(float(np.mean(
            [r.stage == "transformer" for r, p in zip(results, polar, strict=False) if p])), 4)}, "three_way": three}
    return out


def vader_main(args) -> int:
    from tqdm import tqdm

    from models import vader_gold

    try:
        items = vader_gold.load_splits(args.sdist)[args.vader]
        model = SentimentModel(args.bundle, threads=args.threads, check_golden=not args.candidate)
    except (ValueError, OSError, SentiedgeError) as exc:
        print(f"evaluate: error: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 2
    by_domain = {d: [it for it in items if it.domain == d] for d in vader_gold.DOMAINS}
    results = {d: [r for start in tqdm(range(0, len(part), 64), desc=d, file=sys.stderr)
                   for r in model.score([it.text for it in part[start:start + 64]])]
               for d, part in by_domain.items()}
    figures = vader_figures(results, by_domain)
    # The out-of-domain validation set: the three domains' polar texts and, on validation,
    # the 160 customer validation texts (models/customer_validation.csv), pooled.
    p, y = [], []
    for d, part in by_domain.items():
        for r, it in zip(results[d], part, strict=False):
            if abs(it.mean) > vader_gold.POLAR:
                p.append((r.score + 1) / 2)
                y.append(int(it.mean > 0))
    if args.vader == "validation":
        from models.thin_evidence import CUSTOMER_VALIDATION

        customers = read_labelled_csv(str(CUSTOMER_VALIDATION))
        p += [(r.score + 1) / 2 for r in model.score(customers.texts)]
        y += customers.labels
        figures["customers"] = {"binary": report(np.asarray(p[-len(customers):]), customers.y)}
    figures["pooled_out_of_domain"] = {"binary": report(np.asarray(p), np.asarray(y))}
    if args.json:
        print(json.dumps({"bundle": str(args.bundle), "model": model.name, "version": model.version,
                          "split": args.vader, **figures}))
        return 0
    for domain, f in figures.items():
        b, t = f["binary"], f.get("three_way")
        print(format_report(f"{model.name} {model.version} on VADER {domain} {args.vader}, |mean| > 1", b))
        if t is None:
            continue
        cut = "" if t["neutral_cut"] is None else f" (neutral: |score| <= {t['neutral_cut']}, chosen on these texts)"
        print(f"  three-way (n={t['n']}) accuracy {t['accuracy']:.4f}, macro-F1 {t['macro_f1']:.4f}{cut}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
