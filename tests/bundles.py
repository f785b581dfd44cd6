"""Bundles of earlier layouts, rebuilt from the release bundle for compatibility tests."""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np


def joined_transformer(release: Path):
    """The release's transformer as one graph from the token ids to ``pooled``: its pieces
    (cut at the early exits, 1.5+) put back together, or the graph itself when it has none."""
    import onnx  # in the test extra
    from onnx import compose

    manifest = json.loads((release / "manifest.json").read_text())
    stage = next(s for s in manifest["stages"] if s["name"] == "transformer")
    whole = onnx.load(str(release / stage["model"]))
    carried = [o.name for o in whole.graph.output if o.name.startswith("carried_")]  # handed on to each piece
    carry = "hidden"  # the hidden states the next piece goes on from
    for index, exit_ in enumerate(stage.get("exits", [])):
        prefix = f"rest{index}/"
        rest = onnx.load(str(release / exit_["rest"]))
        takes = {i.name for i in rest.graph.input}
        output = prefix + rest.graph.output[0].name  # "hidden" before the last exit, then "pooled"
        io_map = [(carry, "hidden_in")] + [(c, c) for c in carried if c in takes]
        whole = compose.merge_models(whole, rest, io_map=io_map, prefix2=prefix, outputs=[output, *carried])
        shared = {prefix + "input_ids": "input_ids", prefix + "attention_mask": "attention_mask"}
        for node in whole.graph.node:
            node.input[:] = [shared.get(i, i) for i in node.input]
        kept = [i for i in whole.graph.input if i.name not in shared]
        del whole.graph.input[:]
        whole.graph.input.extend(kept)
        carry = output
    if stage.get("exits"):
        whole.graph.node.append(onnx.helper.make_node("Identity", [carry], ["pooled"]))
        pooled = next(o for o in whole.graph.output if o.name == carry)
        pooled.name = "pooled"
        for o in [o for o in whole.graph.output if o.name in carried]:
            whole.graph.output.remove(o)
        # and the seams are undone (hand-ons and hidden-state outputs): one graph, as before the cut
        sources = {n.output[0]: n.input[0] for n in whole.graph.node if n.op_type == "Identity"
                   and (n.output[0] in carried or n.output[0].split("/")[-1] == "hidden")}
        for node in [n for n in whole.graph.node if n.op_type == "Identity" and n.output[0] in sources]:
            whole.graph.node.remove(node)
        for node in whole.graph.node:
            node.input[:] = [sources.get(i, i) for i in node.input]
    return whole


def without_exits(release: Path, out: Path, version: str = "1.4.9") -> Path:
    """The release bundle with its transformer in one piece and no early exits (the layout
    before 1.5): every escalated text runs the whole encoder."""
    import onnx

    whole = joined_transformer(release)
    shutil.copytree(release, out)
    manifest = json.loads((out / "manifest.json").read_text())
    stage = next(s for s in manifest["stages"] if s["name"] == "transformer")
    for exit_ in stage.pop("exits", []):
        for name in (exit_["head"], exit_["rest"]):
            (out / name).unlink()
            del manifest["files"][name]
    onnx.save(whole, str(out / stage["model"]))
    manifest["files"][stage["model"]] = hashlib.sha256((out / stage["model"]).read_bytes()).hexdigest()
    manifest["version"] = version
    (out / "manifest.json").write_text(json.dumps(manifest))
    # Golden examples belong to a version: keep those the whole encoder also gets right.
    from sentiedge_core.inference import SentimentModel

    got = SentimentModel(out, check_golden=False).score([g["text"] for g in manifest["golden"]])
    manifest["golden"] = [g for g, r in zip(manifest["golden"], got, strict=False) if r.label == g["label"]]
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def head_inside_graph(release: Path, out: Path, version: str = "1.2.9") -> Path:
    """The release bundle in the pre-1.3 layout: its head folded back into the transformer
    graph (``logits`` output), no head file, no early exits, no ``head`` in the manifest."""
    import onnx  # in the test extra
    from onnx import helper, numpy_helper

    release = without_exits(release, out.with_name(out.name + "-whole"))
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
    if manifest["files"].pop("transformer-neutral.json", None) is not None:  # the neutral class (1.6+) reads the head
        (out / "transformer-neutral.json").unlink()
        manifest.pop("label_set", None)
        manifest["golden"] = [g for g in manifest["golden"] if g["label"] != "neutral"]
    manifest["files"]["transformer.onnx"] = hashlib.sha256((out / "transformer.onnx").read_bytes()).hexdigest()
    for stage in manifest["stages"]:
        stage.pop("head", None)
        stage.pop("neutral", None)
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out
