"""Parameter and multiply-add counts, as the MobileNetV2 paper counts them.

Multiply-adds are those of convolutions and fully connected layers for one image (BatchNorm folds into
the convolutions at inference; additions, activations and pooling are not counted).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Complexity:
    params: int
    madds: int

    @property
    def params_m(self) -> float:
        return self.params / 1e6

    @property
    def madds_m(self) -> float:
        return self.madds / 1e6


def count_params(model: nn.Module) -> int:
    """Trainable and BatchNorm-affine parameters (buffers such as running stats excluded)."""
    return sum(p.numel() for p in model.parameters())


def count_madds(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-adds of one forward pass on a batch-1 input of ``input_shape``."""
    total = 0

    def conv_hook(m: nn.Conv2d, _inp, out):
        nonlocal total
        k = m.kernel_size[0] * m.kernel_size[1]
        total += out[0].numel() * (m.in_channels // m.groups) * k

    def linear_hook(m: nn.Linear, _inp, out):
        nonlocal total
        total += out[0].numel() * m.in_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    device = next(model.parameters()).device
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_shape[1:], device=device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return total


def measure(model: nn.Module, input_shape: tuple[int, ...]) -> Complexity:
    """Parameters and multiply-adds of ``model`` at ``input_shape``."""
    return Complexity(params=count_params(model), madds=count_madds(model, input_shape))
