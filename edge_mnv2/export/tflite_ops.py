"""ONNX operators -> TFLite operators: one method per supported ONNX operator, and the pass over the graph.

Each method reads its node's inputs through :class:`~edge_mnv2.export.tflite_graph.TfliteGraph` (which
knows their layout) and emits the TFLite operator computing the same values, NHWC where TFLite kernels are.
"""

from __future__ import annotations

import numpy as np
import onnx
from ai_edge_litert import schema_py_generated as tfl

from edge_mnv2.errors import ModelFileError
from edge_mnv2.export.tflite_graph import (
    CLAMPS,
    OP,
    SUPPORTED,
    TO_NCHW,
    TO_NHWC,
    TfliteGraph,
    Value,
    node_attrs,
    same_pads,
    shape_in_onnx,
    unsupported,
)

SCHEMA_VERSION = 3
_NCHW_AXIS_IN_NHWC = {0: 0, 1: 3, 2: 1, 3: 2}
_RESIZE_MODES = {"half_pixel": (False, True), "align_corners": (True, False), "asymmetric": (False, False)}


class OnnxToTflite(TfliteGraph):
    """An ONNX graph translated into a TFLite model (:meth:`convert`)."""

    def convert(self) -> tfl.ModelT:
        inits = set(self.consts)
        inputs = [i for i in self.graph.input if i.name not in inits]
        if len(inputs) != 1 or len(self.graph.output) != 1:
            raise ModelFileError(
                f"the .tflite writer takes a graph with one input and one output, not "
                f"{len(inputs)} and {len(self.graph.output)}"
            )
        dims = [d.dim_value for d in inputs[0].type.tensor_type.shape.dim]
        if len(dims) != 4 or min(dims) <= 0 or inputs[0].type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
            raise ModelFileError(
                f"the .tflite writer takes a static float32 NCHW input, not {inputs[0].name!r} with shape {dims}"
            )
        shape = tuple(dims[p] for p in TO_NHWC)
        self.values[inputs[0].name] = Value(self.tensor(shape, inputs[0].name), shape, True)
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
                raise unsupported(node, "the operator is not supported")
        out_name = self.graph.output[0].name
        if out_name not in self.values:
            raise ModelFileError(f"graph output {out_name!r} is a constant; there is nothing to run")
        out = self.values[out_name]
        self.tensors[out.index].name = out_name
        subgraph = tfl.SubGraphT(
            tensors=self.tensors,
            inputs=[self.values[inputs[0].name].index],
            outputs=[out.index],
            operators=self.operators,
            name="main",
        )
        return tfl.ModelT(
            version=SCHEMA_VERSION,
            operatorCodes=list(self.opcodes.values()),
            subgraphs=[subgraph],
            buffers=self.buffers,
        )

    def _conv(self, node, nodes, pos) -> None:
        a = node_attrs(
            node, kernel_shape=None, strides=[1, 1], pads=[0, 0, 0, 0], dilations=[1, 1], group=1, auto_pad="NOTSET"
        )
        x = self.nhwc(self.value(node, 0))
        w = self.constant(node, 1, "the weight")
        if w.ndim != 4 or len(x.shape) != 4:
            raise unsupported(node, f"weight shape {list(w.shape)}: only 2-D convolutions are supported")
        if a["auto_pad"] != "NOTSET":
            raise unsupported(node, f"attribute auto_pad={a['auto_pad']} is not supported (give explicit pads)")
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
            raise unsupported(
                node, f"attribute group={a['group']} is not supported (only 1 or the {cin} input channels)"
            )
        if min(pt, pl, pb, pr) < 0:
            raise unsupported(node, f"attribute pads={a['pads']} is not supported (negative)")
        oh, ow = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1, (wd + pl + pr - dw * (kw - 1) - 1) // sw + 1
        same = same_pads(h, kh, sh, dh) + same_pads(wd, kw, sw, dw)
        if (pt, pb, pl, pr) == same and (oh, ow) == (-(-h // sh), -(-wd // sw)):
            options.padding = tfl.Padding.SAME
        else:
            options.padding = tfl.Padding.VALID
            if any((pt, pl, pb, pr)):  # e.g. PyTorch's 1/1 for a stride-2 3x3, where SAME pads 0/1
                paddings = np.array([[0, 0], [pt, pb], [pl, pr], [0, 0]])
                x = self.emit(
                    OP.PAD,
                    [x.index, self.const(paddings, "paddings")],
                    f"{node.name}_pad",
                    (1, h + pt + pb, wd + pl + pr, cin),
                    True,
                    tfl.PadOptionsT(),
                )
        options.strideH, options.strideW, options.dilationHFactor, options.dilationWFactor = sh, sw, dh, dw
        options.fusedActivationFunction, out = self.fuse(node, nodes, pos)
        bias = np.zeros(cout, np.float32) if bias is None else bias
        version = 2 if code == OP.DEPTHWISE_CONV_2D and max(dh, dw) > 1 else 1
        self.emit(
            code,
            [x.index, self.const(weights, node.input[1]), self.const(bias, f"{node.name}_bias")],
            out,
            (1, oh, ow, cout),
            True,
            options,
            version,
        )

    def _add(self, node, nodes, pos) -> None:
        nhwc = any(node.input[i] in self.values and self.values[node.input[i]].nhwc for i in (0, 1))
        a, b = self.like(node, 0, nhwc), self.like(node, 1, nhwc)
        act, out = self.fuse(node, nodes, pos)
        shape = np.broadcast_shapes(a.shape, b.shape)
        self.emit(OP.ADD, [a.index, b.index], out, shape, nhwc, tfl.AddOptionsT(fusedActivationFunction=act))

    def _clip(self, node, nodes, pos) -> None:
        clamp = self.clamp(node)
        if clamp not in CLAMPS:
            raise unsupported(node, f"bounds {clamp} are not supported (only (0, 6), (0, inf) and (-1, 1))")
        x = self.value(node, 0)
        self.emit(CLAMPS[clamp][1], [x.index], node.output[0], x.shape, x.nhwc)

    _relu = _clip

    def _globalaveragepool(self, node, nodes, pos) -> None:
        x = self.nhwc(self.value(node, 0))
        self.emit(
            OP.MEAN,
            [x.index, self.const(np.array([1, 2]), "hw_axes")],
            node.output[0],
            (x.shape[0], 1, 1, x.shape[3]),
            True,
            tfl.ReducerOptionsT(keepDims=True),
        )

    def _reshape_to(self, node, x: Value, shape: tuple[int, ...]) -> None:
        if x.nhwc and x.shape[1] * x.shape[2] > 1 and x.shape[3] > 1:  # else NHWC bytes are NCHW bytes
            x = self.plain(x)
        target = self.const(np.array(shape), "shape")
        self.emit(OP.RESHAPE, [x.index, target], node.output[0], shape, False, tfl.ReshapeOptionsT(list(shape)))

    def _flatten(self, node, nodes, pos) -> None:
        axis, x = node_attrs(node, axis=1)["axis"], self.value(node, 0)
        onnx_shape = shape_in_onnx(x)
        axis %= len(onnx_shape)
        self._reshape_to(node, x, (int(np.prod(onnx_shape[:axis])), int(np.prod(onnx_shape[axis:]))))

    def _reshape(self, node, nodes, pos) -> None:
        allowzero = node_attrs(node, allowzero=0)["allowzero"]
        x, shape = self.value(node, 0), self.constant(node, 1, "the shape").tolist()
        onnx_shape = shape_in_onnx(x)
        shape = [onnx_shape[i] if d == 0 and not allowzero else d for i, d in enumerate(shape)]
        self._reshape_to(node, x, np.empty(onnx_shape, np.uint8).reshape(shape).shape)

    def _transpose(self, node, nodes, pos) -> None:
        x = self.value(node, 0)
        perm = node_attrs(node, perm=list(range(len(x.shape)))[::-1])["perm"]
        if x.nhwc:  # transposing the stored NHWC data: compose with NHWC -> NCHW
            perm = [TO_NCHW[p] for p in perm]
        shape = tuple(x.shape[p] for p in perm)
        if perm == sorted(perm):  # e.g. SSD's NCHW -> NHWC of a head: that is how it is stored already
            self.values[node.output[0]] = Value(x.index, shape, False)
            return
        self.emit(
            OP.TRANSPOSE,
            [x.index, self.const(np.array(perm), "perm")],
            node.output[0],
            shape,
            False,
            tfl.TransposeOptionsT(),
        )

    def _concat(self, node, nodes, pos) -> None:
        axis = node_attrs(node, axis=None)["axis"]
        known = [self.values[i] for i in node.input if i in self.values]
        nhwc = all(v.nhwc for v in known)
        ins = [self.like(node, i, nhwc) for i in range(len(node.input))]
        axis %= len(ins[0].shape)
        axis = _NCHW_AXIS_IN_NHWC[axis] if nhwc else axis
        shape = list(ins[0].shape)
        shape[axis] = sum(v.shape[axis] for v in ins)
        self.emit(
            OP.CONCATENATION, [v.index for v in ins], node.output[0], shape, nhwc, tfl.ConcatenationOptionsT(axis=axis)
        )

    def _gemm(self, node, nodes, pos) -> None:
        a = node_attrs(node, alpha=1.0, beta=1.0, transA=0, transB=0)
        x, w, c = self.value(node, 0), self.constant(node, 1, "B"), self.constant(node, 2, "C")
        if a["transA"] or len(x.shape) != 2:
            raise unsupported(node, f"attribute transA={a['transA']} on a {len(shape_in_onnx(x))}-D A is not supported")
        w = (w if a["transB"] else w.T) * np.float32(a["alpha"])  # FULLY_CONNECTED weights are [out, in]
        bias = (
            np.zeros(w.shape[0], np.float32)
            if c is None
            else np.broadcast_to(c * np.float32(a["beta"]), (1, w.shape[0]))[0]
        )
        act, out = self.fuse(node, nodes, pos)
        self.emit(
            OP.FULLY_CONNECTED,
            [x.index, self.const(w, node.input[1]), self.const(bias, f"{node.name}_bias")],
            out,
            (x.shape[0], w.shape[0]),
            False,
            tfl.FullyConnectedOptionsT(fusedActivationFunction=act),
        )

    def _identity(self, node, nodes, pos) -> None:
        self.values[node.output[0]] = self.value(node, 0)

    def _broadcast(
        self, node, x: Value, onnx_shape: tuple[int, ...], code: int, arg: np.ndarray, options, version: int = 1
    ) -> None:
        """Expand/Tile: an alias when nothing grows, else the operator with its argument in the stored layout."""
        if x.nhwc and len(onnx_shape) != 4:
            x = self.plain(x)
        if x.nhwc:
            onnx_shape, arg = tuple(onnx_shape[p] for p in TO_NHWC), arg[list(TO_NHWC)]
        if tuple(onnx_shape) == x.shape:
            self.values[node.output[0]] = x
        else:
            self.emit(
                code, [x.index, self.const(arg, node.input[1])], node.output[0], onnx_shape, x.nhwc, options, version
            )

    def _expand(self, node, nodes, pos) -> None:
        x, target = self.value(node, 0), self.constant(node, 1, "the shape")
        shape = np.broadcast_shapes(shape_in_onnx(x), tuple(target))
        # LiteRT registers BROADCAST_TO from version 2 (version 1 was a TensorFlow "flex" operator)
        self._broadcast(node, x, shape, OP.BROADCAST_TO, np.array(shape), tfl.BroadcastToOptionsT(), version=2)

    def _tile(self, node, nodes, pos) -> None:
        x, repeats = self.value(node, 0), self.constant(node, 1, "repeats")
        self._broadcast(
            node, x, tuple(int(s * r) for s, r in zip(shape_in_onnx(x), repeats)), OP.TILE, repeats, tfl.TileOptionsT()
        )

    def _resize(self, node, nodes, pos) -> None:
        a = node_attrs(
            node,
            mode="nearest",
            coordinate_transformation_mode="half_pixel",
            cubic_coeff_a=-0.75,
            exclude_outside=0,
            nearest_mode="round_prefer_floor",
            extrapolation_value=0.0,
            antialias=0,
        )
        x = self.nhwc(self.value(node, 0))
        if a["mode"] != "linear" or a["coordinate_transformation_mode"] not in _RESIZE_MODES or a["antialias"]:
            raise unsupported(
                node,
                f"mode={a['mode']}, coordinate_transformation_mode="
                f"{a['coordinate_transformation_mode']}, antialias={a['antialias']} is not "
                f"supported (only linear with {', '.join(_RESIZE_MODES)})",
            )
        n, h, w, c = x.shape
        scales, sizes = self.constant(node, 2, "scales"), self.constant(node, 3, "sizes")
        if sizes is not None and sizes.size:
            out = tuple(int(s) for s in sizes)
        elif scales is not None and scales.size == 4:
            out = tuple(float(s) * d for s, d in zip(scales, (n, c, h, w)))
            if any(o != int(o) for o in out):  # LiteRT maps by size ratio, ONNX by the scale: equal if exact
                raise unsupported(node, f"scales {scales.tolist()} do not give whole output sizes")
            out = tuple(int(o) for o in out)
        else:
            raise unsupported(node, "Resize needs constant 4-D scales or sizes")
        if out[:2] != (n, c):
            raise unsupported(node, f"resizing the batch or channel axes ({out}) is not supported")
        align, half = _RESIZE_MODES[a["coordinate_transformation_mode"]]
        self.emit(
            OP.RESIZE_BILINEAR,
            [x.index, self.const(np.array(out[2:]), "size")],
            node.output[0],
            (n, out[2], out[3], c),
            True,
            tfl.ResizeBilinearOptionsT(alignCorners=align, halfPixelCenters=half),
            version=3 if half else 1,
        )
