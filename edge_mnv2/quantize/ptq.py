"""Post-training static int8 quantization: calibration, integer parameters, and an integer reference.

Scheme (the usual one for int8 inference engines):

* weights: int8, symmetric, one scale per output channel;
* activations: int8, symmetric, one scale per tensor, from the largest magnitude seen on calibration
  images (ReLU6 outputs are clipped to [0, 127]);
* accumulation in int32 (biases quantized to int32 at the accumulator's scale);
* requantization in integer arithmetic: ``(acc * m + 2^(s-1)) >> s`` with a per-channel int32
  multiplier ``m`` and a per-layer shift ``s``, then clipping to int8;
* the classifier's int32 accumulator is scaled back to float logits (the model's output stays float,
  as its input does: the first step quantizes the normalised image).

:func:`run_integer` computes exactly what the compiled kernels compute (same integer operations, same
rounding), so device outputs can be compared with it bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edge_mnv2.quantize.graph import Add, Conv, Dense, GlobalPool, Layer, run_float

QMAX = 127
MULTIPLIER_BITS = 30  # per-channel multipliers < 2^30: acc (< 2^31) * m stays inside int64


@dataclass
class Requant:
    """Integer rescaling ``(x * multiplier + 2^(shift-1)) >> shift`` (multiplier per channel or scalar)."""

    multiplier: np.ndarray  # int32
    shift: int

    @classmethod
    def of(cls, real: np.ndarray) -> "Requant":
        real = np.atleast_1d(np.asarray(real, np.float64))
        top = float(real.max())
        shift = int(np.clip(MULTIPLIER_BITS - np.ceil(np.log2(top)) if top > 0 else 0, 1, 62))
        return cls(np.round(real * 2.0**shift).astype(np.int32), shift)

    def apply(self, x: np.ndarray, channel_axis: int | None = 1) -> np.ndarray:
        m = self.multiplier.astype(np.int64)
        if channel_axis is not None and m.size > 1:
            shape = [1] * x.ndim
            shape[channel_axis] = m.size
            m = m.reshape(shape)
        return (x.astype(np.int64) * m + (1 << (self.shift - 1))) >> self.shift


@dataclass
class QConv:
    src: int
    dst: int
    weight: np.ndarray  # int8 [O, I/g, k, k]
    bias: np.ndarray  # int32 [O]
    requant: Requant
    stride: int
    padding: int
    groups: int
    lo: int  # 0 after ReLU6, -127 otherwise
    hi: int


@dataclass
class QAdd:
    a: int
    b: int
    dst: int
    requant_a: Requant
    requant_b: Requant  # same shift as requant_a


@dataclass
class QPool:
    src: int
    dst: int
    requant: Requant  # divides the int32 sum by H*W and rescales


@dataclass
class QDense:
    src: int
    dst: int
    weight: np.ndarray  # int8 [classes, C]
    bias: np.ndarray  # int32 [classes]
    out_scale: np.ndarray  # float32 [classes]: logits = acc * out_scale


@dataclass
class QuantizedModel:
    layers: list
    input_scale: float
    scales: dict[int, float]
    calibration: dict = field(default_factory=dict)

    def weight_bytes(self) -> dict[str, int]:
        """Bytes of the stored parameters: int8 weights, int32 biases, int32 multipliers."""
        w = b = m = 0
        for layer in self.layers:
            if isinstance(layer, (QConv, QDense)):
                w += layer.weight.nbytes
                b += layer.bias.nbytes
            if isinstance(layer, QConv):
                m += layer.requant.multiplier.nbytes
            if isinstance(layer, QAdd):
                m += layer.requant_a.multiplier.nbytes + layer.requant_b.multiplier.nbytes
            if isinstance(layer, QDense):
                m += layer.out_scale.nbytes
        return {"int8_weights": w, "int32_biases": b, "scales": m, "total": w + b + m}


@dataclass
class Calibration:
    absmax: dict[int, float]  # largest magnitude of each tensor
    shapes: dict[int, tuple[int, ...]]  # each tensor's shape (batch dimension 1)
    images: int


def calibrate(layers: list[Layer], images: np.ndarray, batch: int = 32) -> Calibration:
    """Largest magnitude of every tensor over the calibration inputs (float NCHW)."""
    absmax: dict[int, float] = {}
    shapes: dict[int, tuple[int, ...]] = {}
    for start in range(0, len(images), batch):
        record: dict[int, list] = {}
        run_float(layers, images[start : start + batch], record)
        for tid, values in record.items():
            absmax[tid] = max(absmax.get(tid, 0.0), float(max(v.abs().max() for v in values)))
            shapes[tid] = (1, *values[0].shape[1:])
    return Calibration(absmax, shapes, len(images))


def quantize(layers: list[Layer], calibration: Calibration) -> QuantizedModel:
    """Integer parameters for ``layers`` given calibrated magnitudes."""
    scales = {tid: max(value, 1e-8) / QMAX for tid, value in calibration.absmax.items()}
    for layer in layers:  # a ReLU6 output never exceeds 6
        if isinstance(layer, Conv) and layer.relu6:
            scales[layer.dst] = min(scales[layer.dst], 6.0 / QMAX)
    out: list = []
    for layer in layers:
        if isinstance(layer, Conv):
            s_x, s_y = scales[layer.src], scales[layer.dst]
            w_scale = np.maximum(np.abs(layer.weight).reshape(layer.weight.shape[0], -1).max(axis=1), 1e-12) / QMAX
            weight = np.clip(np.round(layer.weight / w_scale[:, None, None, None]), -QMAX, QMAX).astype(np.int8)
            bias = np.round(layer.bias / (s_x * w_scale)).astype(np.int32)
            hi = int(min(QMAX, np.round(6.0 / s_y))) if layer.relu6 else QMAX
            out.append(
                QConv(
                    layer.src,
                    layer.dst,
                    weight,
                    bias,
                    Requant.of(s_x * w_scale / s_y),
                    layer.stride,
                    layer.padding,
                    layer.groups,
                    0 if layer.relu6 else -QMAX,
                    hi,
                )
            )
        elif isinstance(layer, Add):
            s_y = scales[layer.dst]
            both = Requant.of(np.array([scales[layer.a] / s_y, scales[layer.b] / s_y]))
            out.append(
                QAdd(
                    layer.a,
                    layer.b,
                    layer.dst,
                    Requant(both.multiplier[:1], both.shift),
                    Requant(both.multiplier[1:], both.shift),
                )
            )
        elif isinstance(layer, GlobalPool):
            _, _, h, w = calibration.shapes[layer.src]
            out.append(
                QPool(layer.src, layer.dst, Requant.of(np.array([scales[layer.src] / scales[layer.dst] / (h * w)])))
            )
        elif isinstance(layer, Dense):
            s_x = scales[layer.src]
            w_scale = np.maximum(np.abs(layer.weight).max(axis=1), 1e-12) / QMAX
            weight = np.clip(np.round(layer.weight / w_scale[:, None]), -QMAX, QMAX).astype(np.int8)
            bias = np.round(layer.bias / (s_x * w_scale)).astype(np.int32)
            out.append(QDense(layer.src, layer.dst, weight, bias, (s_x * w_scale).astype(np.float32)))
    return QuantizedModel(out, scales[0], scales, {"images": calibration.images})


def quantize_input(x: np.ndarray, scale: float) -> np.ndarray:
    """float -> int8, as the graph's first step: ``clip(floor(x / s + 0.5))``."""
    q = np.floor(np.asarray(x, np.float32) / np.float32(scale) + np.float32(0.5))
    return np.clip(q, -QMAX, QMAX).astype(np.int8)


