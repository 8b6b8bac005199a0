"""A MobileNetV2 classifier as a flat list of BatchNorm-folded layers: what post-training quantization
calibrates and what the integer graph is built from.

Tensors are numbered; tensor 0 is the (float, normalised) model input. Layers read and write tensor
ids, so residual connections are explicit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from edge_mnv2.errors import EdgeMnv2Error


@dataclass
class Conv:
    """Conv2d with BatchNorm folded in (weight ``[O, I/groups, k, k]``, bias ``[O]``), optional ReLU6."""

    src: int
    dst: int
    weight: np.ndarray
    bias: np.ndarray
    stride: int
    padding: int
    groups: int
    relu6: bool


@dataclass
class Add:
    """Residual addition ``dst = a + b``."""

    a: int
    b: int
    dst: int


@dataclass
class GlobalPool:
    """Global average pooling ``[1, C, H, W] -> [1, C]``."""

    src: int
    dst: int


@dataclass
class Dense:
    """The classifier ``dst = src @ weight.T + bias`` (weight ``[classes, C]``); its output stays float."""

    src: int
    dst: int
    weight: np.ndarray
    bias: np.ndarray


Layer = Conv | Add | GlobalPool | Dense


def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d | None) -> tuple[np.ndarray, np.ndarray]:
    w = conv.weight.detach().double().numpy()
    b = conv.bias.detach().double().numpy() if conv.bias is not None else np.zeros(w.shape[0])
    if bn is not None:
        gamma = bn.weight.detach().double().numpy()
        beta = bn.bias.detach().double().numpy()
        mean = bn.running_mean.detach().double().numpy()
        var = bn.running_var.detach().double().numpy()
        factor = gamma / np.sqrt(var + bn.eps)
        w = w * factor[:, None, None, None]
        b = (b - mean) * factor + beta
    return w, b


def layer_graph(model: nn.Module) -> list[Layer]:
    """The layers of a :class:`~edge_mnv2.models.mobilenet_v2.MobileNetV2` in execution order."""
    from edge_mnv2.models.mobilenet_v2 import ConvBNReLU6, InvertedResidual, MobileNetV2

    if not isinstance(model, MobileNetV2):
        raise EdgeMnv2Error(f"int8 quantization supports the MobileNetV2 classifier family; got {type(model).__name__}")
    layers: list[Layer] = []
    counter = [0]

    def new() -> int:
        counter[0] += 1
        return counter[0]

    def conv_bn(src: int, conv: nn.Conv2d, bn: nn.BatchNorm2d, relu6: bool) -> int:
        w, b = _fold(conv, bn)
        dst = new()
        layers.append(Conv(src, dst, w, b, conv.stride[0], conv.padding[0], conv.groups, relu6))
        return dst

    x = 0
    for block in model.features:
        if isinstance(block, ConvBNReLU6):
            x = conv_bn(x, block[0], block[1], True)
        elif isinstance(block, InvertedResidual):
            y = x
            mods = list(block.conv)
            i = 0
            while i < len(mods):
                m = mods[i]
                if isinstance(m, ConvBNReLU6):
                    y = conv_bn(y, m[0], m[1], True)
                    i += 1
                else:  # the linear projection: Conv2d + BatchNorm, no activation
                    y = conv_bn(y, m, mods[i + 1], False)
                    i += 2
            if block.use_res_connect:
                dst = new()
                layers.append(Add(x, y, dst))
                y = dst
            x = y
        else:
            raise EdgeMnv2Error(f"unexpected block {type(block).__name__} in the feature extractor")
    pooled = new()
    layers.append(GlobalPool(x, pooled))
    linear = model.classifier[-1]
    out = new()
    layers.append(Dense(pooled, out, linear.weight.detach().double().numpy(), linear.bias.detach().double().numpy()))
    return layers


def run_float(layers: list[Layer], x: np.ndarray, record: dict[int, list] | None = None) -> np.ndarray:
    """The folded graph in float (torch), optionally recording each tensor's value per batch."""
    values = {0: torch.from_numpy(np.asarray(x, np.float32))}
    for layer in layers:
        if isinstance(layer, Conv):
            y = torch.nn.functional.conv2d(
                values[layer.src],
                torch.from_numpy(layer.weight.astype(np.float32)),
                torch.from_numpy(layer.bias.astype(np.float32)),
                layer.stride,
                layer.padding,
                1,
                layer.groups,
            )
            values[layer.dst] = y.clamp(0, 6) if layer.relu6 else y
        elif isinstance(layer, Add):
            values[layer.dst] = values[layer.a] + values[layer.b]
        elif isinstance(layer, GlobalPool):
            values[layer.dst] = values[layer.src].mean(dim=(2, 3))
        else:
            values[layer.dst] = values[layer.src] @ torch.from_numpy(
                layer.weight.T.astype(np.float32)
            ) + torch.from_numpy(layer.bias.astype(np.float32))
        if record is not None:
            record.setdefault(layer.dst, []).append(values[layer.dst])
    if record is not None:
        record.setdefault(0, []).append(values[0])
    return values[layers[-1].dst].numpy()
