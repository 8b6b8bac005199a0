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
import onnx
from ai_edge_litert import schema_py_generated as tfl
from onnx import helper, numpy_helper

from edge_mnv2.errors import ModelFileError
from edge_mnv2.export import load_onnx, read_metadata

SCHEMA_VERSION = 3
SUPPORTED = ("Add", "Clip", "Concat", "Constant", "ConstantOfShape", "Conv", "Expand", "Flatten", "Gemm",
             "GlobalAveragePool", "Identity", "Relu", "Reshape", "Resize", "Tile", "Transpose")
OP = tfl.BuiltinOperator
ACT = tfl.ActivationFunctionType
_OP_NAMES = {v: k for k, v in vars(OP).items() if not k.startswith("_")}
_TYPES = {np.dtype(np.float32): tfl.TensorType.FLOAT32, np.dtype(np.int32): tfl.TensorType.INT32}
_TO_NHWC, _TO_NCHW = (0, 2, 3, 1), (0, 3, 1, 2)
_NCHW_AXIS_IN_NHWC = {0: 0, 1: 3, 2: 1, 3: 2}
# (min, max) of a Clip or Relu -> the fused activation and the standalone operator for it.
_CLAMPS = {(0.0, 6.0): (ACT.RELU6, OP.RELU6), (0.0, None): (ACT.RELU, OP.RELU),
           (-1.0, 1.0): (ACT.RELU_N1_TO_1, OP.RELU_N1_TO_1)}
_FUSES_ACTIVATION = ("Conv", "Add", "Gemm")
_RESIZE_MODES = {"half_pixel": (False, True), "align_corners": (True, False), "asymmetric": (False, False)}


@dataclass(frozen=True)
class TfliteModel:
    """A written .tflite file: its NHWC input shape, its output shape, and how the output is laid out."""

    path: Path
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    output_layout: str  # "nhwc": an NCHW ONNX activation returned NHWC; "same": the ONNX layout

    def to_onnx_layout(self, y: np.ndarray) -> np.ndarray:
        """The TFLite output in the ONNX model's layout, to compare with ONNX Runtime or PyTorch directly."""
        return np.ascontiguousarray(y.transpose(_TO_NCHW)) if self.output_layout == "nhwc" else y

    def describe(self) -> dict:
        return describe_tflite(self.path)


def to_tflite_input(x_nchw: np.ndarray) -> np.ndarray:
    """An NCHW input batch (what the ONNX model takes) as the NHWC float32 array the .tflite model takes."""
    return np.ascontiguousarray(x_nchw.transpose(_TO_NHWC), dtype=np.float32)


def describe_tflite(path: str | Path) -> dict:
    """Operators (with counts), schema version, tensor count and size of a .tflite file."""
    data = Path(path).read_bytes()
    model = tfl.ModelT.InitFromObj(tfl.Model.GetRootAs(data, 0))
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    ops = collections.Counter(_OP_NAMES[codes[op.opcodeIndex]] for op in model.subgraphs[0].operators)
    return {"schema_version": model.version, "operators": dict(sorted(ops.items())),
            "tensors": len(model.subgraphs[0].tensors), "bytes": len(data),
            "description": (model.description or b"").decode()}


@dataclass(frozen=True)
class _Value:
    """A TFLite tensor standing for an ONNX tensor; ``nhwc``: an NCHW ONNX activation stored NHWC."""

    index: int
    shape: tuple[int, ...]
    nhwc: bool


def _onnx_shape(v: _Value) -> tuple[int, ...]:
    return tuple(v.shape[p] for p in _TO_NCHW) if v.nhwc else v.shape


class _AlignedBufferT(tfl.BufferT):
    """Constant data starting on a 16-byte boundary, as the TFLite converter writes it (for SIMD loads)."""

    def Pack(self, builder: flatbuffers.Builder) -> int:
        builder.Prep(16, len(self.data))  # the vector's bytes are written next, from an aligned address
        data = builder.CreateNumpyVector(self.data)
        tfl.BufferStart(builder)
        tfl.BufferAddData(builder, data)
        return tfl.BufferEnd(builder)


def _fail(node: onnx.NodeProto, detail: str) -> ModelFileError:
    return ModelFileError(f"cannot write node {node.name!r} ({node.op_type}) to .tflite: {detail}; the .tflite "
                          f"writer supports {', '.join(SUPPORTED)} (NCHW float32 CNN graphs)")


