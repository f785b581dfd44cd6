"""Build a release bundle around a new transformer checkpoint (``train`` extra).

    python -m models.release CHECKPOINT --version 1.4.0 [--bundle models/sentiment-cascade] [--out DIR]
    python -m models.release --recalibrate --version 1.4.1      (same weights, cascade refitted)

Keeps the bundle's fast stage (``fast.onnx`` and its tokenizer, byte for byte) and replaces the
transformer: the checkpoint is exported, quantized per channel to int8 and cut at the pooled
output, the classification layer going to ``transformer-head.json`` (as in 1.3.0). With
``--recalibrate`` the transformer's files are kept too and only the cascade is refitted. Then, as
``models.build`` does, on validation only: the transformer's temperature, the fast stage's
length-bucket temperatures, each route's threshold and stacker with the thin-evidence rule,
and the short route's and the thin stacker on mixed-domain validation (movie and customer
texts, :mod:`models.shift_calibration`). The test
splits are scored as the edge serves them (int8, one text per run) and, for the quantization
gate, in fp32; the hand-written out-of-domain texts the new bundle gets right (confidence >= 0.6) are its golden
examples. Everything the old bundle measured is printed beside the new figures. The bundle is
written atomically, and only if the gates pass: int8 within a point of fp32, and the floors
every release keeps (cascade accuracy on each movie test split, ECE, the everyday floor set).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
from pathlib import Path

import msgspec
import numpy as np

from models import shift_calibration, vader_gold
from models.calibration import fit_temperature
from models.cascade_fit import Margins, cascade_probability, concatenate, evaluate, fit_cascade
from models.cascade_metrics import bundle_margins
from models.data import load_corpus, read_labelled_csv
from models.metrics import MAX_ECE, report
from models.split_head import HEAD_FILE, split_graph
from models.thin_evidence import CUSTOMER_VALIDATION, OUT_OF_DOMAIN, write
from sentiedge_core import BUNDLE_DIR, cascade, monitoring
from sentiedge_core.bundle import Golden, read_manifest
from sentiedge_core.inference import SentimentModel

# the floor: reported, never used to choose
EVERYDAY = Path(__file__).resolve().parents[1] / "tests" / "data" / "everyday_short.csv"
GATE_POINTS = 0.01
# Golden examples are out-of-domain texts the bundle gets right with at least this confidence: a
# coin-flip text (0.51) would refuse every adapted candidate for a change too small to matter.
GOLDEN_MIN = 0.6
# What every release must keep (tests/integration/test_model.py checks the shipped bundle against
# the same floors): int8 cascade accuracy on each movie test split, its ECE, the everyday floor.
FLOORS = {"rotten_tomatoes": 0.84, "imdb": 0.91}
EVERYDAY_FLOOR = 0.85


def transformer_files(checkpoint: Path, staging: Path, fp32_layers: tuple[int, ...] = ()) -> dict[str, Path]:
    """int8 and fp32 encoder graphs cut at the pooled output, and the head (from the int8 export)."""
    from models import transformer_stage

    work = staging.with_name(staging.name + ".onnx")
    work.mkdir(parents=True, exist_ok=True)
    fp32 = transformer_stage.export_onnx(checkpoint, work / "model.fp32.onnx")
    int8 = transformer_stage.quantize(fp32, work / "model.int8.onnx", reduce_range=False, fp32_layers=fp32_layers)
    head = split_graph(int8, staging / "transformer.onnx")
    (staging / HEAD_FILE).write_text(json.dumps(head))
    split_graph(fp32, work / "pooled.fp32.onnx")
    shutil.copy(checkpoint / "tokenizer.json", staging / "transformer-tokenizer.json")
    return {"fp32": work / "pooled.fp32.onnx"}


def fp32_transformer_report(bundle: Path, fp32_graph: Path, test, temperature: float) -> dict:
    """The transformer stage alone on test with the fp32 encoder (for the quantization gate)."""
    from sentiedge_core.stages import TransformerStage, read_head

    stage = read_manifest(bundle).stage("transformer")
    fp32 = TransformerStage(fp32_graph, bundle / stage.tokenizer, max_len=stage.max_len, max_windows=stage.max_windows,
                            threads=2, head=read_head(bundle / stage.head))
    margins = np.concatenate([fp32.margins(test.texts[i:i + 64]) for i in range(0, len(test.texts), 64)])
    sources = np.asarray(test.sources)
    return {s: {"transformer": report(cascade.fast_probability(margins[sources == s], temperature),
                                      np.asarray(test.labels)[sources == s])} for s in sorted(set(test.sources))}


def gate_failures(test_int8: dict, fp32: dict, everyday_accuracy: float) -> list[str]:
    """Why a candidate may not ship (empty: it may): each int8 stage within GATE_POINTS of fp32,
    and the floors every release keeps, on exact accuracies from the confusion matrices."""
    def exact(r: dict) -> float:
        c = r["confusion"]
        return (c["true_negative"] + c["true_positive"]) / r["n"]

    failures = []
    for source, stages in test_int8.items():
        for stage, r in fp32.get(source, {}).items():
            if stage in stages and exact(r) - exact(stages[stage]) > GATE_POINTS:
                failures.append(f"{stage} int8 on {source} is {exact(r) - exact(stages[stage]):.4f} below fp32")
    for source, floor in FLOORS.items():
        cascade_ = test_int8[source]["cascade"]
        if exact(cascade_) < floor:
            failures.append(f"cascade accuracy on {source} test is {exact(cascade_):.4f}, below the floor {floor}")
        if cascade_["ece"] > MAX_ECE:
            failures.append(f"cascade ECE on {source} test is {cascade_['ece']:.4f}, above {MAX_ECE}")
    if everyday_accuracy < EVERYDAY_FLOOR:
        failures.append(f"everyday floor set at {everyday_accuracy:.4f}, below {EVERYDAY_FLOOR}")
    return failures


def validation_figures(val: Margins, customers: Margins, spec, rated: Margins | None = None) -> dict:
    """The fitted cascade on validation, per movie source and on the customer texts (and, with
    ``rated``, balanced accuracy per VADER domain)."""
    out = {}
    if rated is not None:
        for source in sorted(set(rated.sources.tolist())):
            part = rated.where(rated.sources == source)
            p, escalated = cascade_probability(part, spec)
            out[source] = {"balanced_accuracy": report(p, part.y)["balanced_accuracy"],
                           "escalation_rate": round(float(escalated.mean()), 4), "n": int(part.y.size)}
    for name, part in (("rotten_tomatoes", val.where(val.sources == "rotten_tomatoes")),
                       ("imdb", val.where(val.sources == "imdb")), ("customers", customers)):
        p, _ = cascade_probability(part, spec)
        r = report(p, part.y)
        out[name] = {"accuracy": r["accuracy"], "ece": r["ece"], "n": r["n"]}
    out["mean_accuracy"] = round(float(np.mean([out[k]["accuracy"] for k in ("rotten_tomatoes", "imdb", "customers")])),
                                 4)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.release", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path, nargs="?", help="the new transformer (a Hugging Face checkpoint)")
    parser.add_argument("--recalibrate", action="store_true",
                        help="no new transformer: keep the bundle's files and refit only the cascade")
    parser.add_argument("--version", required=True)
    parser.add_argument("--bundle", type=Path, default=BUNDLE_DIR, help="the bundle whose fast stage is kept")
    parser.add_argument("--out", type=Path, default=BUNDLE_DIR)
    parser.add_argument("--provenance", type=Path, help="JSON merged into the manifest's provenance")
    parser.add_argument("--keep-shift-fit", action="store_true",
                        help="with --recalibrate: keep the base bundle's calibration-under-shift choice (its "
                             "stackers are fitted again, identically) instead of choosing again")
    parser.add_argument("--validate-only", action="store_true",
                        help="stop after fitting on validation and print the candidate's validation figures "
                             "(how candidates are compared; test is not scored)")
    parser.add_argument("--fp32-layers", default="",
                        help="encoder layers whose MatMuls stay fp32, comma-separated (e.g. 0,5; default: none)")
    parser.add_argument("--mixed-routing", action="store_true",
                        help="fit the short route's threshold on the VADER validation split's rated tweets, "
                             "product and news sentences and the customer validation texts beside the movie "
                             "validation split (default: movie validation only)")
    parser.add_argument("--sdist", help="with --mixed-routing: the vaderSentiment 3.3.2 sdist (default: build/data/)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    try:
        args.fp32_layers = tuple(int(v) for v in args.fp32_layers.split(",") if v.strip())
    except ValueError:
        parser.error(f"--fp32-layers takes layer numbers like 0,5, not {args.fp32_layers!r}")
    if (args.checkpoint is None) == (not args.recalibrate):
        parser.error("give either a CHECKPOINT or --recalibrate")
    if args.keep_shift_fit and not args.recalibrate:
        parser.error("--keep-shift-fit goes with --recalibrate (a new transformer needs its own choice)")

    old = read_manifest(args.bundle)
    staging = Path("build") / f"release-{args.version}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in ("fast.onnx", "fast-tokenizer.json"):
        shutil.copy2(args.bundle / name, staging / name)
    if args.recalibrate:  # every file of the transformer stage, early exits included
        stage_files = old.stage("transformer").files()
        for name in stage_files:
            shutil.copy2(args.bundle / name, staging / name)
    else:
        graphs = transformer_files(args.checkpoint, staging, args.fp32_layers)
        stage_files = [HEAD_FILE, "transformer-tokenizer.json", "transformer.onnx"]
    files = sorted({"fast-tokenizer.json", "fast.onnx", *stage_files})
    # new weights drop the heads fitted on the old ones: the early exits (models.early_exit) and the
    # neutral class (models.neutral) are fitted again on the new bundle
    stages = old.stages if args.recalibrate else [
        msgspec.structs.replace(s, exits=[], neutral="") if s.name == "transformer" else s for s in old.stages]
    # a new release drops the deep stage's head: its stacker reads the old cascade's answers (fit again: models.deep)
    draft = msgspec.structs.replace(old, version=args.version, golden=[], files={f: "" for f in files}, stages=stages,
                                    deep_stage="", label_set=old.label_set if args.recalibrate else [])
    write(staging, staging, draft)
    model = SentimentModel(staging, threads=args.threads, check_golden=False)

    corpus = load_corpus()
    val = bundle_margins(model, corpus.validation, "validation int8")
    transformer_t = fit_temperature(val.transformer, val.y)
    customers = read_labelled_csv(str(CUSTOMER_VALIDATION))
    cust = bundle_margins(model, customers, "customer validation")
    rated = None
    if args.mixed_routing:  # the VADER validation split's polar texts (tweets, Amazon, NYT sentences)
        rated = bundle_margins(model, vader_gold.polar(vader_gold.load_splits(args.sdist)["validation"]),
                               "rated validation")
    spec, routes = fit_cascade(val, old.cascade.long_text_tokens,
                               short_extra=None if rated is None else concatenate(rated, cust))
    keep = old.metrics.get("calibration_under_shift", {}).get("chosen") if args.keep_shift_fit else None
    spec, shift = shift_calibration.choose(spec, val, cust, keep=keep)
    stages = [msgspec.structs.replace(s, temperature=transformer_t) if s.name == "transformer" else s
              for s in draft.stages]
    draft = msgspec.structs.replace(draft, cascade=spec, stages=stages)
    if args.validate_only:
        write(staging, staging, draft)  # the fitted candidate, for other validation sets (models.evaluate --vader)
        print(json.dumps({"checkpoint": str(args.checkpoint or args.bundle), "shift_calibration": shift["trials"],
                          "validation_int8": validation_figures(val, cust, spec, rated), "routes": routes,
                          "candidate": str(staging)}))
        return 0
    write(staging, staging, draft)
    model = SentimentModel(staging, threads=args.threads, check_golden=False)

    test = bundle_margins(model, corpus.test, "test int8")
    test_int8 = evaluate(test, spec, transformer_t)
    p_all, escalated = cascade_probability(test, spec)
    fp32 = old.metrics["test_fp32"] if args.recalibrate else \
        fp32_transformer_report(staging, graphs["fp32"], corpus.test, transformer_t)
    for source, stages_ in old.metrics.get("test_fp32", {}).items():  # the fast stage is the same file
        if "fast" in stages_ and source in fp32:
            fp32[source]["fast"] = stages_["fast"]
    extra = {}
    for key, path in (("out_of_domain_int8", OUT_OF_DOMAIN), ("customer_validation_int8", CUSTOMER_VALIDATION),
                      ("everyday_floor_int8", EVERYDAY)):
        split = read_labelled_csv(str(path))
        m = bundle_margins(model, split, key)
        p, esc = cascade_probability(m, spec)
        extra[key] = (split, p, report(p, m.y) | {"escalation_rate": round(float(esc.mean()), 4),
                                                  "confidence_gap": shift_calibration.confidence_gap(p, m.y),
                                                  "ece_if_perfectly_calibrated": shift_calibration.ece_noise_floor(p)})
    failures = gate_failures(test_int8, fp32, extra["everyday_floor_int8"][2]["accuracy"])
    ood, p_ood, _ = extra["out_of_domain_int8"]
    served = [r.label for r in model.score(ood.texts)]  # a bundle with a neutral class may call one neutral
    golden = [Golden(text=t, label="positive" if y else "negative")
              for t, y, p, label in zip(ood.texts, ood.labels, p_ood, served, strict=False)
              if (p >= 0.5) == bool(y) and max(p, 1 - p) >= GOLDEN_MIN and label == ("positive" if y else "negative")]

    metrics = dict(old.metrics)
    metrics.update({
        "test_int8": test_int8,
        "test_fp32": fp32,
        "test_overall_int8": report(p_all, test.y) | {"escalation_rate": round(float(escalated.mean()), 4)},
        "validation_routes": routes,
        "out_of_domain_int8": extra["out_of_domain_int8"][2] | {"note": old.metrics["out_of_domain_int8"]["note"]},
        "customer_validation_int8": extra["customer_validation_int8"][2]
        | {"note": "160 hand-written customer texts; validation (the short route's and the thin stacker are "
                   "fitted on them: in-sample, see customer_validation_crossfitted_int8)"},
        "customer_validation_crossfitted_int8": report(shift["crossfitted_p"], cust.y)
        | {"confidence_gap": shift_calibration.confidence_gap(shift["crossfitted_p"], cust.y),
           "ece_if_perfectly_calibrated": shift_calibration.ece_noise_floor(shift["crossfitted_p"]),
           "note": f"each text scored by stackers fitted without its fold ({shift_calibration.FOLDS} folds)"},
        "calibration_under_shift": {"chosen": shift["chosen"], "trials": shift["trials"],
                                    "method": "models.shift_calibration"},
        "everyday_floor_int8": extra["everyday_floor_int8"][2]
        | {"note": "tests/data/everyday_short.csv, 120 texts; a floor, never used to fit or choose"},
        "note": f"{args.version}: " + ("cascade refitted, same weights" + "".join(
            f"; early exit after layer {e.layer} at confidence {e.confidence:g}"
            for e in draft.stage("transformer").exits) if args.recalibrate else
                                        f"transformer replaced ({args.checkpoint.name})")
        + "; every figure measured on this bundle",
    })
    provenance = dict(old.provenance)
    if args.provenance:
        provenance.update(json.loads(args.provenance.read_text()))
    manifest = msgspec.structs.replace(
        draft, golden=golden, metrics=metrics, provenance=provenance,
        reference=monitoring.reference_of(p_all.tolist(), old.labels),
        created=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat())

    print(f"\n{'':34}{old.version:>10}{args.version:>10}")
    for source, stages_ in test_int8.items():
        for stage, r in stages_.items():
            before = old.metrics["test_int8"][source][stage]
            print(f"{source + ' ' + stage + ' acc':34}{before['accuracy']:>10.4f}{r['accuracy']:>10.4f}")
            print(f"{source + ' ' + stage + ' ece':34}{before['ece']:>10.4f}{r['ece']:>10.4f}")
    crossfitted = metrics["customer_validation_crossfitted_int8"]
    print(f"{'customer validation cross-fitted':34}{'':>10}{crossfitted['accuracy']:>6.4f} / {crossfitted['ece']:.4f}")
    for key in ("out_of_domain_int8", "customer_validation_int8", "everyday_floor_int8"):
        r = extra[key][2]
        print(f"{key + ' acc / ece':34}{'':>10}{r['accuracy']:>6.4f} / {r['ece']:.4f}")
    print(f"transformer temperature {transformer_t:.3f}; routes {json.dumps(routes)}; {len(golden)} golden examples")
    if failures:
        print("RELEASE GATE FAILED, nothing written:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    write(staging, args.out, manifest)
    SentimentModel(args.out, threads=args.threads)  # digests and golden examples check out
    print(f"wrote {args.out}: {manifest.name} {manifest.version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
