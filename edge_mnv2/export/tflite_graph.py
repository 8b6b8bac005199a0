"""The .tflite graph being written: tensors, constant buffers, operator codes, and each ONNX tensor's layout.

:mod:`edge_mnv2.export.tflite_ops` translates ONNX nodes on top of this; what is here is shared by every
operator: where a value lives (its TFLite tensor, and whether an NCHW activation is stored NHWC), moving a
value between layouts, deduplicated constants, fusing a following Clip/Relu, and folding constant nodes.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

import flatbuffers
import numpy as np
import onnx
from ai_edge_litert import schema_py_generated as tfl
from onnx import helper, numpy_helper

from edge_mnv2.errors import ModelFileError

SUPPORTED = (
    "Add",
    "Clip",
    "Concat",
    "Constant",
    "ConstantOfShape",
    "Conv",
    "Expand",
    "Flatten",
    "Gemm",
    "GlobalAveragePool",
    "Identity",
    "Relu",
    "Reshape",
    "Resize",
    "Tile",
    "Transpose",
)
OP = tfl.BuiltinOperator
ACT = tfl.ActivationFunctionType
_TYPES = {np.dtype(np.float32): tfl.TensorType.FLOAT32, np.dtype(np.int32): tfl.TensorType.INT32}
TO_NHWC, TO_NCHW = (0, 2, 3, 1), (0, 3, 1, 2)
# (min, max) of a Clip or Relu -> the fused activation and the standalone operator for it.
CLAMPS = {
    (0.0, 6.0): (ACT.RELU6, OP.RELU6),
    (0.0, None): (ACT.RELU, OP.RELU),
    (-1.0, 1.0): (ACT.RELU_N1_TO_1, OP.RELU_N1_TO_1),
}
_FUSES_ACTIVATION = ("Conv", "Add", "Gemm")


@dataclass(frozen=True)
class Value:
    """A TFLite tensor standing for an ONNX tensor; ``nhwc``: an NCHW ONNX activation stored NHWC."""

    index: int
    shape: tuple[int, ...]
    nhwc: bool


def shape_in_onnx(v: Value) -> tuple[int, ...]:
    """The value's shape in the ONNX graph (NCHW for an activation stored NHWC)."""
    return tuple(v.shape[p] for p in TO_NCHW) if v.nhwc else v.shape


class AlignedBufferT(tfl.BufferT):
    """Constant data starting on a 16-byte boundary, as the TFLite converter writes it (for SIMD loads)."""

    def Pack(self, builder: flatbuffers.Builder) -> int:
        builder.Prep(16, len(self.data))  # the vector's bytes are written next, from an aligned address
        data = builder.CreateNumpyVector(self.data)
        tfl.BufferStart(builder)
        tfl.BufferAddData(builder, data)
        return tfl.BufferEnd(builder)


def unsupported(node: onnx.NodeProto, detail: str) -> ModelFileError:
    """The error for a node the writer cannot translate, naming what it supports."""
    return ModelFileError(
        f"cannot write node {node.name!r} ({node.op_type}) to .tflite: {detail}; the .tflite "
        f"writer supports {', '.join(SUPPORTED)} (NCHW float32 CNN graphs)"
    )


def node_attrs(node: onnx.NodeProto, **defaults) -> dict:
    """The node's attributes over ``defaults``; an attribute the writer does not know is an error."""
    got = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    unknown = sorted(set(got) - set(defaults))
    if unknown:
        raise unsupported(node, f"attribute {unknown[0]}={got[unknown[0]]!r} is not supported")
    got = {k: v.decode() if isinstance(v, bytes) else v for k, v in got.items()}
    return {**defaults, **got}


