"""Out-of-domain proxies for the transformer stage's fine-tuning recipes (needs the ``train`` extra).

    python -m models.robust_recipes --out build/robust [--imdb-docs 4000] [--threads 2]

The shipped model has seen only movie reviews, so how well a recipe keeps the pretrained
encoder's generality is measured across the two movie sources, which differ in length and
register: train on IMDB only and measure on Rotten Tomatoes, and the reverse; also on the
hand-written customer texts of ``models/customer_validation.csv``. Every figure is on a
validation split (never a test split), so the study may be used to select a recipe.

Recipes, after Kumar et al. 2022 (LP-FT) and Wortsman et al. 2022 (WiSE-FT):

- ``lp``: linear probe, the head trained on the frozen pretrained encoder;
- ``ft``: full fine-tuning, 2 epochs at 5e-5 (the shipped recipe's settings);
- ``ft-gentle``: 1 epoch at 2e-5 (fewer epochs, lower learning rate);
- ``lp-ft``: the probe's head, then every weight for 1 epoch at 1e-5;
- ``wise-ft@a``: weights (1 - a) * lp + a * lp-ft, a in 0.25 / 0.5 / 0.75;
- ``ft+lexicon``: ``ft`` with the VADER lexicon's human-rated polarity words added as one-word
  texts (the 1.3.0 recipe's extra source, :func:`models.data.load_lexicon`).

``--recipes ft,ft+lexicon`` runs only those (``lp-ft`` and ``wise-ft`` need ``lp``); the
figures are merged into an existing ``results.json``.

Accuracy and ECE are of the first 128-token window in fp32 (the recipes' relative order,
not the served cascade's figures); "ECE (T)" uses a temperature fitted on the source
domain's validation split, as the build calibrates. Results go to ``OUT/results.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from models.calibration import fit_temperature
from models.data import Split, load_corpus, load_lexicon, read_labelled_csv
from models.metrics import expected_calibration_error

CUSTOMER_VALIDATION = Path(__file__).resolve().parent / "customer_validation.csv"
MAX_LEN = 128
WISE_ALPHAS = (0.25, 0.5, 0.75)


def _margins(model, encoder, texts: list[str], batch_size: int = 64) -> np.ndarray:
    import torch

    out = []
    ids = [w[0] for w in (encoder.windows_of(t) for t in encoder.token_ids(texts))]
    with torch.no_grad():
        for start in range(0, len(ids), batch_size):
            chunk = ids[start : start + batch_size]
            padded = encoder.pad(chunk, list(range(len(chunk))), len(chunk))
            logits = model(input_ids=torch.from_numpy(padded.input_ids),
                           attention_mask=torch.from_numpy(padded.attention_mask)).logits.numpy()
            out.append(logits[:, 1] - logits[:, 0])
    return np.concatenate(out)


def _score(model, encoder, source_val: Split, targets: dict[str, Split]) -> dict:
    margins = _margins(model, encoder, source_val.texts)
    temperature = fit_temperature(margins, source_val.y)
    row = {"temperature": round(temperature, 3)}
    for name, split in {"in_domain": source_val, **targets}.items():
        m = margins if name == "in_domain" else _margins(model, encoder, split.texts)
        p = 1 / (1 + np.exp(-m))
        row[name] = {"accuracy": round(float(((m > 0).astype(int) == split.y).mean()), 4),
                     "ece": round(expected_calibration_error(p, split.y), 4),
                     "ece_t": round(expected_calibration_error(1 / (1 + np.exp(-m / temperature)), split.y), 4)}
    return row


def _interpolate(a, b, alpha: float):
    import copy

    mixed = copy.deepcopy(a)
    sa, sb = a.state_dict(), b.state_dict()
    mixed.load_state_dict({k: (1 - alpha) * sa[k] + alpha * sb[k] if sa[k].is_floating_point() else sa[k]
                           for k in sa})
    return mixed


RECIPES = ("lp", "ft", "ft-gentle", "lp-ft", "wise-ft", "ft+lexicon")


def study(source: str, train: Split, source_val: Split, targets: dict[str, Split], *, seed: int,
          recipes: tuple[str, ...] = RECIPES) -> dict:
    import copy

    import torch

    from models import transformer_stage as ts
    from sentiedge_core.encoding import WindowEncoder

    base = ts.base_model_dir()
    encoder = WindowEncoder(base / "tokenizer.json", max_len=MAX_LEN, max_windows=8)
    results, timings = {}, {}

    def run(name: str, model, data: Split = train, **fit) -> None:
        started = time.monotonic()
        if fit:
            torch.manual_seed(seed)
            ts.train(model, encoder, data.texts, data.labels, batch_size=32, seed=seed, **fit)
        timings[name] = round((time.monotonic() - started) / 60, 1)
        results[name] = _score(model, encoder, source_val, targets) | {"train_minutes": timings[name]}
        print(f"[{source}] {name}: {json.dumps(results[name])}", flush=True)

    if "lp" in recipes:
        torch.manual_seed(seed)
        probe = ts.classifier(base)
        run("lp", probe, epochs=2, lr=2e-3, only=("classifier", "bert.pooler"))
    if "ft" in recipes:
        torch.manual_seed(seed)
        run("ft", ts.classifier(base), epochs=2, lr=5e-5)
    if "ft-gentle" in recipes:
        torch.manual_seed(seed)
        run("ft-gentle", ts.classifier(base), epochs=1, lr=2e-5)
    if "lp" in recipes and "lp-ft" in recipes:
        lp_ft = copy.deepcopy(probe)
        run("lp-ft", lp_ft, epochs=1, lr=1e-5)
        if "wise-ft" in recipes:
            for alpha in WISE_ALPHAS:
                run(f"wise-ft@{alpha}", _interpolate(probe, lp_ft, alpha))
    if "ft+lexicon" in recipes:
        lexicon = load_lexicon()
        with_lexicon = Split(train.texts + lexicon.texts, train.labels + lexicon.labels,
                             train.sources + lexicon.sources)
        torch.manual_seed(seed)
        run("ft+lexicon", ts.classifier(base), with_lexicon, epochs=2, lr=5e-5)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.robust_recipes", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("build/robust"))
    parser.add_argument("--imdb-docs", type=int, default=4000, help="IMDB training reviews to use (CPU cost)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--recipes", default=",".join(RECIPES), help=f"comma-separated, of {', '.join(RECIPES)}")
    args = parser.parse_args(argv)
    recipes = tuple(r.strip() for r in args.recipes.split(",") if r.strip())
    unknown = sorted(set(recipes) - set(RECIPES))
    if unknown:
        parser.error(f"unknown recipe {unknown[0]!r}; recipes are {', '.join(RECIPES)}")
    try:
        import torch
    except ImportError:
        print("robust_recipes: error: needs the train extra (pip install -e '.[train]')", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    corpus = load_corpus()
    customers = read_labelled_csv(str(CUSTOMER_VALIDATION))
    imdb_train = corpus.train.only("imdb")
    pick = np.random.default_rng(13).permutation(len(imdb_train))[: args.imdb_docs]
    imdb = Split()
    for i in pick:
        imdb.add(imdb_train.texts[i], imdb_train.labels[i], "imdb")
    rt_val, imdb_val = corpus.validation.only("rotten_tomatoes"), corpus.validation.only("imdb")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "results.json"
    earlier = json.loads(path.read_text()) if path.exists() else {}
    report = {
        "note": "validation splits only; first 128-token window, fp32; ECE 15 bins",
        "imdb_to_rt": earlier.get("imdb_to_rt", {}) | study(
            "imdb", imdb, imdb_val, {"rotten_tomatoes": rt_val, "customers": customers}, seed=args.seed,
            recipes=recipes),
        "rt_to_imdb": earlier.get("rt_to_imdb", {}) | study(
            "rotten_tomatoes", corpus.train.only("rotten_tomatoes"), rt_val,
            {"imdb": imdb_val, "customers": customers}, seed=args.seed, recipes=recipes),
        "sizes": {"imdb_train": len(imdb), "rt_train": len(corpus.train.only("rotten_tomatoes")),
                  "imdb_validation": len(imdb_val), "rt_validation": len(rt_val), "customers": len(customers)},
    }
    path.write_text(json.dumps(report, indent=2))
    print(table(report))
    return 0


def table(report: dict) -> str:
    lines = []
    for key, target in (("imdb_to_rt", "rotten_tomatoes"), ("rt_to_imdb", "imdb")):
        lines.append(f"\n{key}: recipe | in-domain acc | {target} acc / ECE / ECE(T) | customers acc / ECE(T)")
        for name, r in report[key].items():
            lines.append(f"  {name:<14} {r['in_domain']['accuracy']:.4f} | {r[target]['accuracy']:.4f} / "
                         f"{r[target]['ece']:.4f} / {r[target]['ece_t']:.4f} | "
                         f"{r['customers']['accuracy']:.4f} / {r['customers']['ece_t']:.4f}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
