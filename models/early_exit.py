"""Early exits inside the transformer stage: a bundle whose confident texts stop part-way (``train`` extra).

    python -m models.early_exit --version 1.5.0 [--bundle models/sentiment-cascade] [--layers 3,4]
                                [--out models/sentiment-cascade] [--validate-only]

The shipped int8 encoder is cut after the given layers (the weights are not touched: a text
that runs to the end gets the margin the uncut graph gives, bit for bit). At each cut a linear
head reads the hidden states mean-pooled over the text's tokens. It is fitted on training
texts only: Rotten Tomatoes train, the customer training texts and 1,500 IMDB training
reviews (a fixed draw). Then, on validation only:

* each exit's temperatures, one for texts of one window and one for longer texts, on the
  escalated movie and customer validation texts (the only texts an exit ever answers);
* each exit's confidence, from a grid of 0.80-0.99 (1.0 = never): the pair that runs the
  fewest encoder layers per escalated validation text, such that on each validation set
  (Rotten Tomatoes, IMDB, customers) the cascade's accuracy does not fall and its ECE
  rises by at most ``ECE_SLACK``. The exits' probabilities here are cross-fitted (each
  text's temperatures fitted without its fold), so the choice does not flatter calibration.

The first graph hands the expanded attention mask on to the later pieces (``carried_*``), so
no piece computes it again.

The candidate is then released with :mod:`models.release` ``--recalibrate --keep-shift-fit``,
which fits the cascade again to the same result (the margins of texts run to the end are
unchanged, and the base's calibration-under-shift choice is kept: the exits were chosen for that
cascade), scores the test splits as the edge serves them and applies the release gates.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import shutil
import sys
from pathlib import Path

import msgspec
import numpy as np

from models.calibration import fit_logistic, fit_temperature
from models.cascade_fit import Margins
from models.cascade_metrics import bundle_margins, transformer_runs
from models.data import Split, load_corpus, read_labelled_csv
from models.metrics import expected_calibration_error
from models.thin_evidence import CUSTOMER_VALIDATION, write
from sentiedge_core import BUNDLE_DIR, cascade
from sentiedge_core.bundle import ExitSpec, read_manifest
from sentiedge_core.inference import SentimentModel
from sentiedge_core.stages import CARRIED, Exit, Head

CUSTOMER_TRAIN = Path(__file__).resolve().parent / "customer_train.csv"
IMDB_TRAIN_TEXTS = 1500  # long reviews cost ~25x a snippet to encode; a draw is enough for a linear head
DRAW_SEED = 20261206
CONFIDENCES = [*np.round(np.arange(0.80, 0.995, 0.01), 2).tolist(), 1.0]
ECE_SLACK = 0.005
FOLDS = 5
MIN_CALIBRATION_TEXTS = 30
LAYERS = 6  # MiniLM-L6: the cost of a text run to the end, in encoder layers


# --- cutting the graph --------------------------------------------------------------------------
LAYER_NODE = re.compile(r"/encoder/layer\.(\d+)/")


def layer_output(graph, layer: int) -> str:
    """The tensor holding the hidden states after ``layer`` encoder layers."""
    suffix = f"/encoder/layer.{layer - 1}/output/LayerNorm/LayerNormalization_output_0"
    names = [o for node in graph.node for o in node.output if o.endswith(suffix)]
    if len(names) != 1:
        raise SystemExit(f"cannot find the output of encoder layer {layer} (…{suffix}) in the graph")
    return names[0]


def handed_on(graph, first_layer: int) -> list[str]:
    """Tensors computed before the encoder layers (not constants: the expanded attention mask,
    in a Hugging Face export) that layers from ``first_layer`` on read. The first graph hands
    them on, so that no later piece computes them again (~0.1 ms a run)."""
    def layer(node) -> int | None:
        match = LAYER_NODE.search(node.name)
        return int(match.group(1)) if match else None

    producer = {o: n for n in graph.node for o in n.output}
    out = []
    for node in graph.node:
        if (layer(node) or -1) >= first_layer:
            for name in node.input:
                source = producer.get(name)
                if source is not None and layer(source) is None and source.op_type != "Constant" and name not in out:
                    out.append(name)
    return out


def _rename_inputs(graph, names: dict[str, str]) -> None:
    for node in graph.node:
        node.input[:] = [names.get(i, i) for i in node.input]
    for value in graph.input:
        value.name = names.get(value.name, value.name)


def cut(graph_path: Path, layers: list[int], out: Path, names: list[str], width: int) -> None:
    """Write ``len(layers) + 1`` graphs to ``out/names[i]``: the first from the token ids to
    ``hidden`` after ``layers[0]`` (and the ``carried_*`` tensors later pieces need), each next
    from ``hidden_in`` on, the last to ``pooled``."""
    import onnx
    import onnx.utils

    model = onnx.load(str(graph_path))
    tensors = [layer_output(model.graph, layer) for layer in layers]
    carried = handed_on(model.graph, layers[0])
    carried_names = {t: f"{CARRIED}{i}" for i, t in enumerate(carried)}
    extractor = onnx.utils.Extractor(model)
    bounds = [None, *tensors, "pooled"]
    for index, name in enumerate(names):
        start, end = bounds[index], bounds[index + 1]
        if start is None:
            part = extractor.extract_model(["input_ids", "attention_mask"], [end, *carried])
            outputs = {o.name: o for o in part.graph.output}
            for tensor, new in carried_names.items():
                part.graph.node.append(onnx.helper.make_node("Identity", [tensor], [new], name=f"{new}_out"))
                outputs[tensor].name = new
        else:
            part = extractor.extract_model([start, *carried], [end])
            _rename_inputs(part.graph, {start: "hidden_in", **carried_names})
        if end != "pooled":
            part.graph.node.append(onnx.helper.make_node("Identity", [end], ["hidden"], name="hidden_out"))
            output = next(o for o in part.graph.output if o.name == end)
            output.CopyFrom(onnx.helper.make_tensor_value_info("hidden", onnx.TensorProto.FLOAT,
                                                               ["windows", "tokens", width]))
        onnx.checker.check_model(part)
        onnx.save(part, str(out / name))


# --- fitting the exits --------------------------------------------------------------------------
def training_texts() -> Split:
    corpus = load_corpus()
    out = corpus.train.only("rotten_tomatoes")
    customers = read_labelled_csv(str(CUSTOMER_TRAIN))
    for t, y in zip(customers.texts, customers.labels, strict=False):
        out.add(t, y, "customers")
    imdb = corpus.train.only("imdb")
    for i in np.random.default_rng(DRAW_SEED).permutation(len(imdb))[:IMDB_TRAIN_TEXTS]:
        out.add(imdb.texts[i], int(imdb.y[i]), "imdb")
    return out


def features(model: SentimentModel, split: Split, progress: str) -> dict:
    """Per text, one run to the end: the pooled hidden states at every exit, its windows, and
    both stages' margins (one text per run, as the edge serves)."""
    runs = transformer_runs(model, split, progress, keep_features=True)
    return {"exits": [np.vstack([r.exit_features[k] for r in runs]) for k in range(len(model.transformer_stage.exits))],
            "windows": np.concatenate([r.windows for r in runs]),
            "margins": bundle_margins(model, split, runs=runs)}


