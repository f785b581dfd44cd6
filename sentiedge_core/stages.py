"""The two cascade stages as ONNX Runtime sessions. Each returns raw logit margins
(positive minus negative logit); calibration and routing live in :mod:`sentiedge_core.cascade`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from sentiedge_core.encoding import FastEncoder, WindowEncoder


def session(model_path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])


class FastStage:
    """Embedding bag over WordPiece unigrams and hashed bigrams: ~0.1 ms a text."""

    def __init__(self, model_path: Path, tokenizer_path: Path, *, buckets: int, max_tokens: int, threads: int = 1):
        self.encoder = FastEncoder(tokenizer_path, buckets=buckets, max_tokens=max_tokens)
        self.session = session(model_path, threads)

    def margins(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Logit margins and each text's token count (which decides its route)."""
        batch = self.encoder.batch(texts)
        logits = self.session.run(["logits"], {"ids": batch.ids, "counts": batch.counts})[0]
        features = np.count_nonzero(batch.ids, axis=1)
        tokens = np.where(features > 0, (features + 1) // 2, 0)
        return (logits[:, 1] - logits[:, 0]).astype(np.float32), tokens


class TransformerStage:
    """Fine-tuned MiniLM; a long text's margin is the mean over its windows."""

    def __init__(self, model_path: Path, tokenizer_path: Path, *, max_len: int, max_windows: int, threads: int = 1):
        self.encoder = WindowEncoder(tokenizer_path, max_len=max_len, max_windows=max_windows)
        self.session = session(model_path, threads)

    def margins(self, texts: list[str]) -> np.ndarray:
        batch = self.encoder.batch(texts)
        logits = self.session.run(["logits"], {"input_ids": batch.input_ids,
                                               "attention_mask": batch.attention_mask})[0]
        per_text = batch.mean_over_owner(logits)
        return (per_text[:, 1] - per_text[:, 0]).astype(np.float32)
