"""The quantized model as a Relax module that really computes in int8.

TVM 0.27 imports ONNX QuantizeLinear/DequantizeLinear as float arithmetic, so the integer graph is
built directly: int8 tensors between layers, ``conv2d``/``matmul`` on int8 operands with int32
accumulation, and the requantization of :mod:`edge_mnv2.quantize.ptq` as int64 multiply, add and
shift. TVM fuses each convolution with its requantization into one kernel, whose buffers are int8
(activations, weights), int32 (biases, multipliers) and the int8 output. Input and output stay float,
so the compiled model has the same interface as the float one.
"""

from __future__ import annotations

import numpy as np

from edge_mnv2.quantize.ptq import QMAX, QAdd, QConv, QDense, QPool, QuantizedModel, Requant


def build_module(model: QuantizedModel, input_shape: tuple[int, int, int, int], input_name: str = "input"):
    """A Relax IRModule with ``main(input: float32[input_shape]) -> float32 logits``."""
    from tvm import relax

    R = relax.op

    def const(value, dtype: str):
        return relax.const(np.asarray(value).astype(dtype), dtype)

    def requant(x, rq: Requant, channels_axis: bool):
        m = rq.multiplier.astype(np.int32)
        if channels_axis and m.size > 1:
            m = m.reshape(1, -1, 1, 1)
        elif m.size == 1:
            m = m.reshape(())
        scaled = R.multiply(R.astype(x, "int64"), R.astype(const(m, "int32"), "int64"))
        return R.right_shift(R.add(scaled, const(1 << (rq.shift - 1), "int64")), const(rq.shift, "int64"))

    bb = relax.BlockBuilder()
    x = relax.Var(input_name, relax.TensorType(tuple(input_shape), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            q = R.floor(R.add(R.divide(x, const(model.input_scale, "float32")), const(0.5, "float32")))
            values = {0: bb.emit(R.astype(R.clip(q, -QMAX, QMAX), "int8"))}
            out = None
            for layer in model.layers:
                if isinstance(layer, QConv):
                    acc = R.nn.conv2d(
                        values[layer.src],
                        const(layer.weight, "int8"),
                        strides=layer.stride,
                        padding=layer.padding,
                        groups=layer.groups,
                        out_dtype="int32",
                    )
                    acc = R.add(acc, const(layer.bias.reshape(1, -1, 1, 1), "int32"))
                    y = R.clip(requant(acc, layer.requant, True), layer.lo, layer.hi)
                    values[layer.dst] = bb.emit(R.astype(y, "int8"))
                elif isinstance(layer, QAdd):
                    a = R.multiply(
                        R.astype(values[layer.a], "int64"), const(int(layer.requant_a.multiplier[0]), "int64")
                    )
                    b = R.multiply(
                        R.astype(values[layer.b], "int64"), const(int(layer.requant_b.multiplier[0]), "int64")
                    )
                    total = R.add(R.add(a, b), const(1 << (layer.requant_a.shift - 1), "int64"))
                    y = R.right_shift(total, const(layer.requant_a.shift, "int64"))
                    values[layer.dst] = bb.emit(R.astype(R.clip(y, -QMAX, QMAX), "int8"))
                elif isinstance(layer, QPool):
                    total = R.sum(R.astype(values[layer.src], "int32"), axis=[2, 3])
                    y = R.clip(requant(total, layer.requant, False), -QMAX, QMAX)
                    values[layer.dst] = bb.emit(R.astype(y, "int8"))
                elif isinstance(layer, QDense):
                    acc = R.matmul(values[layer.src], const(layer.weight.T.copy(), "int8"), out_dtype="int32")
                    acc = R.add(acc, const(layer.bias.reshape(1, -1), "int32"))
                    logits = R.multiply(R.astype(acc, "float32"), const(layer.out_scale.reshape(1, -1), "float32"))
                    out = bb.emit(logits)
            gv = bb.emit_output(out)
        bb.emit_func_output(gv)
    return bb.get()