def _conv_int(x: np.ndarray, w: np.ndarray, stride: int, padding: int, groups: int) -> np.ndarray:
    """Integer convolution (int8 inputs, int64 accumulation) of one NCHW image batch."""
    import torch

    # float64 holds every int32 accumulator exactly (|sum| < 2^53), so this is exact integer arithmetic
    y = torch.nn.functional.conv2d(
        torch.from_numpy(x.astype(np.float64)), torch.from_numpy(w.astype(np.float64)), None, stride, padding, 1, groups
    )
    return y.numpy().astype(np.int64)


def run_integer(model: QuantizedModel, x: np.ndarray) -> np.ndarray:
    """The quantized model in exact integer arithmetic (float NCHW input, float logits out)."""
    values = {0: quantize_input(x, model.input_scale).astype(np.int64)}
    for layer in model.layers:
        if isinstance(layer, QConv):
            acc = _conv_int(values[layer.src], layer.weight, layer.stride, layer.padding, layer.groups)
            acc = acc + layer.bias.astype(np.int64).reshape(1, -1, 1, 1)
            values[layer.dst] = np.clip(layer.requant.apply(acc), layer.lo, layer.hi)
        elif isinstance(layer, QAdd):
            m_a = int(layer.requant_a.multiplier[0])
            m_b = int(layer.requant_b.multiplier[0])
            total = values[layer.a] * m_a + values[layer.b] * m_b + (1 << (layer.requant_a.shift - 1))
            values[layer.dst] = np.clip(total >> layer.requant_a.shift, -QMAX, QMAX)
        elif isinstance(layer, QPool):
            acc = values[layer.src].sum(axis=(2, 3))
            values[layer.dst] = np.clip(layer.requant.apply(acc, None), -QMAX, QMAX)
        else:
            acc = values[layer.src] @ layer.weight.astype(np.int64).T + layer.bias.astype(np.int64)
            values[layer.dst] = acc.astype(np.float32) * layer.out_scale
    return values[model.layers[-1].dst].astype(np.float32)
