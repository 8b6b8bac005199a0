"""Mobile DeepLabv3 on a MobileNetV2 backbone (the paper's section 6.3), at any width and resolution.

As TensorFlow's DeepLab with ``mobilenet_v2`` that the paper used:

* the backbone runs at output stride 16: the last stride-2 layer (``features.14``) gets stride 1 and
  the layers after it atrous (dilation 2) depthwise convolutions, TF's ``output_stride`` rule;
* the head sits on the second-to-last feature map (``features.17``, 320 channels at width 1.0; the
  1280-channel last layer is not used);
* the no-ASPP head (the paper's on-device pick): image pooling (global average, 1x1 conv to 256, BN,
  ReLU, broadcast back) and a 1x1 conv branch (256), concatenated, 1x1 projection to 256 with BN and
  ReLU, dropout 0.1, and a 1x1 conv with bias to the class logits;
* the ASPP variant adds three 3x3 atrous convolutions (rates 6, 12, 18 at output stride 16, 256 each);
* the logits are upsampled bilinearly to the input resolution inside the model, so ``forward`` gives
  ``[N, C, H, W]`` and the prediction is a plain arg-max (:mod:`edge_mnv2.postprocess.segmentation`).

The head depth stays 256 at every width multiplier, as in TF's DeepLab (only the backbone scales).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from edge_mnv2.models.mobilenet_v2 import WIDTHS, build_features, format_width, init_conv_bn, validate_spec
from edge_mnv2.models.registry import ModelSpec, register_model
from edge_mnv2.postprocess.segmentation import SEGMENTATION_CONFIG

VOC_CLASSES = 21  # 20 classes + background
OUTPUT_STRIDE = 16
HEAD_DEPTH = 256
ASPP_RATES = (6, 12, 18)  # at output stride 16
DROPOUT = 0.1
RESOLUTIONS: tuple[int, ...] = (96, 128, 160, 192, 224, 512)
DEFAULT_RESOLUTION = 512
FAMILY = "deeplabv3_mobilenet_v2"
ASPP_FAMILY = "deeplabv3_aspp_mobilenet_v2"
HEAD_BLOCKS = 18  # features.0 .. features.17: up to the 320-channel layer


def _conv_bn_relu(in_ch: int, out_ch: int, kernel: int = 1, dilation: int = 1) -> nn.Sequential:
    pad = dilation * (kernel - 1) // 2
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, padding=pad, dilation=dilation, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


def make_atrous(features: nn.Sequential, output_stride: int) -> None:
    """Give ``features`` an output stride of ``output_stride`` with atrous convolutions (in place).

    TF's rule: once the running stride has reached ``output_stride``, a strided layer gets stride 1
    and the layers after it a dilation multiplied by its stride.
    """
    current, rate = 1, 1
    for block in features:
        conv = block[0] if isinstance(block, nn.Sequential) else block.conv[-3][0]  # stem, or depthwise
        stride = conv.stride[0]
        if current >= output_stride:
            layer_rate = rate
            rate *= stride
            if stride > 1 or layer_rate > 1:
                pad = layer_rate * (conv.kernel_size[0] - 1) // 2
                conv.stride, conv.dilation, conv.padding = (1, 1), (layer_rate, layer_rate), (pad, pad)
        else:
            current *= stride


class DeepLabHead(nn.Module):
    """Image pooling + 1x1 branch (+ atrous 3x3 branches with ASPP), projection, logits."""

    def __init__(
        self,
        in_ch: int,
        num_classes: int,
        aspp: bool = False,
        depth: int = HEAD_DEPTH,
        rates: tuple[int, ...] = ASPP_RATES,
    ):
        super().__init__()
        self.image_pool = _conv_bn_relu(in_ch, depth)
        self.conv1x1 = _conv_bn_relu(in_ch, depth)
        self.atrous = nn.ModuleList(_conv_bn_relu(in_ch, depth, 3, r) for r in rates) if aspp else nn.ModuleList()
        self.project = _conv_bn_relu(depth * (2 + len(self.atrous)), depth)
        self.dropout = nn.Dropout(DROPOUT)
        self.classifier = nn.Conv2d(depth, num_classes, 1)

    def forward(self, x: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        pooled = self.image_pool(F.adaptive_avg_pool2d(x, 1))
        if size is not None:  # known sizes (export): a Tile with constant repeats, no Shape arithmetic
            pooled = pooled.repeat(1, 1, size[0], size[1])
        else:
            pooled = pooled.expand(-1, -1, x.shape[2], x.shape[3])
        branches = [pooled, self.conv1x1(x)]
        branches += [branch(x) for branch in self.atrous]
        return self.classifier(self.dropout(self.project(torch.cat(branches, 1))))


class DeepLabV3(nn.Module):
    """Mobile DeepLabv3: MobileNetV2 at output stride 16 and the DeepLabv3 head.

    Args:
        width: width multiplier of the backbone.
        resolution: input side in pixels (recorded; the network is resolution-agnostic).
        num_classes: classes including background (21 for PASCAL VOC).
        aspp: add the atrous spatial pyramid pooling branches.
    """

    def __init__(
        self,
        width: float = 1.0,
        resolution: int = DEFAULT_RESOLUTION,
        num_classes: int = VOC_CLASSES,
        aspp: bool = False,
    ):
        super().__init__()
        validate_spec(width, resolution, num_classes)
        self.width, self.resolution, self.num_classes = float(width), int(resolution), int(num_classes)
        self.aspp = bool(aspp)
        self.features = build_features(width)[:HEAD_BLOCKS]
        make_atrous(self.features, OUTPUT_STRIDE)
        self.head = DeepLabHead(self.features[-1].out_channels, num_classes, aspp=aspp)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init_conv_bn(self)
        nn.init.normal_(self.head.classifier.weight, 0.0, 0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_tracing() and self.resolution % OUTPUT_STRIDE == 0:
            # Export traces at the model's resolution: constant sizes and scales give the ONNX graph a
            # static Tile and Resize instead of the Shape arithmetic the exporter writes for x.shape.
            if tuple(x.shape[2:]) != (self.resolution, self.resolution):
                raise ValueError(f"export traces {self.resolution}x{self.resolution} inputs, got {tuple(x.shape)}")
            side = self.resolution // OUTPUT_STRIDE
            logits = self.head(self.features(x), (side, side))
            # Exactly the size-based resize: the input/output ratio is 1/16 either way.
            return F.interpolate(logits, scale_factor=float(OUTPUT_STRIDE), mode="bilinear", align_corners=False)
        logits = self.head(self.features(x))
        return F.interpolate(logits, size=(x.shape[2], x.shape[3]), mode="bilinear", align_corners=False)


def variant_name(width: float, resolution: int, aspp: bool = False) -> str:
    """``deeplabv3_mobilenet_v2_<width>_<resolution>`` (``deeplabv3_aspp_...`` with ASPP)."""
    return f"{ASPP_FAMILY if aspp else FAMILY}_{format_width(width)}_{resolution}"


def _build(width: float, resolution: int, num_classes: int, **kwargs) -> DeepLabV3:
    return DeepLabV3(width=width, resolution=resolution, num_classes=num_classes, **kwargs)


def _build_aspp(width: float, resolution: int, num_classes: int, **kwargs) -> DeepLabV3:
    return DeepLabV3(width=width, resolution=resolution, num_classes=num_classes, aspp=True, **kwargs)


def spec_for(
    width: float, resolution: int, num_classes: int = VOC_CLASSES, aspp: bool = False, name: str | None = None
) -> ModelSpec:
    """A segmentation ModelSpec (registered or not)."""
    return ModelSpec(
        name=name or variant_name(width, resolution, aspp),
        family=ASPP_FAMILY if aspp else FAMILY,
        width=width,
        resolution=resolution,
        num_classes=num_classes,
        builder=_build_aspp if aspp else _build,
        task="segmentation",
        postprocessing=dict(SEGMENTATION_CONFIG),
    )


for _aspp in (False, True):
    for _w in WIDTHS:
        for _r in RESOLUTIONS:
            register_model(spec_for(_w, _r, aspp=_aspp))
