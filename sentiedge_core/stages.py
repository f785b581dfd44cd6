"""The two cascade stages as ONNX Runtime sessions. Each returns raw logit margins
(positive minus negative logit); calibration and routing live in :mod:`sentiedge_core.cascade`.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import numpy as np
import onnxruntime as ort

from sentiedge_core.encoding import FastEncoder, WindowEncoder
from sentiedge_core.errors import BundleError


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


class Head(msgspec.Struct, frozen=True):
    """The transformer stage's classification layer, kept beside the encoder (bundle schema 1.3+):
    ``logits = weights · pooled + bias``, one row per label. Federated adaptation
    (:mod:`sentiedge_core.adaptation`) retrains only this and the cascade's stackers."""

    weights: list[list[float]]
    bias: list[float]

    @property
    def dimension(self) -> int:
        return len(self.weights[0])

    def margin_parameters(self) -> tuple[np.ndarray, float]:
        """The positive-minus-negative direction and offset: all a two-label margin depends on."""
        w = np.asarray(self.weights, dtype=np.float64)
        return w[1] - w[0], float(self.bias[1] - self.bias[0])


def read_head(path: Path) -> Head:
    try:
        head = msgspec.json.decode(path.read_bytes(), type=Head)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise BundleError(f"{path.name}: not a readable classification head: {exc}") from exc
    dims = {len(row) for row in head.weights}
    if len(head.weights) != 2 or len(head.bias) != 2 or len(dims) != 1 or 0 in dims:
        raise BundleError(f"{path.name}: a head needs 2 rows of equal, non-zero width and 2 biases")
    if not np.isfinite(np.asarray(head.weights)).all() or not np.isfinite(np.asarray(head.bias)).all():
        raise BundleError(f"{path.name}: the head holds a non-finite number")
    return head


class TransformerStage:
    """Fine-tuned MiniLM; a long text's margin is the mean over its windows.

    With a ``head`` the ONNX graph ends at the pooled encoder output (``pooled``) and the
    classification layer is applied here; a text's pooled vector is the mean over its
    windows (the head is linear, so this equals the mean of the windows' logits).
    Without one (bundles before 1.3) the graph returns ``logits`` itself."""

    def __init__(self, model_path: Path, tokenizer_path: Path, *, max_len: int, max_windows: int, threads: int = 1,
                 head: Head | None = None):
        self.encoder = WindowEncoder(tokenizer_path, max_len=max_len, max_windows=max_windows)
        self.session = session(model_path, threads)
        self.head = head
        if head is not None:
            outputs = {o.name: o.shape for o in self.session.get_outputs()}
            if "pooled" not in outputs or outputs["pooled"][-1] != head.dimension:
                raise BundleError(f"{model_path.name} has no 'pooled' output of width {head.dimension} for its head")
            self._direction, self._offset = head.margin_parameters()

    def _per_text(self, output: str, texts: list[str]) -> np.ndarray:
        batch = self.encoder.batch(texts)
        values = self.session.run([output], {"input_ids": batch.input_ids,
                                             "attention_mask": batch.attention_mask})[0]
        return batch.mean_over_owner(values)

    def pooled(self, texts: list[str]) -> np.ndarray:
        """Each text's pooled encoder output [n, dimension] (what the head reads)."""
        if self.head is None:
            raise BundleError("this bundle's transformer has no separate head, so no pooled output")
        return self._per_text("pooled", texts)

    def margins_of(self, pooled: np.ndarray) -> np.ndarray:
        return (np.asarray(pooled, np.float64) @ self._direction + self._offset).astype(np.float32)

    def margins(self, texts: list[str]) -> np.ndarray:
        if self.head is not None:
            return self.margins_of(self.pooled(texts))
        per_text = self._per_text("logits", texts)
        return (per_text[:, 1] - per_text[:, 0]).astype(np.float32)
