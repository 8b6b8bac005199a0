"""ONNX -> .tflite (LiteRT) for the project's CNN graphs, written with the flatbuffer schema LiteRT ships.

No TensorFlow: the graph is translated operator by operator into the TFLite schema's object API, so the
.tflite file holds exactly the ONNX model's float32 weights. TFLite kernels are NHWC, so every 4-D
activation that is NCHW in ONNX is stored NHWC (tracked per tensor); the input is ``[1, H, W, 3]``.
Clip(0, 6) and Relu after a convolution, addition or dense layer are fused into it, as the TFLite
converter does, so XNNPACK sees the same graph a converted Keras model would give it.
"""

from __future__ import annotations

import collections
import json
import os
from dataclasses import dataclass
from pathlib import Path

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as tfl

from edge_mnv2.export import load_onnx, read_metadata
from edge_mnv2.export.tflite_graph import OP, SUPPORTED, TO_NCHW, TO_NHWC, AlignedBufferT
from edge_mnv2.export.tflite_ops import SCHEMA_VERSION, OnnxToTflite

__all__ = ["SCHEMA_VERSION", "SUPPORTED", "TfliteModel", "describe_tflite", "to_tflite_input", "write_tflite"]

_OP_NAMES = {v: k for k, v in vars(OP).items() if not k.startswith("_")}


@dataclass(frozen=True)
class TfliteModel:
    """A written .tflite file: its NHWC input shape, its output shape, and how the output is laid out."""

    path: Path
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    output_layout: str  # "nhwc": an NCHW ONNX activation returned NHWC; "same": the ONNX layout

    def to_onnx_layout(self, y: np.ndarray) -> np.ndarray:
        """The TFLite output in the ONNX model's layout, to compare with ONNX Runtime or PyTorch directly."""
        return np.ascontiguousarray(y.transpose(TO_NCHW)) if self.output_layout == "nhwc" else y

    def describe(self) -> dict:
        return describe_tflite(self.path)


def to_tflite_input(x_nchw: np.ndarray) -> np.ndarray:
    """An NCHW input batch (what the ONNX model takes) as the NHWC float32 array the .tflite model takes."""
    return np.ascontiguousarray(x_nchw.transpose(TO_NHWC), dtype=np.float32)


def describe_tflite(path: str | Path) -> dict:
    """Operators (with counts), schema version, tensor count and size of a .tflite file."""
    data = Path(path).read_bytes()
    model = tfl.ModelT.InitFromObj(tfl.Model.GetRootAs(data, 0))
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    ops = collections.Counter(_OP_NAMES[codes[op.opcodeIndex]] for op in model.subgraphs[0].operators)
    return {
        "schema_version": model.version,
        "operators": dict(sorted(ops.items())),
        "tensors": len(model.subgraphs[0].tensors),
        "bytes": len(data),
        "description": (model.description or b"").decode(),
    }


def write_tflite(onnx_path: str | Path, output: str | Path) -> TfliteModel:
    """Write the ONNX model at ``onnx_path`` as a float32 .tflite at ``output``, checked to load in LiteRT.

    The file is written atomically: on any failure nothing is left at ``output``.
    """
    onnx_path, output = Path(onnx_path), Path(output)
    proto = load_onnx(onnx_path)
    writer = OnnxToTflite(proto)
    model = writer.convert()
    model.description = f"{onnx_path.name}, written by edge-mnv2's .tflite writer"
    meta = read_metadata(proto)
    if meta:  # keeps the model name and where its weights came from with the file
        writer.buffers.append(AlignedBufferT(data=np.frombuffer(json.dumps(meta).encode(), np.uint8)))
        model.metadata = [tfl.MetadataT(name="edge_mnv2", buffer=len(writer.buffers) - 1)]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    sub = model.subgraphs[0]
    result = TfliteModel(
        output,
        tuple(sub.tensors[sub.inputs[0]].shape),
        tuple(sub.tensors[sub.outputs[0]].shape),
        "nhwc" if writer.values[proto.graph.output[0].name].nhwc else "same",
    )

    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.{os.getpid()}.partial")
    try:
        tmp.write_bytes(builder.Output())
        _check_loads(tmp, result)
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
    return result


def _check_loads(path: Path, expected: TfliteModel) -> None:
    """LiteRT accepts the file and agrees on the shapes (a mismatch is a bug in this writer)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(
        model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    )
    interpreter.allocate_tensors()
    got = (tuple(interpreter.get_input_details()[0]["shape"]), tuple(interpreter.get_output_details()[0]["shape"]))
    if got != (expected.input_shape, expected.output_shape):
        raise RuntimeError(
            f".tflite writer bug: LiteRT computes shapes {got} for {path.name}, the writer "
            f"{(expected.input_shape, expected.output_shape)}"
        )
