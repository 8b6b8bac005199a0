"""MobileNetV2 (Sandler et al., CVPR 2018), Table 2, at any width multiplier and resolution.

The module tree matches torchvision's ``mobilenet_v2`` (``features.N...``, ``classifier.1``) so its
state dicts load directly.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from edge_mnv2.errors import InvalidModelSpecError
from edge_mnv2.models.registry import ModelSpec, register_model, register_name_checker

# Table 2: expansion t, output channels c, repeats n, first stride s.
INVERTED_RESIDUAL_SETTING: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
FIRST_CHANNELS = 32
LAST_CHANNELS = 1280
DROPOUT = 0.2

# The paper's grid (Figure 5 / Table 4 sweeps).
WIDTHS: tuple[float, ...] = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
RESOLUTIONS: tuple[int, ...] = (96, 128, 160, 192, 224)
IMAGENET_CLASSES = 1000


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of ``divisor`` without losing more than 10%.

    The rounding of the TF reference and torchvision, so channel counts match their checkpoints.
    """
    new_value = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return new_value


def init_conv_bn(module: nn.Module) -> None:
    """torchvision's initialisation of every conv (kaiming fan-out, zero bias) and BatchNorm (unit, zero)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class ConvBNReLU6(nn.Sequential):
    """Conv2d (no bias) + BatchNorm + ReLU6; indices 0/1 as torchvision's Conv2dNormActivation."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, groups: int = 1):
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    """Expand (1x1, skipped when t == 1) -> depthwise 3x3 -> linear 1x1 projection, residual if it fits."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expand_ratio: int):
        super().__init__()
        if stride not in (1, 2):
            raise InvalidModelSpecError(f"stride must be 1 or 2, got {stride}")
        hidden = int(round(in_ch * expand_ratio))
        self.use_res_connect = stride == 1 and in_ch == out_ch
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU6(in_ch, hidden, kernel=1))
        layers += [
            ConvBNReLU6(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, out_ch, 1, bias=False),  # linear bottleneck: no activation
            nn.BatchNorm2d(out_ch),
        ]
        self.conv = nn.Sequential(*layers)
        self.out_channels = out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


def build_features(width: float) -> nn.Sequential:
    """The feature extractor of Table 2 (``features.0`` .. ``features.18``): stem conv, the 17 bottleneck
    layers and the last 1x1 conv (1280 x max(1, width)); the backbone of the detection and segmentation
    models too."""
    in_ch = make_divisible(FIRST_CHANNELS * width)
    features: list[nn.Module] = [ConvBNReLU6(3, in_ch, stride=2)]
    for t, c, n, s in INVERTED_RESIDUAL_SETTING:
        out_ch = make_divisible(c * width)
        for i in range(n):
            features.append(InvertedResidual(in_ch, out_ch, s if i == 0 else 1, t))
            in_ch = out_ch
    features.append(ConvBNReLU6(in_ch, make_divisible(LAST_CHANNELS * max(1.0, width)), kernel=1))
    return nn.Sequential(*features)


class MobileNetV2(nn.Module):
    """The MobileNetV2 classifier.

    Args:
        width: width multiplier; every channel count is scaled and rounded to a multiple of 8,
            except the last 1x1 conv, which stays 1280 for widths below 1.
        resolution: the input side in pixels (recorded; the network itself is resolution-agnostic).
        num_classes: classifier outputs.
        dropout: dropout before the classifier.
    """

    def __init__(
        self, width: float = 1.0, resolution: int = 224, num_classes: int = IMAGENET_CLASSES, dropout: float = DROPOUT
    ):
        super().__init__()
        validate_spec(width, resolution, num_classes)
        self.width, self.resolution, self.num_classes = float(width), int(resolution), int(num_classes)
        self.features = build_features(width)
        self.last_channel = self.features[-1][0].out_channels
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(self.last_channel, num_classes))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torchvision's initialisation (kaiming fan-out convs, unit BN, small normal classifier)."""
        init_conv_bn(self)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = nn.functional.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.classifier(x)


def validate_spec(width: float, resolution: int, num_classes: int) -> None:
    """Reject a width, resolution or class count that cannot make a MobileNetV2."""
    if not (0 < width <= 4):
        raise InvalidModelSpecError(
            f"width multiplier {width} is out of range; use a value in (0, 4], "
            f"for example one of {', '.join(map(str, WIDTHS))}"
        )
    if int(resolution) != resolution or not (32 <= resolution <= 1024):
        raise InvalidModelSpecError(
            f"resolution {resolution} is out of range; use an integer from 32 to "
            f"1024, for example one of {', '.join(map(str, RESOLUTIONS))}"
        )
    if int(num_classes) != num_classes or num_classes < 1:
        raise InvalidModelSpecError(f"num_classes {num_classes} must be a positive integer")


def format_width(width: float) -> str:
    """A width as the paper writes it: 0.35, 0.5, 1.0, 1.4."""
    return f"{width:.1f}" if width == int(width) else f"{width:g}"


def variant_name(width: float, resolution: int) -> str:
    """``mobilenet_v2_<width>_<resolution>``."""
    return f"mobilenet_v2_{format_width(width)}_{resolution}"


_NAME_RE = re.compile(r"^mobilenet_v2_(?P<width>[^_]+)_(?P<res>[^_.]+)$")


def _check_near_miss(name: str) -> None:
    """Explain a ``mobilenet_v2_<w>_<r>`` name whose width or resolution is off the grid."""
    match = _NAME_RE.match(name)
    if not match:
        return
    widths = ", ".join(map(format_width, WIDTHS))
    resolutions = ", ".join(map(str, RESOLUTIONS))
    try:
        width = float(match["width"])
    except ValueError:
        width = None
    if width is None or width not in WIDTHS:
        raise InvalidModelSpecError(
            f"width {match['width']!r} in model {name!r} is not a MobileNetV2 variant; "
            f"valid widths: {widths} (name as mobilenet_v2_<width>_<resolution>)"
        )
    if not match["res"].isdigit() or int(match["res"]) not in RESOLUTIONS:
        raise InvalidModelSpecError(
            f"resolution {match['res']!r} in model {name!r} is not a MobileNetV2 variant; "
            f"valid resolutions: {resolutions} (name as mobilenet_v2_<width>_<resolution>)"
        )


def _build(width: float, resolution: int, num_classes: int, **kwargs) -> MobileNetV2:
    return MobileNetV2(width=width, resolution=resolution, num_classes=num_classes, **kwargs)


for _w in WIDTHS:
    for _r in RESOLUTIONS:
        register_model(
            ModelSpec(
                name=variant_name(_w, _r),
                family="mobilenet_v2",
                width=_w,
                resolution=_r,
                num_classes=IMAGENET_CLASSES,
                builder=_build,
            )
        )
register_name_checker(_check_near_miss)
