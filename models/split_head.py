"""Move the transformer stage's classification layer out of its ONNX graph (needs ``onnx``).

    python -m models.split_head BUNDLE --version 1.3.0

Rewrites ``BUNDLE`` so that ``transformer.onnx`` ends at the pooled encoder output
(``pooled``, the pooler's tanh) and the classification layer lives in
``transformer-head.json`` (fp32, dequantized from the int8 graph). The edge applies the
head in numpy; federated adaptation (``control-plane models adapt``) retrains only it and
the cascade's stackers, so an adapted candidate keeps the same encoder file, byte for byte.

The head now reads the pooled vector in fp32 where the graph quantized it to int8 per run,
so margins move slightly: the test-split metrics and golden examples are measured again on
the rewritten bundle and replace the old ones.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

from sentiedge_core.bundle import MANIFEST, encode_manifest, read_manifest, sha256_file

HEAD_FILE = "transformer-head.json"
POOLED = "/inner/bert/pooler/activation/Tanh_output_0"


def split_graph(source: Path, out: Path) -> dict:
    """Write the graph cut at the pooler output; return the head as {weights, bias}."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    quantized = [n for n in inits if "classifier.weight" in n and n.endswith("_quantized")]
    if quantized:  # dynamic int8: the MatMul's B input, [dim, labels], per-channel scales
        base = quantized[0][: -len("_quantized")]
        q = inits[quantized[0]].astype(np.float64)
        weights = ((q - inits[base + "_zero_point"].astype(np.float64)) * inits[base + "_scale"].astype(np.float64)).T
    else:
        weights = next(v for n, v in inits.items() if "classifier.weight" in n).astype(np.float64)
        weights = weights if weights.shape[0] == 2 else weights.T  # Gemm keeps [labels, dim]
    bias = inits["inner.classifier.bias"].astype(np.float64)
    producers = {out: node for node in graph.node for out in node.output}
    needed, stack = set(), [POOLED]
    while stack:  # every node the pooled output depends on, and nothing else
        node = producers.get(stack.pop())
        if node is not None and id(node) not in needed:
            needed.add(id(node))
            stack.extend(node.input)
    keep = [node for node in graph.node if id(node) in needed]
    keep.append(helper.make_node("Identity", [POOLED], ["pooled"], name="pooled_output"))
    del graph.node[:]
    graph.node.extend(keep)
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info("pooled", onnx.TensorProto.FLOAT, ["batch", weights.shape[1]]))
    used = {i for n in graph.node for i in n.input}
    unused = [i for i in graph.initializer if i.name not in used]
    for init in unused:
        graph.initializer.remove(init)
    onnx.checker.check_model(model)
    onnx.save(model, str(out))
    return {"weights": weights.tolist(), "bias": bias.tolist()}


def split_bundle(bundle: Path, version: str, threads: int = 2) -> dict:
    """Rewrite a bundle in place (staged, then swapped); returns the new test metrics."""
    from models.cascade_metrics import measure

    manifest = read_manifest(bundle)
    stage = manifest.stage("transformer")
    if stage.head:
        raise SystemExit(f"{bundle}: the transformer's head is already separate ({stage.head})")
    staging = bundle.with_name(bundle.name + ".split")
    if staging.exists():
        shutil.rmtree(staging)
    shutil.copytree(bundle, staging)
    head = split_graph(bundle / stage.model, staging / stage.model)
    (staging / HEAD_FILE).write_text(json.dumps(head))
    stage.head = HEAD_FILE
    manifest.version = version
    manifest.files = {name: sha256_file(staging / name) for name in sorted({*manifest.files, HEAD_FILE})}
    (staging / MANIFEST).write_bytes(encode_manifest(manifest))
    metrics = measure(staging, threads)  # golden examples are checked on load
    manifest.reference = metrics.pop("reference")
    manifest.metrics = {**manifest.metrics, **metrics,
                        "note": f"{version}: the transformer's head moved out of the graph (fp32 pooled input); "
                                f"test_int8 and test_overall_int8 re-measured on this bundle"}
    (staging / MANIFEST).write_bytes(encode_manifest(manifest))
    shutil.rmtree(bundle)
    staging.rename(bundle)
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.split_head", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--version", required=True, help="the rewritten bundle's version")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    metrics = split_bundle(args.bundle, args.version, args.threads)
    print(json.dumps(metrics["test_int8"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
