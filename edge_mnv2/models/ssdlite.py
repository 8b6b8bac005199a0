"""SSDLite on a MobileNetV2 backbone (the paper's section 6.2), at any width multiplier and resolution.

Layout, as the TensorFlow Object Detection API's ``ssdlite_mobilenet_v2`` that the paper used:

* the first prediction layer sits on the expansion output of the 15th layer in TensorFlow's count
  (``layer_15/expansion_output``; TF numbers the stem convolution ``layer_1``, so this is the 14th
  bottleneck block, ``features.14``: 576 channels at width 1.0, output stride 16, 20x20 at 320);
* the second on the last layer (``features.18``: 1280 channels, output stride 32);
* four extra feature layers of depth 512, 256, 256, 128 (scaled by the width multiplier, at least
  16), each a 1x1 conv to half the depth, a 3x3 depthwise stride-2 conv and a 1x1 conv, with BatchNorm
  and ReLU6 after each;
* every prediction head is depthwise separable: 3x3 depthwise + BN + ReLU6, then a 1x1 conv with bias,
  one for the box deltas and one for the class logits (background + classes).

``forward`` returns one tensor ``[N, A, 4 + 1 + C]``; anchors, box decoding and NMS are host-side numpy
(:mod:`edge_mnv2.postprocess.detection`), so the exported graph has one input and one output.
"""

from __future__ import annotations

import torch
from torch import nn

from edge_mnv2.models.mobilenet_v2 import (
    WIDTHS,
    ConvBNReLU6,
    build_features,
    format_width,
    init_conv_bn,
    make_divisible,
    validate_spec,
)
from edge_mnv2.models.registry import ModelSpec, register_model
from edge_mnv2.postprocess.detection import anchors_per_location, ssd_config

COCO_CLASSES = 80
EXPANSION_BLOCK = 14  # features.14: TF's layer_15, whose expansion output is the first prediction layer
EXTRA_DEPTHS = (512, 256, 256, 128)
MIN_DEPTH = 16
RESOLUTIONS: tuple[int, ...] = (96, 128, 160, 192, 224, 320)
DEFAULT_RESOLUTION = 320
FAMILY = "ssdlite_mobilenet_v2"


def _separable(in_ch: int, out_ch: int) -> nn.Sequential:
    """A prediction head: 3x3 depthwise + BN + ReLU6, then a 1x1 conv with bias."""
    return nn.Sequential(ConvBNReLU6(in_ch, in_ch, kernel=3, groups=in_ch), nn.Conv2d(in_ch, out_ch, 1))


def _extra(in_ch: int, out_ch: int) -> nn.Sequential:
    """An extra feature layer: 1x1 to half the depth, 3x3 depthwise stride 2, 1x1 to the depth."""
    mid = out_ch // 2
    return nn.Sequential(
        ConvBNReLU6(in_ch, mid, kernel=1),
        ConvBNReLU6(mid, mid, kernel=3, stride=2, groups=mid),
        ConvBNReLU6(mid, out_ch, kernel=1),
    )


class SSDLite(nn.Module):
    """SSDLite with a MobileNetV2 feature extractor.

    Args:
        width: width multiplier of the backbone (and of the extra layers' depths).
        resolution: input side in pixels; fixes the feature-map sizes, hence the anchors.
        num_classes: object classes, background excluded (80 for COCO).
    """

    # Seeded random weights (models.weights.randomize): the extra layers put 12 more convolutions after
    # the backbone, and with the classifier's BatchNorm gains (0.25..0.75) float32 rounding grew to
    # 1.3e-4 on the outputs of the deepest maps, over the 1e-4 export check; with these, 2e-5 to 5e-5.
    random_bn_gamma_range = (0.2, 0.6)

    def __init__(self, width: float = 1.0, resolution: int = DEFAULT_RESOLUTION, num_classes: int = COCO_CLASSES):
        super().__init__()
        validate_spec(width, resolution, num_classes)
        self.width, self.resolution, self.num_classes = float(width), int(resolution), int(num_classes)
        self.features = build_features(width)
        first = self.features[EXPANSION_BLOCK].conv[0]
        channels = [first[0].out_channels, self.features[-1][0].out_channels]
        extras = []
        for depth in EXTRA_DEPTHS:
            out_ch = max(MIN_DEPTH, make_divisible(depth * width))
            extras.append(_extra(channels[-1], out_ch))
            channels.append(out_ch)
        self.extras = nn.ModuleList(extras)
        self.config = ssd_config(resolution)
        self.num_anchors = anchors_per_location(self.config)
        self.box_head = nn.ModuleList(_separable(c, a * 4) for c, a in zip(channels, self.num_anchors))
        self.cls_head = nn.ModuleList(_separable(c, a * (num_classes + 1)) for c, a in zip(channels, self.num_anchors))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init_conv_bn(self)
        for head in (*self.box_head, *self.cls_head):  # small predictions at the start, as torchvision
            nn.init.normal_(head[1].weight, 0.0, 0.03)

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The six maps the heads predict from (output stride 16, 32, then the extras)."""
        for block in self.features[:EXPANSION_BLOCK]:
            x = block(x)
        layers = self.features[EXPANSION_BLOCK].conv  # stride 2, no residual: the block is a plain chain
        expansion = layers[0](x)
        x = expansion
        for layer in layers[1:]:
            x = layer(x)
        for block in self.features[EXPANSION_BLOCK + 1 :]:
            x = block(x)
        maps = [expansion, x]
        for extra in self.extras:
            maps.append(extra(maps[-1]))
        return maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        boxes, logits = [], []
        for fmap, box, cls in zip(self.feature_maps(x), self.box_head, self.cls_head):
            n = fmap.shape[0]
            # [N, a*k, H, W] -> [N, H, W, a*k] -> [N, H*W*a, k]: the anchors' order (row, column, box).
            boxes.append(box(fmap).permute(0, 2, 3, 1).reshape(n, -1, 4))
            logits.append(cls(fmap).permute(0, 2, 3, 1).reshape(n, -1, self.num_classes + 1))
        return torch.cat([torch.cat(boxes, 1), torch.cat(logits, 1)], dim=2)


def variant_name(width: float, resolution: int) -> str:
    """``ssdlite_mobilenet_v2_<width>_<resolution>``."""
    return f"{FAMILY}_{format_width(width)}_{resolution}"


def _build(width: float, resolution: int, num_classes: int, **kwargs) -> SSDLite:
    return SSDLite(width=width, resolution=resolution, num_classes=num_classes, **kwargs)


def spec_for(width: float, resolution: int, num_classes: int = COCO_CLASSES, name: str | None = None) -> ModelSpec:
    """A detection ModelSpec (registered or not) with the postprocessing record of its resolution."""
    return ModelSpec(
        name=name or variant_name(width, resolution),
        family=FAMILY,
        width=width,
        resolution=resolution,
        num_classes=num_classes,
        builder=_build,
        task="detection",
        postprocessing=ssd_config(resolution),
    )


for _w in WIDTHS:
    for _r in RESOLUTIONS:
        register_model(spec_for(_w, _r))
