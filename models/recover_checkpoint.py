"""Recover a trainable fp32 checkpoint from a shipped bundle's int8 transformer (``train`` extra).

    python -m models.recover_checkpoint BUNDLE OUT_DIR

The release's fp32 checkpoint lives only in the build cache of the machine that trained
it. The bundle holds the same weights in int8: dequantizing them (``(q - zero) * scale``,
per channel for the encoder's MatMuls, per tensor for the embeddings) gives back the model
the edge serves, as a Hugging Face checkpoint that training can continue from. Each
quantized MatMul is matched to its Linear layer through the bias its output is added to.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from sentiedge_core.bundle import read_manifest


def dequantized_weights(onnx_path: Path) -> dict[str, np.ndarray]:
    """Hugging Face parameter name -> fp32 array, for every weight in the graph."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def dequant(base: str) -> np.ndarray:
        q = inits[base + "_quantized"].astype(np.float32)
        return (q - inits[base + "_zero_point"].astype(np.float32)) * inits[base + "_scale"].astype(np.float32)

    def bias_after(tensor: str, depth: int = 6) -> str:
        """The ``*.bias`` initializer added to a MatMul's output, a few nodes downstream."""
        frontier = [tensor]
        for _ in range(depth):
            nxt = []
            for t in frontier:
                for node in consumers.get(t, []):
                    biases = [i for i in node.input if i.endswith(".bias") and i in inits]
                    if node.op_type == "Add" and biases:
                        return biases[0]
                    nxt.extend(node.output)
            frontier = nxt
        raise ValueError(f"{onnx_path}: no bias follows {tensor}")

    out: dict[str, np.ndarray] = {}
    for name, value in inits.items():
        if name.startswith("inner.") and not name.endswith(("_scale", "_zero_point", "_quantized")):
            out[name[len("inner."):]] = value.astype(np.float32)
    for name in inits:
        if not name.endswith("_quantized"):
            continue
        base = name[: -len("_quantized")]
        if base.startswith("inner.") and "embeddings" in base:
            out[base[len("inner."):]] = dequant(base)
            continue
        matmul = next(n for n in consumers[name] if n.op_type == "MatMulInteger")
        bias = bias_after(matmul.output[0])
        out[bias[len("inner."):-len(".bias")] + ".weight"] = dequant(base).T  # MatMul B is [in, out]
    return out


def bundle_weights(bundle: Path) -> dict[str, np.ndarray]:
    """Every encoder weight of a bundle's transformer, gathered from each of its graphs (one,
    or one per piece where early exits cut it)."""
    stage = read_manifest(bundle).stage("transformer")
    weights: dict[str, np.ndarray] = {}
    for name in (stage.model, *(e.rest for e in stage.exits)):
        weights.update(dequantized_weights(bundle / name))
    return weights


def recover(bundle: Path, out_dir: Path) -> Path:
    """Write ``out_dir`` as a checkpoint that ``AutoModelForSequenceClassification`` loads."""
    import torch

    from models import transformer_stage

    manifest = read_manifest(bundle)
    stage = manifest.stage("transformer")
    if not stage.head:
        raise SystemExit(f"{bundle}: the transformer's head is inside its graph; split it first (models.split_head)")
    weights = bundle_weights(bundle)
    head = json.loads((bundle / stage.head).read_text())
    weights["classifier.weight"] = np.asarray(head["weights"], dtype=np.float32)
    weights["classifier.bias"] = np.asarray(head["bias"], dtype=np.float32)
    base = transformer_stage.base_model_dir()
    model = transformer_stage.classifier(base)
    state = model.state_dict()
    missing = [k for k in state if k not in weights and not k.endswith("position_ids")]
    if missing:
        raise SystemExit(f"{bundle}: the graph lacks {missing[:3]}")
    with torch.no_grad():
        for key, tensor in state.items():
            if key in weights:
                if tuple(tensor.shape) != weights[key].shape:
                    raise SystemExit(f"{bundle}: {key} is {weights[key].shape}, expected {tuple(tensor.shape)}")
                tensor.copy_(torch.from_numpy(weights[key]))
    transformer_stage.save(model, base, out_dir, {"recovered_from": f"{manifest.name} {manifest.version}"})
    return out_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.recover_checkpoint", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    print(recover(args.bundle, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
