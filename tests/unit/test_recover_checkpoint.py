"""models.recover_checkpoint: the int8 graph's weights, named as the Hugging Face model names them.

A numpy BERT forward pass over the recovered weights must give the pooled vector the
graph itself computes; a weight matched to the wrong layer (query for key, say) cannot.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.recover_checkpoint import bundle_weights
from sentiedge_core import BUNDLE_DIR
from sentiedge_core.encoding import WindowEncoder
from sentiedge_core.inference import SentimentModel

LAYERS, HEADS, DIM = 6, 12, 384


@pytest.fixture(scope="module")
def weights():
    return bundle_weights(BUNDLE_DIR)  # from every piece of the encoder (cut at the early exits)


def _layer_norm(x, w, b, eps=1e-12):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def _gelu(x):
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def _pooled(w, ids: np.ndarray) -> np.ndarray:
    def linear(name, x):
        return x @ w[f"{name}.weight"].T + w[f"{name}.bias"]

    x = (w["bert.embeddings.word_embeddings.weight"][ids] + w["bert.embeddings.position_embeddings.weight"][:len(ids)]
         + w["bert.embeddings.token_type_embeddings.weight"][0])
    x = _layer_norm(x, w["bert.embeddings.LayerNorm.weight"], w["bert.embeddings.LayerNorm.bias"])
    for i in range(LAYERS):
        p = f"bert.encoder.layer.{i}"
        q, k, v = (linear(f"{p}.attention.self.{n}", x).reshape(len(ids), HEADS, -1).transpose(1, 0, 2)
                   for n in ("query", "key", "value"))
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(DIM // HEADS)
        attn = np.exp(scores - scores.max(-1, keepdims=True))
        attn /= attn.sum(-1, keepdims=True)
        context = (attn @ v).transpose(1, 0, 2).reshape(len(ids), DIM)
        x = _layer_norm(linear(f"{p}.attention.output.dense", context) + x,
                        w[f"{p}.attention.output.LayerNorm.weight"], w[f"{p}.attention.output.LayerNorm.bias"])
        hidden = _gelu(linear(f"{p}.intermediate.dense", x))
        x = _layer_norm(linear(f"{p}.output.dense", hidden) + x,
                        w[f"{p}.output.LayerNorm.weight"], w[f"{p}.output.LayerNorm.bias"])
    return np.tanh(linear("bert.pooler.dense", x[0]))


def test_every_weight_is_recovered_with_its_torch_shape(weights):
    for i in range(LAYERS):
        p = f"bert.encoder.layer.{i}"
        for name in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            assert weights[f"{p}.{name}.weight"].shape == (DIM, DIM)
        assert weights[f"{p}.intermediate.dense.weight"].shape == (4 * DIM, DIM)
        assert weights[f"{p}.output.dense.weight"].shape == (DIM, 4 * DIM)
    assert weights["bert.embeddings.word_embeddings.weight"].shape == (30522, DIM)
    assert weights["bert.pooler.dense.weight"].shape == (DIM, DIM)
    assert all(v.dtype == np.float32 and np.isfinite(v).all() for v in weights.values())


def test_a_numpy_forward_over_the_recovered_weights_gives_the_graphs_margins(weights):
    import json

    head = json.loads((BUNDLE_DIR / "transformer-head.json").read_text())
    w, b = np.asarray(head["weights"]), np.asarray(head["bias"])
    encoder = WindowEncoder(BUNDLE_DIR / "transformer-tokenizer.json", max_len=128, max_windows=1)
    stage = SentimentModel(BUNDLE_DIR, check_golden=False).transformer_stage  # run to the end: every piece
    swapped = dict(weights)  # the mistake a wrong match would make: query and key exchanged
    for role, other in (("query", "key"), ("key", "query")):
        swapped[f"bert.encoder.layer.0.attention.self.{role}.weight"] = weights[
            f"bert.encoder.layer.0.attention.self.{other}.weight"]

    def margin(pooled):
        logits = w @ pooled + b
        return float(logits[1] - logits[0])

    texts = ["The refund was processed quickly and the agent was kind.", "Broke after a week, never again.",
             "A dull, lifeless film.", "Loved every minute of it.", "The app keeps crashing.",
             "Great value for money.", "Worst hotel ever.", "Setup took five minutes."]
    graph, ours, wrong = [], [], []
    for text in texts:
        ids = np.asarray([encoder.windows_of(encoder.token_ids([text])[0])[0]], dtype=np.int64)
        graph.append(margin(stage.pooled([text])[0]))
        ours.append(margin(_pooled(weights, ids[0])))
        wrong.append(margin(_pooled(swapped, ids[0])))
    # The graph quantizes activations per run (dynamic int8); the weights are the same.
    assert np.corrcoef(graph, ours)[0, 1] > 0.99
    assert np.abs(np.subtract(graph, ours)).max() < 1.0
    assert np.abs(np.subtract(graph, wrong)).max() > 2.0
