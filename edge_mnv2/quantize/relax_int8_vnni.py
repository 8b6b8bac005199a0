"""The quantized model as a Relax module laid out for AVX-512 VNNI (``vpdpbusd``: uint8 x int8 -> int32).

Same integers as :mod:`edge_mnv2.quantize.relax_int8` (bit for bit the :func:`ptq.run_integer`
reference), arranged so MetaSchedule can tensorize the 1x1 convolutions and the classifier with the
16x4 VNNI dot product:

* **NHWC**, so the 4 input channels a lane sums are adjacent bytes; 1x1 weights are packed
  ``[O/16, I/4, 16, 4]`` (one 64-byte vector per 16 outputs x 4 inputs).
* **uint8 activations with a zero point**: ``vpdpbusd`` multiplies unsigned by signed bytes. A tensor
  after ReLU6 (values 0..127) is stored as is (zero point 0); a signed one (projections, residual sums)
  as ``q + 128``. The zero point is taken out exactly: ``sum((x - z) * w) = sum(x * w) - z * sum(w)``
  goes into the bias, and padding uses ``z`` so padded taps still contribute nothing.
* Nothing is padded, so the artifact stores the generic layout's bytes: a 1x1 convolution
  whose outputs are not a multiple of 16 (or inputs of 4) stays a plain NHWC convolution (the 8-, 24-
  and 56-channel projections at width 0.35; they are small), and so does a 10-class classifier.
* Values calibration chooses (shifts, scalar multipliers, the input scale) are 1-element tensors the
  kernels read, not constants compiled in: layers of one shape share a kernel (34 tuning tasks for
  0.35_96 instead of 43) and a tuning log stays valid when the model is recalibrated.
"""

from __future__ import annotations

import numpy as np

from edge_mnv2.errors import CompileError
from edge_mnv2.quantize.ptq import QMAX, QAdd, QConv, QDense, QPool, QuantizedModel, Requant
from edge_mnv2.quantize.x86_intrinsics import GROUP, LANES, register

SIGNED_ZERO_POINT = 128


