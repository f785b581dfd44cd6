"""First cascade stage: a hashed uni+bigram embedding bag ("fastText" style).

The WordPiece tokenizer is trained here with ``tokenizers``; features come from
:class:`sentiedge_core.encoding.FastEncoder`. The model is trained with torch (``train``
extra) and written to ONNX directly with ``onnx.helper``:
logits = (sum of embedding rows of the features / feature count) @ W + b.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

from sentiedge_core.encoding import FastEncoder, normalize

FAST_RECIPE = {
    "vocab_size": 20000,
    "buckets": 1 << 18,
    "max_tokens": 2048,
    "dim": 12,
    "max_epochs": 4,
    "batch_size": 64,
    "lr": 0.01,
    "seed": 7,
}


def train_tokenizer(texts: list[str], path: Path, vocab_size: int) -> Path:
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True, clean_text=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=["[PAD]", "[UNK]"], show_progress=False)
    tokenizer.train_from_iterator((normalize(t) for t in texts), trainer=trainer, length=len(texts))
    tokenizer.save(str(path))
    return path


def train(texts: list[str], labels: list[int], val_texts: list[str], val_labels: list[int],
          tokenizer_path: Path, recipe: dict = FAST_RECIPE) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Train the embedding bag; keeps the epoch with the best validation accuracy."""
    import torch
    from tqdm import trange

    torch.manual_seed(recipe["seed"])
    rng = np.random.default_rng(recipe["seed"])
    encoder = FastEncoder(tokenizer_path, buckets=recipe["buckets"], max_tokens=recipe["max_tokens"])
    feats = encoder.features(texts)
    val_batch = encoder.batch(val_texts)
    y = torch.tensor(labels)

    bag = torch.nn.EmbeddingBag(encoder.num_features, recipe["dim"], mode="mean", padding_idx=0, sparse=True)
    torch.nn.init.uniform_(bag.weight, -0.05, 0.05)
    with torch.no_grad():
        bag.weight[0].zero_()
    head = torch.nn.Linear(recipe["dim"], 2)
    # Sparse updates: a batch touches a few thousand of the ~280k rows.
    optimizers = [torch.optim.SparseAdam(list(bag.parameters()), lr=recipe["lr"]),
                  torch.optim.Adam(list(head.parameters()), lr=recipe["lr"])]

    def val_logits() -> np.ndarray:
        with torch.no_grad():
            emb = bag.weight[torch.from_numpy(val_batch.ids)].sum(1) / torch.from_numpy(val_batch.counts)
            return head(emb).numpy()

    best = (-1.0, None, 0)
    history = []
    for epoch in trange(recipe["max_epochs"], desc="train fast stage", unit="epoch"):
        order = rng.permutation(len(feats))
        for start in range(0, len(order), recipe["batch_size"]):
            batch = order[start : start + recipe["batch_size"]]
            flat = torch.from_numpy(np.concatenate([feats[i] for i in batch]))
            offsets = torch.tensor(np.cumsum([0] + [feats[i].size for i in batch[:-1]]))
            loss = torch.nn.functional.cross_entropy(head(bag(flat, offsets)), y[batch])
            for optimizer in optimizers:
                optimizer.zero_grad()
            loss.backward()
            for optimizer in optimizers:
                optimizer.step()
        acc = float((val_logits().argmax(1) == np.asarray(val_labels)).mean())
        history.append(round(acc, 4))
        if acc > best[0]:
            state = (bag.weight.detach().numpy().copy(), head.weight.detach().numpy().T.copy(),
                     head.bias.detach().numpy().copy())
            best = (acc, state, epoch + 1)
    emb, w, b = best[1]
    emb[0] = 0.0
    return emb, w, b, {"best_epoch": best[2], "validation_accuracy_by_epoch": history}


def export_onnx(emb: np.ndarray, w: np.ndarray, b: np.ndarray, path: Path) -> Path:
    nodes = [
        helper.make_node("Gather", ["embedding", "ids"], ["gathered"], name="embedding_gather"),
        helper.make_node("ReduceSum", ["gathered", "sum_axes"], ["summed"], keepdims=0, name="bag_sum"),
        helper.make_node("Div", ["summed", "counts"], ["mean"], name="bag_mean"),
        helper.make_node("MatMul", ["mean", "head_weight"], ["projected"], name="head_matmul"),
        helper.make_node("Add", ["projected", "head_bias"], ["logits"], name="head_bias_add"),
    ]
    graph = helper.make_graph(
        nodes, "fast_stage",
        inputs=[helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "features"]),
                helper.make_tensor_value_info("counts", TensorProto.FLOAT, ["batch", 1])],
        outputs=[helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2])],
        initializer=[numpy_helper.from_array(emb.astype(np.float32), "embedding"),
                     numpy_helper.from_array(np.asarray([1], dtype=np.int64), "sum_axes"),
                     numpy_helper.from_array(w.astype(np.float32), "head_weight"),
                     numpy_helper.from_array(b.astype(np.float32), "head_bias")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="sentiedge")
    model.ir_version = 9
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def quantize(fp32_path: Path, int8_path: Path) -> Path:
    """int8 embedding table (the whole size of the model); the 2-way head stays fp32."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(fp32_path), str(int8_path), weight_type=QuantType.QInt8, op_types_to_quantize=["Gather"])
    return int8_path