def head_of(weights: list[float]) -> Head:
    """A two-row head whose margin is ``w · x + b`` (``weights`` = w followed by b)."""
    return Head(weights=[[0.0] * (len(weights) - 1), list(weights[:-1])], bias=[0.0, weights[-1]])


def fit_exit_temperatures(weights: list[list[float]], pooled: dict, rows: np.ndarray) -> list[tuple[float, float]]:
    """Each exit's temperatures (one window, several) on the escalated validation texts among ``rows``:
    those are the only texts an exit ever answers. A class with too few texts takes the pair's other."""
    out = []
    for k, w in enumerate(weights):
        margin = pooled["exits"][k] @ np.asarray(w[:-1]) + w[-1]
        chosen = rows & pooled["escalated"]
        pair = []
        for several in (False, True):
            inside = chosen & ((pooled["windows"] > 1) == several)
            use = inside if inside.sum() >= MIN_CALIBRATION_TEXTS else chosen
            pair.append(fit_temperature(margin[use], pooled["y"][use]))
        out.append((pair[0], pair[1]))
    return out


def crossfitted_probabilities(weights: list[list[float]], pooled: dict) -> list[np.ndarray]:
    """Every validation text's probability at each exit, with temperatures fitted without its fold:
    choosing the confidences on these does not flatter calibration."""
    n = len(pooled["y"])
    fold = np.random.default_rng(DRAW_SEED).integers(0, FOLDS, n)
    out = [np.zeros(n) for _ in weights]
    for f in range(FOLDS):
        temperatures = fit_exit_temperatures(weights, pooled, fold != f)
        inside = fold == f
        for k, (w, (t1, t2)) in enumerate(zip(weights, temperatures, strict=False)):
            exit_ = Exit(layer=0, head=head_of(w), temperature=t1, multi_window_temperature=t2, confidence=1.0)
            out[k][inside] = exit_.probability(pooled["exits"][k][inside], pooled["windows"][inside])
    return out