def pack_vnni(weight: np.ndarray, out_channels: int, in_channels: int) -> np.ndarray:
    """``int8 [O, I]`` -> ``[O/16, I/4, 16, 4]``, the operand layout of ``vpdpbusd``."""
    return np.ascontiguousarray(
        weight.reshape(out_channels // LANES, LANES, in_channels // GROUP, GROUP).transpose(0, 2, 1, 3)
    )


# --- the kernels' compute definitions (TE); TVM fuses each with the requantization that follows ----


def vnni_matmul(x, w):
    """``out[..., o] = sum_k int32(x[..., k]) * int32(w[o/16, k/4, o%16, k%4])`` (1x1 conv, dense)."""
    from tvm import te

    *lead, ic = x.shape
    k = te.reduce_axis((0, ic), name="k")
    return te.compute(
        (*lead, w.shape[0] * LANES),
        lambda *i: te.sum(
            x[(*i[:-1], k)].astype("int32") * w[i[-1] // LANES, k // GROUP, i[-1] % LANES, k % GROUP].astype("int32"),
            axis=k,
        ),
        name="vnni_matmul",
    )


def conv2d_nhwc(x, w, stride: int, padding: int, zero_point: int):
    """Dense NHWC convolution, weights ``[KH, KW, I, O]``, padded with the input's zero point."""
    from tvm import te, tirx, topi

    pad = topi.nn.pad(x, [0, padding, padding, 0], pad_value=tirx.const(zero_point, x.dtype))
    n, h, wd, _ = x.shape
    kh, kw, ic, oc = w.shape
    oh, ow = (h + 2 * padding - kh) // stride + 1, (wd + 2 * padding - kw) // stride + 1
    rh, rw, rc = te.reduce_axis((0, kh), "rh"), te.reduce_axis((0, kw), "rw"), te.reduce_axis((0, ic), "rc")
    return te.compute(
        (n, oh, ow, oc),
        lambda b, i, j, o: te.sum(
            pad[b, i * stride + rh, j * stride + rw, rc].astype("int32") * w[rh, rw, rc, o].astype("int32"),
            axis=[rh, rw, rc],
        ),
        name="conv2d_nhwc",
    )


def depthwise_conv2d_nhwc(x, w, stride: int, padding: int, zero_point: int):
    """Depthwise NHWC convolution, weights ``[KH, KW, C]``, padded with the input's zero point."""
    from tvm import te, tirx, topi

    pad = topi.nn.pad(x, [0, padding, padding, 0], pad_value=tirx.const(zero_point, x.dtype))
    n, h, wd, c = x.shape
    kh, kw, _ = w.shape
    oh, ow = (h + 2 * padding - kh) // stride + 1, (wd + 2 * padding - kw) // stride + 1
    rh, rw = te.reduce_axis((0, kh), "rh"), te.reduce_axis((0, kw), "rw")
    return te.compute(
        (n, oh, ow, c),
        lambda b, i, j, ch: te.sum(
            pad[b, i * stride + rh, j * stride + rw, ch].astype("int32") * w[rh, rw, ch].astype("int32"), axis=[rh, rw]
        ),
        name="depthwise_conv2d_nhwc",
    )


# --- the graph ------------------------------------------------------------------------------------


def _vnni_fits(out_channels: int, in_channels: int) -> bool:
    return out_channels % LANES == 0 and in_channels % GROUP == 0


def dense_int(x, w):
    """``out[n, o] = sum_k int32(x[n, k]) * int32(w[k, o])`` for a classifier VNNI cannot tile."""
    from tvm import te

    k = te.reduce_axis((0, x.shape[1]), name="k")
    return te.compute(
        (x.shape[0], w.shape[1]),
        lambda n, o: te.sum(x[n, k].astype("int32") * w[k, o].astype("int32"), axis=k),
        name="dense_int",
    )


def build_module(model: QuantizedModel, input_shape: tuple[int, int, int, int], input_name: str = "input"):
    """A Relax IRModule with ``main(input: float32[input_shape] NCHW) -> float32 logits``."""
    from tvm import relax

    register()
    R = relax.op

    def const(value, dtype: str):
        return relax.const(np.asarray(value).astype(dtype), dtype)

    def calibrated(value, dtype: str):
        """A value calibration chose, as a 1-element tensor: the kernels read it from memory instead of
        baking it in, so their code (and a tuning log) does not depend on the calibration, and layers
        of the same shape share one tuned kernel."""
        return relax.const(np.asarray([value]).astype(dtype), dtype)

    def requant(x, rq: Requant):
        m = rq.multiplier.astype(np.int32)
        scaled = R.multiply(R.astype(x, "int64"), R.astype(const(m, "int32"), "int64"))
        return R.right_shift(R.add(scaled, calibrated(1 << (rq.shift - 1), "int64")), calibrated(rq.shift, "int64"))

    def store(y, lo: int):
        """int64 values in [lo, 127] -> uint8 with the zero point their sign needs."""
        zp = 0 if lo >= 0 else SIGNED_ZERO_POINT
        return R.astype(R.add(y, const(zp, "int64")) if zp else y, "uint8"), zp

    def centred(value: int):
        """A stored tensor's integer values (int64), its zero point taken back out."""
        x = R.astype(values[value], "int64")
        return R.subtract(x, const(zero_points[value], "int64")) if zero_points[value] else x

    bb = relax.BlockBuilder()
    x = relax.Var(input_name, relax.TensorType(tuple(input_shape), "float32"))
    values, zero_points = {}, {}
    with bb.function("main", [x]):
        with bb.dataflow():
            q = R.clip(
                R.floor(R.add(R.divide(x, calibrated(model.input_scale, "float32")), const(0.5, "float32"))),
                -QMAX,
                QMAX,
            )
            q = R.add(R.permute_dims(q, [0, 2, 3, 1]), const(SIGNED_ZERO_POINT, "float32"))
            values[0], zero_points[0] = bb.emit(R.astype(q, "uint8")), SIGNED_ZERO_POINT
            out = None
            for layer in model.layers:
                if isinstance(layer, QConv):
                    src, zp = values[layer.src], zero_points[layer.src]
                    oc, ic, k = layer.weight.shape[0], layer.weight.shape[1], layer.weight.shape[2]
                    pointwise = layer.groups == 1 and k == 1 and layer.stride == 1 and layer.padding == 0
                    if pointwise and _vnni_fits(oc, ic):
                        acc = bb.emit_te(vnni_matmul, src, const(pack_vnni(layer.weight[:, :, 0, 0], oc, ic), "int8"))
                    elif layer.groups == 1:
                        acc = bb.emit_te(
                            conv2d_nhwc,
                            src,
                            const(layer.weight.transpose(2, 3, 1, 0), "int8"),
                            layer.stride,
                            layer.padding,
                            zp,
                        )
                    elif layer.groups == oc and ic == 1:
                        weight = const(layer.weight[:, 0].transpose(1, 2, 0), "int8")
                        acc = bb.emit_te(depthwise_conv2d_nhwc, src, weight, layer.stride, layer.padding, zp)
                    else:
                        raise CompileError(
                            f"the VNNI int8 layout has no kernel for a convolution with "
                            f"{layer.groups} groups of {ic} channels (only dense and "
                            "depthwise); compile for a target without AVX-512 VNNI"
                        )
                    w_sum = layer.weight.astype(np.int64).reshape(oc, -1).sum(axis=1)
                    acc = R.add(acc, const((layer.bias - zp * w_sum).reshape(1, 1, 1, oc), "int32"))
                    y = R.clip(requant(acc, layer.requant), layer.lo, layer.hi)
                    stored, zero_points[layer.dst] = store(y, layer.lo)
                    values[layer.dst] = bb.emit(stored)
                elif isinstance(layer, QAdd):
                    a = R.multiply(centred(layer.a), calibrated(int(layer.requant_a.multiplier[0]), "int64"))
                    b = R.multiply(centred(layer.b), calibrated(int(layer.requant_b.multiplier[0]), "int64"))
                    total = R.add(R.add(a, b), calibrated(1 << (layer.requant_a.shift - 1), "int64"))
                    y = R.clip(R.right_shift(total, calibrated(layer.requant_a.shift, "int64")), -QMAX, QMAX)
                    stored, zero_points[layer.dst] = store(y, -QMAX)
                    values[layer.dst] = bb.emit(stored)
                elif isinstance(layer, QPool):
                    src = values[layer.src]
                    total = R.sum(R.astype(src, "int32"), axis=[1, 2])
                    if zero_points[layer.src]:
                        count = int(np.prod([int(d) for d in src.struct_info.shape[1:3]]))
                        total = R.subtract(total, const(zero_points[layer.src] * count, "int32"))
                    y = R.clip(requant(total, layer.requant), -QMAX, QMAX)
                    stored, zero_points[layer.dst] = store(y, -QMAX)
                    values[layer.dst] = bb.emit(stored)
                elif isinstance(layer, QDense):
                    classes, features = layer.weight.shape
                    if _vnni_fits(classes, features):
                        acc = bb.emit_te(
                            vnni_matmul, values[layer.src], const(pack_vnni(layer.weight, classes, features), "int8")
                        )
                    else:
                        acc = bb.emit_te(dense_int, values[layer.src], const(layer.weight.T.copy(), "int8"))
                    w_sum = layer.weight.astype(np.int64).sum(axis=1)
                    acc = R.add(acc, const((layer.bias - zero_points[layer.src] * w_sum).reshape(1, -1), "int32"))
                    out = bb.emit(
                        R.multiply(R.astype(acc, "float32"), const(layer.out_scale.reshape(1, -1), "float32"))
                    )
            gv = bb.emit_output(out)
        bb.emit_func_output(gv)
    return bb.get()