def _attrs(node: onnx.NodeProto, **defaults) -> dict:
    """The node's attributes over ``defaults``; an attribute the writer does not know is an error."""
    got = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    unknown = sorted(set(got) - set(defaults))
    if unknown:
        raise _fail(node, f"attribute {unknown[0]}={got[unknown[0]]!r} is not supported")
    got = {k: v.decode() if isinstance(v, bytes) else v for k, v in got.items()}
    return {**defaults, **got}


def _same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TFLite's SAME padding (before, after): the odd pixel goes after, where PyTorch pads symmetrically."""
    total = max((-(-size // stride) - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    return total // 2, total - total // 2


class _Writer:
    def __init__(self, proto: onnx.ModelProto):
        self.graph = proto.graph
        self.opsets = {o.domain or "": o.version for o in proto.opset_import}
        self.consts = {i.name: numpy_helper.to_array(i) for i in self.graph.initializer}
        self.values: dict[str, _Value] = {}
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
            self.buffers.append(_AlignedBufferT(data=np.frombuffer(array.tobytes(), np.uint8)))
            self.const_cache[key] = self.tensor(array.shape, name, array.dtype, len(self.buffers) - 1)
        return self.const_cache[key]

    def op(self, code: int, inputs: list[int], outputs: list[int], options=None, version: int = 1) -> None:
        oc = self.opcodes.setdefault(code, tfl.OperatorCodeT(
            deprecatedBuiltinCode=min(code, OP.PLACEHOLDER_FOR_GREATER_OP_CODES), builtinCode=code, version=1))
        oc.version = max(oc.version, version)  # the lowest runtime version with the features used
        kind = getattr(tfl.BuiltinOptions, type(options).__name__[:-1], 0) if options is not None else 0
        self.operators.append(tfl.OperatorT(opcodeIndex=list(self.opcodes).index(code), inputs=inputs,
                                            outputs=outputs, builtinOptionsType=kind, builtinOptions=options))

    def emit(self, code, inputs, name: str, shape, nhwc: bool, options=None, version: int = 1) -> _Value:
        value = _Value(self.tensor(shape, name), tuple(int(d) for d in shape), nhwc)
        self.op(code, inputs, [value.index], options, version)
        self.values[name] = value
        return value

    # -- inputs of a node --
    def value(self, node: onnx.NodeProto, i: int) -> _Value:
        name = node.input[i]
        if name in self.values:
            return self.values[name]
        if name in self.consts:
            array = self.consts[name]
            return _Value(self.const(array, name), array.shape, False)
        raise _fail(node, f"input {name!r} is produced by no node")

    def constant(self, node: onnx.NodeProto, i: int, what: str) -> np.ndarray | None:
        if i >= len(node.input) or not node.input[i]:
            return None
        if node.input[i] not in self.consts:
            raise _fail(node, f"{what} ({node.input[i]!r}) must be a constant")
        return self.consts[node.input[i]]

    def nhwc(self, v: _Value) -> _Value:
        if v.nhwc or len(v.shape) != 4:
            return v
        shape = tuple(v.shape[p] for p in _TO_NHWC)
        return self.emit(OP.TRANSPOSE, [v.index, self.const(np.array(_TO_NHWC), "perm")],
                         f"{self.tensors[v.index].name}_nhwc", shape, True, tfl.TransposeOptionsT())

    def plain(self, v: _Value) -> _Value:
        if not v.nhwc:
            return v
        return self.emit(OP.TRANSPOSE, [v.index, self.const(np.array(_TO_NCHW), "perm")],
                         f"{self.tensors[v.index].name}_nchw", _onnx_shape(v), False, tfl.TransposeOptionsT())

    def like(self, node: onnx.NodeProto, i: int, nhwc: bool) -> _Value:
        """Input ``i`` in the layout its peers have (a constant broadcast against an NHWC activation)."""
        name = node.input[i]
        if name in self.consts and nhwc:
            array = self.consts[name]
            array = array.reshape((1,) * (4 - array.ndim) + array.shape).transpose(_TO_NHWC)
            return _Value(self.const(array, name), array.shape, True)
        v = self.value(node, i)
        if nhwc and len(v.shape) != 4:
            raise _fail(node, f"input {name!r} ({len(v.shape)}-D) cannot be broadcast against an NCHW activation")
        return self.nhwc(v) if nhwc else self.plain(v)

    def fuse(self, node: onnx.NodeProto, nodes: list[onnx.NodeProto], pos: int) -> tuple[int, str]:
        """The activation of the next node if it is Clip/Relu on this node's output alone, and the name to write."""
        out = node.output[0]
        if self.consumers[out] == 1 and node.op_type in _FUSES_ACTIVATION:
            at, nxt = next(((p, n) for p, n in enumerate(nodes[pos + 1:], pos + 1) if out in n.input), (0, None))
            if nxt is not None and nxt.op_type in ("Clip", "Relu") and nxt.input[0] == out:
                clamp = self.clamp(nxt)
                if clamp in _CLAMPS:
                    self.fused.add(at)
                    return _CLAMPS[clamp][0], nxt.output[0]
        return ACT.NONE, out

    def clamp(self, node: onnx.NodeProto) -> tuple[float | None, float | None]:
        if node.op_type == "Relu":
            return 0.0, None
        a = _attrs(node, min=None, max=None)  # opset < 11 has them as attributes
        lo, hi = (self.constant(node, i, "Clip bound") for i in (1, 2))
        lo, hi = (a["min"] if lo is None else lo), (a["max"] if hi is None else hi)
        return tuple(None if b is None else float(b) for b in (lo, hi))

    # -- the operators --
    def convert(self) -> tfl.ModelT:
        inits = set(self.consts)
        inputs = [i for i in self.graph.input if i.name not in inits]
        if len(inputs) != 1 or len(self.graph.output) != 1:
            raise ModelFileError(f"the .tflite writer takes a graph with one input and one output, not "
                                 f"{len(inputs)} and {len(self.graph.output)}")
        dims = [d.dim_value for d in inputs[0].type.tensor_type.shape.dim]
        if len(dims) != 4 or min(dims) <= 0 or inputs[0].type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
            raise ModelFileError(f"the .tflite writer takes a static float32 NCHW input, not {inputs[0].name!r} "
                                 f"with shape {dims}")
        shape = tuple(dims[p] for p in _TO_NHWC)
        self.values[inputs[0].name] = _Value(self.tensor(shape, inputs[0].name), shape, True)
        nodes = []
        for node in self.graph.node:  # first all constants, as a Clip's bounds may follow its convolution
            if all(i in self.consts for i in node.input if i):
                self.fold(node)
            else:
                nodes.append(node)
        for pos, node in enumerate(nodes):
            if pos in self.fused:
                continue
            if node.op_type in SUPPORTED:
                getattr(self, f"_{node.op_type.lower()}")(node, nodes, pos)
            else:
                raise _fail(node, "the operator is not supported")
        out_name = self.graph.output[0].name
        if out_name not in self.values:
            raise ModelFileError(f"graph output {out_name!r} is a constant; there is nothing to run")
        out = self.values[out_name]
        self.tensors[out.index].name = out_name
        subgraph = tfl.SubGraphT(tensors=self.tensors, inputs=[self.values[inputs[0].name].index],
                                 outputs=[out.index], operators=self.operators, name="main")
        return tfl.ModelT(version=SCHEMA_VERSION, operatorCodes=list(self.opcodes.values()), subgraphs=[subgraph],
                          buffers=self.buffers)

    def fold(self, node: onnx.NodeProto) -> None:
        """Evaluate a node whose inputs are all constants (shapes, broadcast targets) with ONNX's reference."""
        from onnx.reference import ReferenceEvaluator

        ins = [i for i in node.input if i]
        graph = helper.make_graph([node], "fold", [helper.make_tensor_value_info(i, 0, None) for i in ins],
                                  [helper.make_tensor_value_info(o, 0, None) for o in node.output])
        try:
            results = ReferenceEvaluator(graph, opsets=self.opsets).run(None, {i: self.consts[i] for i in ins})
        except Exception as exc:
            raise _fail(node, f"constant folding failed ({type(exc).__name__}: {exc})") from exc
        self.consts.update(zip(node.output, (np.asarray(r) for r in results)))

    def _conv(self, node, nodes, pos) -> None:
        a = _attrs(node, kernel_shape=None, strides=[1, 1], pads=[0, 0, 0, 0], dilations=[1, 1], group=1,
                   auto_pad="NOTSET")
        x = self.nhwc(self.value(node, 0))
        w = self.constant(node, 1, "the weight")
        if w.ndim != 4 or len(x.shape) != 4:
            raise _fail(node, f"weight shape {list(w.shape)}: only 2-D convolutions are supported")
        if a["auto_pad"] != "NOTSET":
            raise _fail(node, f"attribute auto_pad={a['auto_pad']} is not supported (give explicit pads)")
        bias = self.constant(node, 2, "the bias")
        cout, cin_group, kh, kw = w.shape
        _, h, wd, cin = x.shape
        (sh, sw), (dh, dw), (pt, pl, pb, pr) = a["strides"], a["dilations"], a["pads"]
        if a["group"] == 1:
            code, weights, options = OP.CONV_2D, w.transpose(0, 2, 3, 1), tfl.Conv2DOptionsT()
        elif a["group"] == cin and cin_group == 1:
            code, weights = OP.DEPTHWISE_CONV_2D, w.transpose(1, 2, 3, 0)
            options = tfl.DepthwiseConv2DOptionsT(depthMultiplier=cout // cin)
        else:
            raise _fail(node, f"attribute group={a['group']} is not supported (only 1 or the {cin} input channels)")
        if min(pt, pl, pb, pr) < 0:
            raise _fail(node, f"attribute pads={a['pads']} is not supported (negative)")
        oh, ow = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1, (wd + pl + pr - dw * (kw - 1) - 1) // sw + 1
        same = _same_pads(h, kh, sh, dh) + _same_pads(wd, kw, sw, dw)
        if (pt, pb, pl, pr) == same and (oh, ow) == (-(-h // sh), -(-wd // sw)):
            options.padding = tfl.Padding.SAME
        else:
            options.padding = tfl.Padding.VALID
            if any((pt, pl, pb, pr)):  # e.g. PyTorch's 1/1 for a stride-2 3x3, where SAME pads 0/1
                paddings = np.array([[0, 0], [pt, pb], [pl, pr], [0, 0]])
                x = self.emit(OP.PAD, [x.index, self.const(paddings, "paddings")], f"{node.name}_pad",
                              (1, h + pt + pb, wd + pl + pr, cin), True, tfl.PadOptionsT())
        options.strideH, options.strideW, options.dilationHFactor, options.dilationWFactor = sh, sw, dh, dw
        options.fusedActivationFunction, out = self.fuse(node, nodes, pos)
        bias = np.zeros(cout, np.float32) if bias is None else bias
        version = 2 if code == OP.DEPTHWISE_CONV_2D and max(dh, dw) > 1 else 1
        self.emit(code, [x.index, self.const(weights, node.input[1]), self.const(bias, f"{node.name}_bias")],
                  out, (1, oh, ow, cout), True, options, version)

    def _add(self, node, nodes, pos) -> None:
        nhwc = any(node.input[i] in self.values and self.values[node.input[i]].nhwc for i in (0, 1))
        a, b = self.like(node, 0, nhwc), self.like(node, 1, nhwc)
        act, out = self.fuse(node, nodes, pos)
        shape = np.broadcast_shapes(a.shape, b.shape)
        self.emit(OP.ADD, [a.index, b.index], out, shape, nhwc, tfl.AddOptionsT(fusedActivationFunction=act))

    def _clip(self, node, nodes, pos) -> None:
        clamp = self.clamp(node)
        if clamp not in _CLAMPS:
            raise _fail(node, f"bounds {clamp} are not supported (only (0, 6), (0, inf) and (-1, 1))")
        x = self.value(node, 0)
        self.emit(_CLAMPS[clamp][1], [x.index], node.output[0], x.shape, x.nhwc)

    _relu = _clip

    def _globalaveragepool(self, node, nodes, pos) -> None:
        x = self.nhwc(self.value(node, 0))
        self.emit(OP.MEAN, [x.index, self.const(np.array([1, 2]), "hw_axes")], node.output[0],
                  (x.shape[0], 1, 1, x.shape[3]), True, tfl.ReducerOptionsT(keepDims=True))

    def _reshape_to(self, node, x: _Value, shape: tuple[int, ...]) -> None:
        if x.nhwc and x.shape[1] * x.shape[2] > 1 and x.shape[3] > 1:  # else NHWC bytes are NCHW bytes
            x = self.plain(x)
        target = self.const(np.array(shape), "shape")
        self.emit(OP.RESHAPE, [x.index, target], node.output[0], shape, False, tfl.ReshapeOptionsT(list(shape)))

    def _flatten(self, node, nodes, pos) -> None:
        axis, x = _attrs(node, axis=1)["axis"], self.value(node, 0)
        onnx_shape = _onnx_shape(x)
        axis %= len(onnx_shape)
        self._reshape_to(node, x, (int(np.prod(onnx_shape[:axis])), int(np.prod(onnx_shape[axis:]))))

    def _reshape(self, node, nodes, pos) -> None:
        allowzero = _attrs(node, allowzero=0)["allowzero"]
        x, shape = self.value(node, 0), self.constant(node, 1, "the shape").tolist()
        onnx_shape = _onnx_shape(x)
        shape = [onnx_shape[i] if d == 0 and not allowzero else d for i, d in enumerate(shape)]
        self._reshape_to(node, x, np.empty(onnx_shape, np.uint8).reshape(shape).shape)

    def _transpose(self, node, nodes, pos) -> None:
        x = self.value(node, 0)
        perm = _attrs(node, perm=list(range(len(x.shape)))[::-1])["perm"]
        if x.nhwc:  # transposing the stored NHWC data: compose with NHWC -> NCHW
            perm = [_TO_NCHW[p] for p in perm]
        shape = tuple(x.shape[p] for p in perm)
        if perm == sorted(perm):  # e.g. SSD's NCHW -> NHWC of a head: that is how it is stored already
            self.values[node.output[0]] = _Value(x.index, shape, False)
            return
        self.emit(OP.TRANSPOSE, [x.index, self.const(np.array(perm), "perm")], node.output[0], shape, False,
                  tfl.TransposeOptionsT())

    def _concat(self, node, nodes, pos) -> None:
        axis = _attrs(node, axis=None)["axis"]
        known = [self.values[i] for i in node.input if i in self.values]
        nhwc = all(v.nhwc for v in known)
        ins = [self.like(node, i, nhwc) for i in range(len(node.input))]
        axis %= len(ins[0].shape)
        axis = _NCHW_AXIS_IN_NHWC[axis] if nhwc else axis
        shape = list(ins[0].shape)
        shape[axis] = sum(v.shape[axis] for v in ins)
        self.emit(OP.CONCATENATION, [v.index for v in ins], node.output[0], shape, nhwc,
                  tfl.ConcatenationOptionsT(axis=axis))

    def _gemm(self, node, nodes, pos) -> None:
        a = _attrs(node, alpha=1.0, beta=1.0, transA=0, transB=0)
        x, w, c = self.value(node, 0), self.constant(node, 1, "B"), self.constant(node, 2, "C")
        if a["transA"] or len(x.shape) != 2:
            raise _fail(node, f"attribute transA={a['transA']} on a {len(_onnx_shape(x))}-D A is not supported")
        w = (w if a["transB"] else w.T) * np.float32(a["alpha"])  # FULLY_CONNECTED weights are [out, in]
        bias = np.zeros(w.shape[0], np.float32) if c is None else np.broadcast_to(c * np.float32(a["beta"]),
                                                                                  (1, w.shape[0]))[0]
        act, out = self.fuse(node, nodes, pos)
        self.emit(OP.FULLY_CONNECTED, [x.index, self.const(w, node.input[1]), self.const(bias, f"{node.name}_bias")],
                  out, (x.shape[0], w.shape[0]), False, tfl.FullyConnectedOptionsT(fusedActivationFunction=act))

    def _identity(self, node, nodes, pos) -> None:
        self.values[node.output[0]] = self.value(node, 0)

    def _broadcast(self, node, x: _Value, onnx_shape: tuple[int, ...], code: int, arg: np.ndarray, options,
                   version: int = 1) -> None:
        """Expand/Tile: an alias when nothing grows, else the operator with its argument in the stored layout."""
        if x.nhwc and len(onnx_shape) != 4:
            x = self.plain(x)
        if x.nhwc:
            onnx_shape, arg = tuple(onnx_shape[p] for p in _TO_NHWC), arg[list(_TO_NHWC)]
        if tuple(onnx_shape) == x.shape:
            self.values[node.output[0]] = x
        else:
            self.emit(code, [x.index, self.const(arg, node.input[1])], node.output[0], onnx_shape, x.nhwc, options,
                      version)

    def _expand(self, node, nodes, pos) -> None:
        x, target = self.value(node, 0), self.constant(node, 1, "the shape")
        shape = np.broadcast_shapes(_onnx_shape(x), tuple(target))
        # LiteRT registers BROADCAST_TO from version 2 (version 1 was a TensorFlow "flex" operator)
        self._broadcast(node, x, shape, OP.BROADCAST_TO, np.array(shape), tfl.BroadcastToOptionsT(), version=2)

    def _tile(self, node, nodes, pos) -> None:
        x, repeats = self.value(node, 0), self.constant(node, 1, "repeats")
        self._broadcast(node, x, tuple(int(s * r) for s, r in zip(_onnx_shape(x), repeats)), OP.TILE, repeats,
                        tfl.TileOptionsT())

    def _resize(self, node, nodes, pos) -> None:
        a = _attrs(node, mode="nearest", coordinate_transformation_mode="half_pixel", cubic_coeff_a=-0.75,
                   exclude_outside=0, nearest_mode="round_prefer_floor", extrapolation_value=0.0, antialias=0)
        x = self.nhwc(self.value(node, 0))
        if a["mode"] != "linear" or a["coordinate_transformation_mode"] not in _RESIZE_MODES or a["antialias"]:
            raise _fail(node, f"mode={a['mode']}, coordinate_transformation_mode="
                              f"{a['coordinate_transformation_mode']}, antialias={a['antialias']} is not supported "
                              f"(only linear with {', '.join(_RESIZE_MODES)})")
        n, h, w, c = x.shape
        scales, sizes = self.constant(node, 2, "scales"), self.constant(node, 3, "sizes")
        if sizes is not None and sizes.size:
            out = tuple(int(s) for s in sizes)
        elif scales is not None and scales.size == 4:
            out = tuple(float(s) * d for s, d in zip(scales, (n, c, h, w)))
            if any(o != int(o) for o in out):  # LiteRT maps by size ratio, ONNX by the scale: equal if exact
                raise _fail(node, f"scales {scales.tolist()} do not give whole output sizes")
            out = tuple(int(o) for o in out)
        else:
            raise _fail(node, "Resize needs constant 4-D scales or sizes")
        if out[:2] != (n, c):
            raise _fail(node, f"resizing the batch or channel axes ({out}) is not supported")
        align, half = _RESIZE_MODES[a["coordinate_transformation_mode"]]
        self.emit(OP.RESIZE_BILINEAR, [x.index, self.const(np.array(out[2:]), "size")], node.output[0],
                  (n, out[2], out[3], c), True, tfl.ResizeBilinearOptionsT(alignCorners=align, halfPixelCenters=half),
                  version=3 if half else 1)


def write_tflite(onnx_path: str | Path, output: str | Path) -> TfliteModel:
    """Write the ONNX model at ``onnx_path`` as a float32 .tflite at ``output``, checked to load in LiteRT.

    The file is written atomically: on any failure nothing is left at ``output``.
    """
    onnx_path, output = Path(onnx_path), Path(output)
    proto = load_onnx(onnx_path)
    writer = _Writer(proto)
    model = writer.convert()
    model.description = f"{onnx_path.name}, written by edge-mnv2's .tflite writer"
    meta = read_metadata(proto)
    if meta:  # keeps the model name and where its weights came from with the file
        writer.buffers.append(_AlignedBufferT(data=np.frombuffer(json.dumps(meta).encode(), np.uint8)))
        model.metadata = [tfl.MetadataT(name="edge_mnv2", buffer=len(writer.buffers) - 1)]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    sub = model.subgraphs[0]
    result = TfliteModel(output, tuple(sub.tensors[sub.inputs[0]].shape), tuple(sub.tensors[sub.outputs[0]].shape),
                         "nhwc" if writer.values[proto.graph.output[0].name].nhwc else "same")

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

    interpreter = Interpreter(model_path=str(path),
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    got = (tuple(interpreter.get_input_details()[0]["shape"]), tuple(interpreter.get_output_details()[0]["shape"]))
    if got != (expected.input_shape, expected.output_shape):
        raise RuntimeError(f".tflite writer bug: LiteRT computes shapes {got} for {path.name}, the writer "
                           f"{(expected.input_shape, expected.output_shape)}")