def first_exit(probabilities: list[np.ndarray], confidences: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """P(positive) from the first exit confident enough (NaN: none) and which exit (-1: none)."""
    n = len(probabilities[0])
    p, which = np.full(n, np.nan), np.full(n, -1)
    for k, (pk, c) in enumerate(zip(probabilities, confidences, strict=False)):
        fire = (which < 0) & (np.maximum(pk, 1 - pk) >= c)
        p[fire], which[fire] = pk[fire], k
    return p, which


def choose(parts: dict[str, Margins], probabilities: dict[str, list[np.ndarray]], spec,
           layers: list[int]) -> tuple[tuple[float, ...], list[dict]]:
    """The confidences running the fewest layers per escalated validation text, within the limits."""
    def score(confidences):
        out, spent, escalated_total = {}, 0.0, 0
        for name, m in parts.items():
            exit_p, which = first_exit(probabilities[name], confidences)
            p, escalated = cascade.combine(m.fast, m.transformer, m.tokens, spec, m.negated, exit_p)
            cost = np.where(which >= 0, np.asarray(layers)[np.maximum(which, 0)], LAYERS)
            spent += float(cost[escalated].sum())
            escalated_total += int(escalated.sum())
            out[name] = {"accuracy": float(((p >= 0.5) == m.y).mean()),
                         "ece": expected_calibration_error(p, m.y),
                         "exited_share_of_escalated": float((which[escalated] >= 0).mean())}
        return out, spent / max(escalated_total, 1)

    base, _ = score(tuple(1.01 for _ in layers))
    trials = []
    for confidences in itertools.product(CONFIDENCES, repeat=len(layers)):
        figures, cost = score(confidences)
        allowed = all(figures[n]["accuracy"] >= base[n]["accuracy"] - 1e-12
                      and figures[n]["ece"] <= base[n]["ece"] + ECE_SLACK for n in parts)
        trials.append({"confidences": list(confidences), "layers_per_escalated_text": round(cost, 4),
                       "allowed": allowed, "validation": {n: {k: round(v, 4) for k, v in f.items()}
                                                          for n, f in figures.items()}})
    best = min((t for t in trials if t["allowed"]),
               key=lambda t: (t["layers_per_escalated_text"], [-c for c in t["confidences"]]))
    baseline = {"confidences": None, "layers_per_escalated_text": float(LAYERS),
                "validation": {n: {k: round(v, 4) for k, v in f.items()} for n, f in base.items()}}
    return tuple(best["confidences"]), [baseline, best]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.early_exit", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", required=True)
    parser.add_argument("--bundle", type=Path, default=BUNDLE_DIR,
                        help="a bundle without exits, head outside the graph")
    parser.add_argument("--layers", default="3,4", help="encoder layers after which an exit sits (comma-separated)")
    parser.add_argument("--out", type=Path, default=BUNDLE_DIR)
    parser.add_argument("--validate-only", action="store_true", help="fit and choose, print, write nothing")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    layers = sorted({int(x) for x in args.layers.split(",") if x.strip()})
    if not layers or layers[0] < 1 or layers[-1] >= LAYERS:
        parser.error(f"--layers must lie between 1 and {LAYERS - 1}")
    old = read_manifest(args.bundle)
    stage = old.stage("transformer")
    if stage.exits or not stage.head:
        parser.error(f"{args.bundle} already has exits or keeps its head inside the graph")

    # A staging bundle with the cut graphs and placeholder exits that never answer.
    staging = Path("build") / f"early-exit-{args.version}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    rests = [f"transformer-after-{layer}.onnx" for layer in layers]
    width = msgspec.json.decode((args.bundle / stage.head).read_bytes(), type=Head).dimension
    cut(args.bundle / stage.model, layers, staging, [stage.model, *rests], width)
    heads = [f"transformer-exit-{layer}.json" for layer in layers]
    for name in heads:
        (staging / name).write_bytes(msgspec.json.encode(head_of([0.0] * (width + 1))))

    def draft(confidences, temperatures) -> None:
        exits = [ExitSpec(layer=layer, head=h, temperature=t[0], multi_window_temperature=t[1], confidence=c, rest=r)
                 for layer, h, t, c, r in zip(layers, heads, temperatures, confidences, rests, strict=False)]
        stages = [msgspec.structs.replace(s, exits=exits) if s.name == "transformer" else s for s in old.stages]
        files = sorted({*old.files, *heads, *rests})
        for name in files:
            if not (staging / name).exists():
                shutil.copy2(args.bundle / name, staging / name)
        write(staging, staging, msgspec.structs.replace(old, version=args.version, stages=stages,
                                                        files={f: "" for f in files}))

    draft([1.0] * len(layers), [(1.0, 1.0)] * len(layers))
    model = SentimentModel(staging, threads=args.threads, check_golden=False)
    corpus = load_corpus()
    train = features(model, training_texts(), "training texts")
    val = features(model, corpus.validation, "movie validation")
    cust = features(model, read_labelled_csv(str(CUSTOMER_VALIDATION)), "customer validation")

    # Validation, pooled: movie (both sources) then customers; the exits only ever see escalated texts.
    names = np.concatenate([val["margins"].sources, np.full(len(cust["margins"].y), "customers")])
    parts = {name: np.flatnonzero(names == name) for name in ("rotten_tomatoes", "imdb", "customers")}
    pooled = {"y": np.concatenate([val["margins"].y, cust["margins"].y]),
              "windows": np.concatenate([val["windows"], cust["windows"]]),
              "escalated": np.concatenate([cascade.escalate(m.fast, m.tokens, old.cascade, m.negated)
                                           for m in (val["margins"], cust["margins"])]),
              "exits": [np.concatenate([v, c]) for v, c in zip(val["exits"], cust["exits"], strict=False)]}
    margins_of = {name: val["margins"].where(names[: len(val["margins"].y)] == name)
                  for name in ("rotten_tomatoes", "imdb")} | {"customers": cust["margins"]}
    weights = [fit_logistic(train["exits"][k], train["margins"].y) for k in range(len(layers))]
    for k, w in enumerate(weights):
        (staging / heads[k]).write_bytes(msgspec.json.encode(head_of(w)))
    temperatures = fit_exit_temperatures(weights, pooled, np.ones(len(pooled["y"]), bool))
    crossfitted = crossfitted_probabilities(weights, pooled)
    probabilities = {name: [p[index] for p in crossfitted] for name, index in parts.items()}
    confidences, (baseline, best) = choose(margins_of, probabilities, old.cascade, layers)
    probe_accuracy = {name: [round(float(((p >= 0.5) == margins_of[name].y).mean()), 4) for p in ps]
                      for name, ps in probabilities.items()}
    report = {"layers": layers, "confidences": list(confidences),
              "temperatures_one_window_several": [[round(t, 4) for t in pair] for pair in temperatures],
              "exit_heads_alone_validation_accuracy": probe_accuracy, "without_exits": baseline,
              "chosen (validation figures cross-fitted)": best}
    print(json.dumps(report, indent=1))
    if args.validate_only:
        return 0

    draft(confidences, temperatures)
    provenance = staging.with_name(staging.name + ".provenance.json")
    provenance.write_text(json.dumps({"early_exits": report | {
        "method": "models.early_exit: linear heads over mean-pooled hidden states, fitted on Rotten Tomatoes "
                  f"train, customer_train.csv and {IMDB_TRAIN_TEXTS} IMDB training reviews; temperatures fitted on the "
                  "escalated validation texts (movie and customer; one per exit for texts of one window and one for "
                  f"longer ones); confidences chosen on validation with the exits' probabilities cross-fitted "
                  f"({FOLDS} folds)",
        "from": f"{old.name} {old.version}"}}))
    from models import release

    return release.main(["--recalibrate", "--keep-shift-fit", "--bundle", str(staging), "--version", args.version,
                         "--out", str(args.out), "--provenance", str(provenance), "--threads", str(args.threads)])


if __name__ == "__main__":
    sys.exit(main())
