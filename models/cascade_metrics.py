"""A bundle's test-split metrics, measured on the bundle itself (as the edge serves it).

Used where a bundle is rewritten without retraining (:mod:`models.split_head`) and by the
adaptation benchmark. The int8 transformer scores one text per run, as the edge does; every text is run to the
end, and which early exit (if any) would have answered it is kept beside its margin.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.cascade_fit import Margins, cascade_probability, evaluate, negated
from models.data import Split, load_corpus
from models.metrics import report
from sentiedge_core import monitoring
from sentiedge_core.inference import SentimentModel
from sentiedge_core.stages import Pass


def transformer_runs(model: SentimentModel, split: Split, progress: str = "",
                     keep_features: bool = False) -> list[Pass]:
    """Each text run to the end on its own, as the edge serves it (with the exits' verdicts)."""
    from tqdm import tqdm

    stage = model.transformer_stage
    return [stage.forward([t], early=False, keep_features=keep_features)
            for t in tqdm(split.texts, desc=progress or "transformer", unit="text", leave=False)]


def bundle_margins(model: SentimentModel, split: Split, progress: str = "",
                   runs: list[Pass] | None = None) -> Margins:
    """Both stages' margins for ``split`` (``runs``: its transformer runs, when already made)."""
    fast, tokens = model.fast_stage.margins(split.texts) if split.texts else (np.zeros(0), np.zeros(0, int))
    stage = model.transformer_stage
    runs = transformer_runs(model, split, progress) if runs is None else runs
    transformer = np.asarray([stage.margins_of(r.pooled)[0] for r in runs], np.float64)
    exit_p = np.asarray([r.exit_p[0] for r in runs], np.float64) if stage.exits else None
    return Margins(np.asarray(fast, np.float64), np.asarray(tokens), transformer, split.y,
                   np.asarray(split.sources), negated(split.texts), exit_p)


def measure(bundle: Path, threads: int = 2) -> dict:
    """test_int8 (per source and stage), test_overall_int8 and the drift reference."""
    model = SentimentModel(bundle, threads=threads)
    test = bundle_margins(model, load_corpus().test, "test int8")
    spec = model.manifest.cascade
    p_all, escalated = cascade_probability(test, spec)
    return {"test_int8": evaluate(test, spec, model.manifest.stage("transformer").temperature),
            "test_overall_int8": report(p_all, test.y) | {"escalation_rate": round(float(escalated.mean()), 4)},
            "reference": monitoring.reference_of(p_all.tolist(), model.labels)}
