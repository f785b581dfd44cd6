"""Continue fine-tuning the released transformer on customers' words (``train`` extra).

    python -m models.continue_training [--bundle models/sentiment-cascade] [--lr 2e-5] [--customer-repeats 4]
                                       [--seeds 11,12,13] [--alphas 0.5,1.0]

The release's encoder learned polarity from movie reviews, where a plain account of what
happened ("the refund was processed quickly") reads as plot and leans negative. This step
starts from the shipped weights (recovered from the bundle, :mod:`models.recover_checkpoint`)
and trains one more short epoch on a mix that keeps what it knows and adds what it lacks:

- every Rotten Tomatoes training snippet and a seeded subset of IMDB training reviews
  (replay, so the movie domains are not forgotten);
- ``models/customer_train.csv``: customer texts written for this project (shop, delivery,
  support, app, bank, travel, food, health, services, telecom, social posts with emoji, chat
  replies; plain accounts and negations on both sides; same license as the code), repeated
  so that they weigh in. Texts within a word-overlap of 0.5 of any validation, out-of-domain
  or everyday-floor text were removed from it before any training.

With ``--seeds 11,12,13`` it trains one continued model per seed, all from the same recovered
weights, and averages them into a uniform model soup (Wortsman et al., 2022: fine-tunes that
share a start stay in one basin, so their mean weights act like an ensemble of them at the
cost of one model). It then scores, on validation only (fp32, first 128-token window), the
recovered release, each continued model, the soup and weight-space ensembles of the release
and the last of these (WiSE-FT: ``(1 - a)·release + a·continued``), and saves each candidate as
a checkpoint under ``--work-dir``. Choosing a candidate and building its bundle is
:mod:`models.release`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

from models.checkpoints import cached, transformer_training_set
from models.data import Split, load_corpus, read_labelled_csv
from models.metrics import report
from models.thin_evidence import CUSTOMER_VALIDATION

CUSTOMER_TRAIN = Path(__file__).resolve().parent / "customer_train.csv"
CONTINUE_RECIPE = {
    "from": "bundle",
    "imdb_docs": 1500,
    "customer_repeats": 4,
    "epochs": 1,
    "batch_size": 32,
    "lr": 2e-5,
    "max_len": 128,
    "seed": 11,
    "imdb_sentences": 0,
    "vader_repeats": 0,
}


def training_mix(corpus, recipe: dict, extra: tuple[list[str], list[int]] = ([], [])) -> tuple[list[str], list]:
    """The replay mix; with ``vader_repeats`` the VADER gold training split (tweets, Amazon, NYT) with
    its raters' soft labels, repeated, and every hard label as a float (the soft loss)."""
    texts, labels = transformer_training_set(corpus, recipe)  # every RT snippet + the seeded IMDB subset
    customers = read_labelled_csv(str(CUSTOMER_TRAIN))
    texts = texts + customers.texts * recipe["customer_repeats"] + extra[0]
    labels = labels + customers.labels * recipe["customer_repeats"] + extra[1]
    if recipe.get("vader_repeats"):
        from models import vader_gold

        gold_texts, gold_p = vader_gold.soft_training_set(vader_gold.load_splits()["train"])
        texts = texts + gold_texts * recipe["vader_repeats"]
        labels = [float(y) for y in labels] + gold_p * recipe["vader_repeats"]
    return texts, labels


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def review_sentences(corpus, seed: int = 13) -> tuple[list[str], list[int]]:
    """Every sentence of 6-40 words in the IMDB training reviews, labelled with its review's label
    (weak labels: a positive review holds complaints too), in a seeded order; none that is also
    a validation or test text."""
    imdb = corpus.train.only("imdb")
    held_out = set(corpus.validation.texts) | set(corpus.test.texts)
    texts, labels = [], []
    for review, label in zip(imdb.texts, imdb.labels, strict=False):
        for sentence in (s.strip() for s in _SENTENCE_END.split(review.replace("<br />", " "))):
            if 6 <= len(sentence.split()) <= 40 and sentence not in held_out:
                texts.append(sentence)
                labels.append(label)
    order = np.random.default_rng(seed).permutation(len(texts))
    return [texts[i] for i in order], [labels[i] for i in order]