def same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TFLite's SAME padding (before, after): the odd pixel goes after, where PyTorch pads symmetrically."""
    total = max((-(-size // stride) - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    return total // 2, total - total // 2


class TfliteGraph:
    """The tensors, buffers and operators written so far, and the TFLite value of each ONNX tensor."""

    def __init__(self, proto: onnx.ModelProto):
        self.graph = proto.graph
        self.opsets = {o.domain or "": o.version for o in proto.opset_import}
        self.consts = {i.name: numpy_helper.to_array(i) for i in self.graph.initializer}
        self.values: dict[str, Value] = {}
        self.tensors: list[tfl.TensorT] = []
        self.buffers: list[tfl.BufferT] = [tfl.BufferT()]  # buffer 0: empty, for every activation
        self.const_cache: dict[tuple, int] = {}
        self.opcodes: dict[int, tfl.OperatorCodeT] = {}
        self.operators: list[tfl.OperatorT] = []
        self.consumers = collections.Counter(i for n in self.graph.node for i in n.input)
        self.consumers.update(o.name for o in self.graph.output)
        self.fused: set[int] = set()  # positions of the Clip/Relu nodes fused into the operator before them

    # -- tensors and operators --
    def tensor(self, shape, name: str, dtype=np.float32, buffer: int = 0) -> int:
        self.tensors.append(tfl.TensorT(shape=list(shape), type=_TYPES[np.dtype(dtype)], buffer=buffer, name=name))
        return len(self.tensors) - 1

    def const(self, array: np.ndarray, name: str) -> int:
        """One tensor and buffer per distinct constant (SSD's heads share biases, convolutions zeros)."""
        array = np.ascontiguousarray(array, dtype=np.int32 if array.dtype.kind in "iu" else np.float32)
        key = (array.dtype.str, array.shape, array.tobytes())
        if key not in self.const_cache:
            self.buffers.append(AlignedBufferT(data=np.frombuffer(array.tobytes(), np.uint8)))
            self.const_cache[key] = self.tensor(array.shape, name, array.dtype, len(self.buffers) - 1)
        return self.const_cache[key]

    def op(self, code: int, inputs: list[int], outputs: list[int], options=None, version: int = 1) -> None:
        oc = self.opcodes.setdefault(
            code,
            tfl.OperatorCodeT(
                deprecatedBuiltinCode=min(code, OP.PLACEHOLDER_FOR_GREATER_OP_CODES), builtinCode=code, version=1
            ),
        )
        oc.version = max(oc.version, version)  # the lowest runtime version with the features used
        kind = getattr(tfl.BuiltinOptions, type(options).__name__[:-1], 0) if options is not None else 0
        self.operators.append(
            tfl.OperatorT(
                opcodeIndex=list(self.opcodes).index(code),
                inputs=inputs,
                outputs=outputs,
                builtinOptionsType=kind,
                builtinOptions=options,
            )
        )

    def emit(self, code, inputs, name: str, shape, nhwc: bool, options=None, version: int = 1) -> Value:
        value = Value(self.tensor(shape, name), tuple(int(d) for d in shape), nhwc)
        self.op(code, inputs, [value.index], options, version)
        self.values[name] = value
        return value

    # -- inputs of a node --
    def value(self, node: onnx.NodeProto, i: int) -> Value:
        name = node.input[i]
        if name in self.values:
            return self.values[name]
        if name in self.consts:
            array = self.consts[name]
            return Value(self.const(array, name), array.shape, False)
        raise unsupported(node, f"input {name!r} is produced by no node")

    def constant(self, node: onnx.NodeProto, i: int, what: str) -> np.ndarray | None:
        if i >= len(node.input) or not node.input[i]:
            return None
        if node.input[i] not in self.consts:
            raise unsupported(node, f"{what} ({node.input[i]!r}) must be a constant")
        return self.consts[node.input[i]]

    def nhwc(self, v: Value) -> Value:
        if v.nhwc or len(v.shape) != 4:
            return v
        shape = tuple(v.shape[p] for p in TO_NHWC)
        return self.emit(
            OP.TRANSPOSE,
            [v.index, self.const(np.array(TO_NHWC), "perm")],
            f"{self.tensors[v.index].name}_nhwc",
            shape,
            True,
            tfl.TransposeOptionsT(),
        )

    def plain(self, v: Value) -> Value:
        if not v.nhwc:
            return v
        return self.emit(
            OP.TRANSPOSE,
            [v.index, self.const(np.array(TO_NCHW), "perm")],
            f"{self.tensors[v.index].name}_nchw",
            shape_in_onnx(v),
            False,
            tfl.TransposeOptionsT(),
        )

    def like(self, node: onnx.NodeProto, i: int, nhwc: bool) -> Value:
        """Input ``i`` in the layout its peers have (a constant broadcast against an NHWC activation)."""
        name = node.input[i]
        if name in self.consts and nhwc:
            array = self.consts[name]
            array = array.reshape((1,) * (4 - array.ndim) + array.shape).transpose(TO_NHWC)
            return Value(self.const(array, name), array.shape, True)
        v = self.value(node, i)
        if nhwc and len(v.shape) != 4:
            raise unsupported(node, f"input {name!r} ({len(v.shape)}-D) cannot be broadcast against an NCHW activation")
        return self.nhwc(v) if nhwc else self.plain(v)

    def fuse(self, node: onnx.NodeProto, nodes: list[onnx.NodeProto], pos: int) -> tuple[int, str]:
        """The activation of the next node if it is Clip/Relu on this node's output alone, and the name to write."""
        out = node.output[0]
        if self.consumers[out] == 1 and node.op_type in _FUSES_ACTIVATION:
            at, nxt = next(((p, n) for p, n in enumerate(nodes[pos + 1 :], pos + 1) if out in n.input), (0, None))
            if nxt is not None and nxt.op_type in ("Clip", "Relu") and nxt.input[0] == out:
                clamp = self.clamp(nxt)
                if clamp in CLAMPS:
                    self.fused.add(at)
                    return CLAMPS[clamp][0], nxt.output[0]
        return ACT.NONE, out

    def clamp(self, node: onnx.NodeProto) -> tuple[float | None, float | None]:
        if node.op_type == "Relu":
            return 0.0, None
        a = node_attrs(node, min=None, max=None)  # opset < 11 has them as attributes
        lo, hi = (self.constant(node, i, "Clip bound") for i in (1, 2))
        lo, hi = (a["min"] if lo is None else lo), (a["max"] if hi is None else hi)
        return tuple(None if b is None else float(b) for b in (lo, hi))

    # -- the operators --

    def fold(self, node: onnx.NodeProto) -> None:
        """Evaluate a node whose inputs are all constants (shapes, broadcast targets) with ONNX's reference."""
        from onnx.reference import ReferenceEvaluator

        ins = [i for i in node.input if i]
        graph = helper.make_graph(
            [node],
            "fold",
            [helper.make_tensor_value_info(i, 0, None) for i in ins],
            [helper.make_tensor_value_info(o, 0, None) for o in node.output],
        )
        try:
            results = ReferenceEvaluator(graph, opsets=self.opsets).run(None, {i: self.consts[i] for i in ins})
        except Exception as exc:
            raise unsupported(node, f"constant folding failed ({type(exc).__name__}: {exc})") from exc
        self.consts.update(zip(node.output, (np.asarray(r) for r in results)))
