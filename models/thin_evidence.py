"""A bundle whose fast stage never answers alone on thin evidence, calibrated per length
bucket (``python -m models.thin_evidence``).

The fast stage sees words and word pairs. On a short text, or one with a negation it cannot
scope ("not bad at all", "no complaints"), it is confidently wrong, so those texts always
escalate. The rule is a design constant, not tuned (``models.cascade_fit.THIN_TOKENS`` and
``NEGATION_CUES``, on the short route only); ``models.build`` applies the same rule.

The stages are the released bundle's, untouched. The cascade is fitted again on validation
exactly as ``models.build`` fits it: the fast stage's temperature per length bucket, then each
route's threshold and stacker with the thin-evidence rule. The short route's stacker is then
fitted on mixed-domain validation. The test splits are then scored with the old and the new cascade, and
both are printed. The new bundle gets its own version, metrics and golden examples (the
hand-written out-of-domain texts it gets right, as in ``models.build``), and is written
atomically.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import tempfile
from pathlib import Path

import msgspec
import numpy as np

from models.calibration import fit_logistic
from models.cascade_fit import NEGATION_CUES, THIN_TOKENS, Margins, fit_cascade, mixed_domain_short_stacker
from models.cascade_fit import negated as cascade_fit_negated  # noqa: E402
from models.data import load_corpus, read_labelled_csv
from models.metrics import report
from sentiedge_core import BUNDLE_DIR, cascade, monitoring
from sentiedge_core.bundle import MANIFEST, Golden, encode_manifest, read_manifest, sha256_file
from sentiedge_core.encoding import normalize
from sentiedge_core.inference import SentimentModel

OUT_OF_DOMAIN = Path(__file__).resolve().parent / "out_of_domain.csv"
# Hand-written customer texts (shop, support, app, travel, food, services; 80/80), used as
# validation only: with the movie validation split they fit the short route's stacker.
CUSTOMER_VALIDATION = Path(__file__).resolve().parent / "customer_validation.csv"


def split_margins(model: SentimentModel, texts: list[str], y, sources, need_transformer) -> tuple[Margins, np.ndarray]:
    """Both stages' margins (the transformer only where ``need_transformer`` says, NaN
    elsewhere) and which texts hold a negation cue."""
    texts = [normalize(t) for t in texts]
    fast, tokens = [], []
    for start in range(0, len(texts), 64):
        m, t = model.fast_stage.margins(texts[start:start + 64])
        fast.extend(m.tolist())
        tokens.extend(t.tolist())
    fast, tokens = np.asarray(fast), np.asarray(tokens)
    negated = cascade_fit_negated(texts)
    wanted = need_transformer(fast, tokens, negated)
    transformer = np.full(len(texts), np.nan)
    for i in np.flatnonzero(wanted):
        transformer[i] = model.transformer_stage.margins([texts[i]])[0]
        if i % 200 == 0:
            print(f"  transformer {int((wanted[:i + 1]).sum())}/{int(wanted.sum())}", file=sys.stderr, flush=True)
    return Margins(fast, tokens, transformer, np.asarray(y), np.asarray(sources), negated), negated


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", type=Path, default=BUNDLE_DIR)
    parser.add_argument("--out", type=Path, default=BUNDLE_DIR)
    parser.add_argument("--version", default="1.2.0")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    model = SentimentModel(args.bundle, threads=args.threads)
    old = model.manifest.cascade
    corpus = load_corpus()

    def escalated_by(spec):
        return lambda fast, tokens, negated: cascade.escalate(fast, tokens, spec, negated)

    print("validation: margins", file=sys.stderr)
    val, val_neg = split_margins(model, corpus.validation.texts, corpus.validation.labels, corpus.validation.sources,
                                 lambda f, t, n: np.ones(len(f), bool))
    # The whole cascade fitted again on validation, as models.build fits it: length-bucket
    # temperatures, then each route's threshold and stacker with the thin-evidence rule.
    new, fit_info = fit_cascade(val, old.long_text_tokens)
    print(f"length buckets {new.length_buckets}: fast temperatures {[round(t, 2) for t in new.bucket_temperatures]}; "
          f"routes {fit_info}")
    customers = read_labelled_csv(str(CUSTOMER_VALIDATION))
    cust, cust_neg = split_margins(model, customers.texts, customers.labels, customers.sources, escalated_by(new))
    short = ~cascade.is_long(val.tokens, new)
    esc = cascade.escalate(val.fast, val.tokens, new, val_neg) & short
    cust_esc = cascade.escalate(cust.fast, cust.tokens, new, cust_neg) & ~cascade.is_long(cust.tokens, new)
    # The short route's stacker is fitted on mixed-domain validation: the movie texts and the
    # customer texts the rule escalates, so its confidence means the same off the movie domain.
    features = np.vstack([np.column_stack([val.fast[esc], val.transformer[esc]]),
                          np.column_stack([cust.fast[cust_esc], cust.transformer[cust_esc]])])
    labels = np.concatenate([val.y[esc], cust.y[cust_esc]])
    movie_only = fit_logistic(features[:int(esc.sum())], labels[:int(esc.sum())])
    new = msgspec.structs.replace(new, short=msgspec.structs.replace(
        new.short, stacker=mixed_domain_short_stacker(new, val, cust)))
    print(f"short route: {int(esc.sum())} of {int(short.sum())} movie validation texts escalate (was "
          f"{int((cascade.escalate(val.fast, val.tokens, old) & short).sum())}), and {int(cust_esc.sum())} of "
          f"{len(customers)} customer validation texts; stacker {new.short.stacker} (movie texts only: {movie_only})")
    # Held-out check of the choice, on validation only: 5 folds of the customer texts, each scored
    # by a stacker fitted without it (movie texts always in).
    folds = np.arange(len(customers)) % 5
    p_cv = {"movie-only": np.zeros(len(customers)), "mixed-domain": np.zeros(len(customers))}
    n_movie = int(esc.sum())
    cust_features = np.column_stack([cust.fast, cust.transformer])
    for k in range(5):
        train = (folds != k) & cust_esc
        mixed = fit_logistic(np.vstack([features[:n_movie], cust_features[train]]),
                             np.concatenate([labels[:n_movie], cust.y[train]]))
        for name, stacker in (("movie-only", movie_only), ("mixed-domain", mixed)):
            spec = msgspec.structs.replace(new, short=msgspec.structs.replace(new.short, stacker=stacker))
            p, _ = cascade.combine(cust.fast, cust.transformer, cust.tokens, spec, cust_neg)
            p_cv[name][folds == k] = p[folds == k]
    for name, p in p_cv.items():
        r = report(p, cust.y)
        print(f"customer validation, 5-fold held out, {name:13} accuracy {r['accuracy']:.4f} ece {r['ece']:.4f}")
    for name, spec in (("1.1.1", old), ("movie-only stacker", msgspec.structs.replace(
            new, short=msgspec.structs.replace(new.short, stacker=movie_only))), ("mixed-domain stacker", new)):
        p, _ = cascade.combine(cust.fast, cust.transformer, cust.tokens, spec, cust_neg)
        r = report(p, cust.y)
        print(f"customer validation, {name:22} accuracy {r['accuracy']:.4f} ece {r['ece']:.4f}")

    print("test: margins", file=sys.stderr)
    either = lambda f, t, n: escalated_by(old)(f, t, n) | escalated_by(new)(f, t, n)  # noqa: E731
    test, test_neg = split_margins(model, corpus.test.texts, corpus.test.labels, corpus.test.sources, either)
    p_old, esc_old = cascade.combine(test.fast, test.transformer, test.tokens, old)
    p_new, esc_new = cascade.combine(test.fast, test.transformer, test.tokens, new, test_neg)
    before, after = {}, {}
    stages = read_manifest(args.bundle).metrics["test_int8"]  # the stages are unchanged: their figures stand
    for source in sorted(set(test.sources.tolist())):
        part = test.sources == source
        before[source] = {"cascade": report(p_old[part], test.y[part])
                          | {"escalation_rate": round(float(esc_old[part].mean()), 4)}}
        after[source] = dict(stages[source], cascade=report(p_new[part], test.y[part])
                             | {"escalation_rate": round(float(esc_new[part].mean()), 4)},
                             fast=report(cascade.route_fast_probability(test.fast[part], test.tokens[part], new),
                                         test.y[part]))
    for source in after:
        b, a = before[source]["cascade"], after[source]["cascade"]
        print(f"{source:16} accuracy {b['accuracy']:.4f} -> {a['accuracy']:.4f}   ece {b['ece']:.4f} -> "
              f"{a['ece']:.4f}   escalated {b['escalation_rate']:.1%} -> {a['escalation_rate']:.1%}")

    ood = read_labelled_csv(str(OUT_OF_DOMAIN))
    ood_m, ood_neg = split_margins(model, ood.texts, ood.labels, ood.sources, lambda f, t, n: np.ones(len(f), bool))
    p_ood, _ = cascade.combine(ood_m.fast, ood_m.transformer, ood_m.tokens, new, ood_neg)
    golden = [Golden(text=t, label="positive" if y else "negative")
              for t, y, p in zip(ood.texts, ood.labels, p_ood, strict=False) if (p >= 0.5) == bool(y)]

    manifest = read_manifest(args.bundle)
    metrics = dict(manifest.metrics)
    metrics["test_int8"] = after
    metrics["test_overall_int8"] = report(p_new, test.y) | {"escalation_rate": round(float(esc_new.mean()), 4)}
    metrics["out_of_domain_int8"] = report(p_ood, ood.y) | {"note": metrics["out_of_domain_int8"]["note"]}
    # The stages are unchanged, so their fp32 figures stand; the fp32 cascade cannot be scored
    # again (the fp32 stages are not in the bundle), so it is left out rather than kept stale.
    metrics["test_fp32"] = {source: {k: v for k, v in stages.items() if k != "cascade"}
                            for source, stages in metrics.get("test_fp32", {}).items()}
    provenance = dict(manifest.provenance)
    provenance["thin_evidence"] = {"from": f"{manifest.name} {manifest.version}", "thin_tokens": THIN_TOKENS,
                                   "negation_cues": NEGATION_CUES, "length_buckets": new.length_buckets,
                                   "validation_routes": fit_info,
                                   "short_stacker_fitted_on": f"{int(esc.sum())} escalated movie validation texts and "
                                                              f"{int(cust_esc.sum())} escalated customer validation "
                                                              "texts (models/customer_validation.csv: 160 texts "
                                                              "written for this project, 80/80, same license as "
                                                              "the code)"}
    out = msgspec.structs.replace(manifest, version=args.version, cascade=new, golden=golden, metrics=metrics,
                                  provenance=provenance,
                                  reference=monitoring.reference_of(p_new.tolist(), manifest.labels),
                                  created=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat())
    write(args.bundle, args.out, out)
    SentimentModel(args.out, threads=args.threads)  # digests and golden examples check out
    print(f"wrote {args.out}: {out.name} {out.version}, {len(golden)} golden examples")
    return 0


def write(source: Path, target: Path, manifest) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="bundle-", dir=target.parent))
    for name in manifest.files:
        shutil.copy2(source / name, scratch / name)
    manifest = msgspec.structs.replace(manifest, files={name: sha256_file(scratch / name) for name in manifest.files})
    (scratch / MANIFEST).write_bytes(encode_manifest(manifest))
    old = target.with_name(target.name + ".old")
    if target.exists():
        target.rename(old)
    scratch.rename(target)
    shutil.rmtree(old, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