def agreed_sentences(corpus, release: Path, n: int, threads: int,
                     confidence: float = 0.7) -> tuple[list[str], list[int]]:
    """The first ``n`` review sentences whose weak label the starting model agrees with at
    ``confidence`` or more (agreement filtering: drops most of the plot summary and the
    complaints inside positive reviews)."""
    texts, labels = review_sentences(corpus)
    pool = list(zip(texts, labels, strict=False))[: n * 4]
    p = 1 / (1 + np.exp(-first_window_margins(release, [t for t, _ in pool], threads)))
    kept = [(t, y) for (t, y), q in zip(pool, p, strict=False) if (q if y else 1 - q) >= confidence][:n]
    return [t for t, _ in kept], [y for _, y in kept]


def continued_checkpoint(bundle: Path, corpus, work: Path, recipe: dict, threads: int) -> Path:
    """One continued run; the recipe's own seed (and no review sentences) keeps the path 1.4.0 was built from."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from models import transformer_stage
    from models.recover_checkpoint import recover
    from sentiedge_core.bundle import sha256_file
    from sentiedge_core.encoding import WindowEncoder

    release = recover(bundle, work / "release-recovered")
    recipe_stamp = {k: v for k, v in recipe.items()
                    if k not in ("imdb_sentences", "vader_repeats") or v}  # 0: the 1.4.0 stamp, as before
    stamp = recipe_stamp | {"bundle_transformer": sha256_file(bundle / "transformer.onnx"),
                            "customer_train": sha256_file(CUSTOMER_TRAIN)}

    def build(out: Path) -> None:
        import time

        torch.manual_seed(recipe["seed"])
        torch.set_num_threads(threads)
        model = AutoModelForSequenceClassification.from_pretrained(release)
        n = recipe["imdb_sentences"]
        extra = agreed_sentences(corpus, release, n, threads) if n else ([], [])
        texts, labels = training_mix(corpus, recipe, extra)
        started = time.monotonic()
        device = transformer_stage.train(
            model, WindowEncoder(release / "tokenizer.json", max_len=recipe["max_len"], max_windows=8), texts, labels,
            epochs=recipe["epochs"], batch_size=recipe["batch_size"], lr=recipe["lr"], seed=recipe["seed"])
        transformer_stage.save(model, release, out, {"device": device, "torch": torch.__version__,
                                                      "minutes": round((time.monotonic() - started) / 60, 1),
                                                      "continued_from": str(bundle), "texts": len(texts)})

    name = "continued" if recipe["seed"] == CONTINUE_RECIPE["seed"] else f"continued-seed{recipe['seed']}"
    name += f"-sentences{recipe['imdb_sentences']}" if recipe["imdb_sentences"] else ""
    name += f"-vader{recipe['vader_repeats']}" if recipe.get("vader_repeats") else ""
    return cached(work / name, stamp, build)


def soup(members: list[Path], out: Path) -> Path:
    """Uniform model soup: every weight the mean of the members' (same architecture, same start)."""
    return _mixed(members, [1 / len(members)] * len(members), out, {"soup_of": [str(m) for m in members]})


def weighted_mean(states: list[dict], weights: list[float]) -> dict:
    """Every floating-point weight as ``sum(w_i * state_i)``; integer buffers (position ids) from the first."""
    return {k: sum(w * s[k] for w, s in zip(weights, states, strict=False)) if np.asarray(v).dtype.kind == "f" else v
            for k, v in states[0].items()}


def _mixed(members: list[Path], weights: list[float], out: Path, training: dict) -> Path:
    from transformers import AutoModelForSequenceClassification

    from models import transformer_stage

    model = AutoModelForSequenceClassification.from_pretrained(members[0])
    states = [AutoModelForSequenceClassification.from_pretrained(m).state_dict() for m in members]
    model.load_state_dict(weighted_mean(states, weights))
    transformer_stage.save(model, members[0], out, training)
    return out


def interpolate(release: Path, continued: Path, alpha: float, out: Path) -> Path:
    """WiSE-FT: every weight ``(1 - alpha) * release + alpha * continued``."""
    return _mixed([release, continued], [1 - alpha, alpha], out,
                  {"wise_alpha": alpha, "release": str(release), "continued": str(continued)})


