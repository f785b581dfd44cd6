"""Evaluate a bundle on your own labelled data.

    python -m models.evaluate BUNDLE --data FILE.csv [--json]

FILE.csv needs columns ``text,label`` (label 1 = positive, 0 = negative; ``positive`` /
``negative`` also accepted). Prints accuracy, balanced accuracy, macro-F1, expected
calibration error, the confusion matrix and how many texts escalated to the transformer.
Needs only the serving stack.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from sentiedge_core.errors import SentiedgeError
from sentiedge_core.inference import SentimentModel
from models.data import read_labelled_csv
from models.metrics import format_report, report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--data", required=True, help="CSV with columns text,label")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    args = parser.parse_args(argv)
    try:
        split = read_labelled_csv(args.data)
        model = SentimentModel(args.bundle, threads=args.threads)
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
    p_positive = np.asarray([(r.score + 1) / 2 for r in results])
    metrics = report(p_positive, split.y)
    metrics["escalation_rate"] = round(float(np.mean([r.stage == "transformer" for r in results])), 4)
    if args.json:
        print(json.dumps({"bundle": str(args.bundle), "model": model.name, "version": model.version, **metrics}))
    else:
        print(format_report(f"{model.name} {model.version} on {args.data}", metrics))
        print(f"  escalated          {metrics['escalation_rate']:.1%} of texts to the transformer")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
