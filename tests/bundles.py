"""Bundles of earlier layouts, rebuilt from the release bundle for compatibility tests."""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np


def head_inside_graph(release: Path, out: Path, version: str = "1.2.9") -> Path:
    """The release bundle in the pre-1.3 layout: its head folded back into the transformer
    graph (``logits`` output), no head file, no ``head`` in the manifest."""
    import onnx  # in the test extra
    from onnx import helper, numpy_helper

    head = json.loads((release / "transformer-head.json").read_text())
    graph_model = onnx.load(str(release / "transformer.onnx"))
    graph = graph_model.graph
    graph.initializer.extend([numpy_helper.from_array(np.asarray(head["weights"], np.float32).T, "head_w"),
                              numpy_helper.from_array(np.asarray(head["bias"], np.float32), "head_b")])
    graph.node.extend([helper.make_node("MatMul", ["pooled", "head_w"], ["head_mm"]),
                       helper.make_node("Add", ["head_mm", "head_b"], ["logits"])])
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, ["batch", 2]))
    shutil.copytree(release, out)
    onnx.save(graph_model, str(out / "transformer.onnx"))
    (out / "transformer-head.json").unlink()
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["version"] = version
    del manifest["files"]["transformer-head.json"]
    manifest["files"]["transformer.onnx"] = hashlib.sha256((out / "transformer.onnx").read_bytes()).hexdigest()
    for stage in manifest["stages"]:
        stage.pop("head", None)
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out
