"""Multiply-adds of an ONNX graph, counted as the paper counts them (and as ``edge-mnv2 models`` does from
the PyTorch module): convolutions and fully connected layers; additions, activations and pooling are
free. Works on any ONNX file, also one edge-mnv2 did not export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import shape_inference

from edge_mnv2.errors import ModelFileError


def onnx_macs(path: str | Path) -> int:
    """Multiply-adds of one inference of the (static-shape) ONNX model at ``path``."""
    model = shape_inference.infer_shapes(onnx.load(str(path)))
    graph = model.graph
    shapes: dict[str, tuple[int, ...]] = {}
    for value in (*graph.input, *graph.value_info, *graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims):
            shapes[value.name] = tuple(d.dim_value for d in dims)
    for init in graph.initializer:
        shapes[init.name] = tuple(init.dims)
    total = 0
    for node in graph.node:
        if node.op_type == "Conv":
            out, weight = shapes.get(node.output[0]), shapes.get(node.input[1])
            if out is None or weight is None:
                raise ModelFileError(
                    f"{path}: the shapes of Conv node {node.name!r} are not static; export with a fixed input size"
                )
            total += int(np.prod(out)) * int(np.prod(weight[1:]))  # each output: Cin/groups x kh x kw
        elif node.op_type in ("Gemm", "MatMul"):
            out, a = shapes.get(node.output[0]), shapes.get(node.input[0])
            if out is None or a is None:
                raise ModelFileError(f"{path}: the shapes of {node.op_type} node {node.name!r} are not static")
            trans_a = next((attr.i for attr in node.attribute if attr.name == "transA"), 0)
            total += int(np.prod(out)) * (a[-2] if trans_a else a[-1])
    return total