def first_window_margins(checkpoint: Path, texts: list[str], threads: int) -> np.ndarray:
    import torch
    from transformers import AutoModelForSequenceClassification

    from sentiedge_core.encoding import WindowEncoder, normalize

    torch.set_num_threads(threads)
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint).eval()
    encoder = WindowEncoder(checkpoint / "tokenizer.json", max_len=128, max_windows=1)
    ids = encoder.token_ids([normalize(t) for t in texts])
    order = np.argsort([len(i) for i in ids], kind="stable")
    out = np.zeros(len(texts))
    with torch.no_grad():
        for start in range(0, len(order), 64):
            chunk = order[start:start + 64]
            padded = encoder.pad([encoder.windows_of(ids[i])[0] for i in chunk], list(range(len(chunk))), len(chunk))
            logits = model(input_ids=torch.from_numpy(padded.input_ids),
                           attention_mask=torch.from_numpy(padded.attention_mask)).logits.numpy()
            out[chunk] = logits[:, 1] - logits[:, 0]
    return out


def validation_sets(corpus, vader: bool = False) -> dict[str, Split]:
    sets = {"rotten_tomatoes": corpus.validation.only("rotten_tomatoes"), "imdb": corpus.validation.only("imdb"),
            "customers": read_labelled_csv(str(CUSTOMER_VALIDATION))}
    if vader:  # the binary view (|mean| > 1) of each VADER domain's validation split
        from models import vader_gold

        validation = vader_gold.load_splits()["validation"]
        sets |= {f"vader_{d}": vader_gold.polar(validation, d) for d in vader_gold.DOMAINS}
    return sets


def score(checkpoint: Path, sets: dict[str, Split], threads: int) -> dict:
    out = {}
    for name, split in sets.items():
        m = first_window_margins(checkpoint, split.texts, threads)
        y = np.asarray(split.labels)
        r = report(1 / (1 + np.exp(-m)), y)  # raw: the cascade calibrates later
        out[name] = {"accuracy": r["accuracy"], "balanced_accuracy": r["balanced_accuracy"], "ece": r["ece"],
                     "n": len(y)}
    return out


def main(argv: list[str] | None = None) -> int:
    from sentiedge_core import BUNDLE_DIR

    parser = argparse.ArgumentParser(prog="python -m models.continue_training", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=BUNDLE_DIR)
    parser.add_argument("--work-dir", type=Path, default=Path("build/continue"))
    parser.add_argument("--lr", type=float, default=CONTINUE_RECIPE["lr"])
    parser.add_argument("--customer-repeats", type=int, default=CONTINUE_RECIPE["customer_repeats"])
    parser.add_argument("--alphas", default="0.5,1.0", help="WiSE-FT mixing weights to score")
    parser.add_argument("--seeds", default=str(CONTINUE_RECIPE["seed"]),
                        help="one continued run per seed; several are averaged into a model soup")
    parser.add_argument("--imdb-sentences", type=int, default=0,
                        help="add this many IMDB training-review sentences, labelled by their review and kept "
                             "where the starting model agrees (0: none, the 1.4.0 recipe)")
    parser.add_argument("--vader-repeats", type=int, default=0,
                        help="add the VADER gold training split (models.vader_gold: tweets, Amazon, NYT) with "
                             "the raters' soft labels, this many times (0: none, the 1.4.0 recipe)")
    parser.add_argument("--epochs", type=float, default=CONTINUE_RECIPE["epochs"])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    recipe = CONTINUE_RECIPE | {"lr": args.lr, "customer_repeats": args.customer_repeats,
                                "imdb_sentences": args.imdb_sentences, "vader_repeats": args.vader_repeats,
                                "epochs": args.epochs}
    work = args.work_dir / f"lr{args.lr:g}-rep{args.customer_repeats}"
    corpus = load_corpus()
    seeds = [int(s) for s in args.seeds.split(",")]
    members = [continued_checkpoint(args.bundle, corpus, work, recipe | {"seed": s}, args.threads) for s in seeds]
    release = work / "release-recovered"
    sets = validation_sets(corpus, vader=bool(args.vader_repeats))
    results = {}

    def scored(name: str, path: Path) -> None:
        results[name] = score(path, sets, args.threads)
        print(json.dumps({name: results[name]}), flush=True)

    scored("release", release)
    if len(members) > 1:
        for s, member in zip(seeds, members, strict=False):
            scored(f"seed-{s}", member)
        continued = soup(members, work / ("soup-" + "-".join(map(str, seeds))))
    else:
        continued = members[0]
    for alpha in (float(a) for a in args.alphas.split(",")):
        name = f"wise-{alpha:g}" if continued.name == "continued" else f"{continued.name}-wise-{alpha:g}"
        scored(name, continued if alpha == 1.0 else interpolate(release, continued, alpha, work / name))
    (work / "validation.json").write_text(json.dumps({"recipe": recipe, "seeds": seeds, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
