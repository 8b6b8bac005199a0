"""SSDLite: registry variants, the output layout postprocessing relies on, and the paper's complexity."""

from __future__ import annotations

import re

import pytest
import torch

from edge_mnv2.models import get_spec, list_models
from edge_mnv2.models.complexity import measure
from edge_mnv2.models.mobilenet_v2 import WIDTHS
from edge_mnv2.models.ssdlite import FAMILY, RESOLUTIONS, SSDLite
from edge_mnv2.postprocess.detection import anchors_for, anchors_per_location, feature_map_sizes

NAMES = [n for n in list_models(FAMILY) if get_spec(n).pretrained is None]
SMALL = [n for n in NAMES if get_spec(n).resolution == min(RESOLUTIONS)]


def test_registry_has_every_width_and_resolution():
    assert len(NAMES) == len(WIDTHS) * len(RESOLUTIONS)
    assert "ssdlite_mobilenet_v2_1.0_320" in NAMES
    for name in NAMES:
        spec = get_spec(name)
        match = re.fullmatch(r"ssdlite_mobilenet_v2_(\d+(?:\.\d+)?)_(\d+)", name)
        assert match and float(match[1]) == spec.width and int(match[2]) == spec.resolution
        assert spec.task == "detection" and spec.num_classes == 80  # COCO, background excluded
        meta = spec.metadata()
        assert meta["task"] == "detection" and meta["postprocessing"]["kind"] == "ssd"
        assert meta["postprocessing"]["num_anchors"] == len(anchors_for(meta))


@pytest.mark.parametrize("name", SMALL + ["ssdlite_mobilenet_v2_1.0_320"])
def test_variant_builds_and_predicts_one_row_per_anchor(name):
    spec = get_spec(name)
    model = spec.build(num_classes=3).eval()
    assert isinstance(model, SSDLite)
    with torch.no_grad():
        out = model(torch.randn(2, 3, spec.resolution, spec.resolution))
    assert out.shape == (2, len(anchors_for(spec)), 4 + 1 + 3)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("resolution", [96, 128, 300, 320])
def test_feature_maps_are_where_the_anchors_are(resolution):
    model = SSDLite(width=0.35, resolution=resolution, num_classes=2).eval()
    with torch.no_grad():
        maps = model.feature_maps(torch.zeros(1, 3, resolution, resolution))
    assert [m.shape[-1] for m in maps] == [m.shape[-2] for m in maps] == feature_map_sizes(resolution)
    assert maps[0].shape[1] == model.features[14].conv[0][0].out_channels  # the expansion of features.14
    assert maps[1].shape[1] == 1280


def test_first_prediction_layer_is_the_expansion_at_output_stride_16():
    model = SSDLite(width=1.0, resolution=320).eval()
    with torch.no_grad():
        maps = model.feature_maps(torch.zeros(1, 3, 320, 320))
    assert maps[0].shape == (1, 576, 20, 20)  # 96 x 6 expansion, 320 / 16
    assert maps[1].shape == (1, 1280, 10, 10)  # last layer, output stride 32
    assert [m.shape[1] for m in maps[2:]] == [512, 256, 256, 128]
    assert anchors_per_location(get_spec("ssdlite_mobilenet_v2_1.0_320")) == [3, 6, 6, 6, 6, 6]
    assert len(anchors_for(get_spec("ssdlite_mobilenet_v2_1.0_320"))) == 2034  # 1917 at 300 as in TF


def test_every_head_convolution_is_depthwise_separable():
    model = SSDLite(width=1.0, resolution=320)
    for head in (*model.box_head, *model.cls_head):
        dw, pw = head[0][0], head[1]
        assert dw.groups == dw.in_channels == dw.out_channels and dw.kernel_size == (3, 3)
        assert pw.kernel_size == (1, 1) and pw.bias is not None
    for extra in model.extras:
        assert extra[1][0].groups == extra[1][0].in_channels and extra[1][0].stride == (2, 2)


def test_anchor_rows_follow_the_head_layout():
    """Row k of the output is anchor k: (map, row, column, box); checked by lighting up one box."""
    model = SSDLite(width=0.35, resolution=128, num_classes=1).eval()
    anchors = anchors_for(get_spec("ssdlite_mobilenet_v2_0.35_128"))
    with torch.no_grad():
        for head in model.box_head:
            head[1].weight.zero_()
            head[1].bias.zero_()
        model.box_head[1][1].bias[4 * 2 + 1] = 1.0  # map 1 (4x4, 6 boxes), every location, box 2, ty
        out = model(torch.zeros(1, 3, 128, 128))[0, :, :4]
    rows = torch.nonzero(out[:, 1]).flatten().tolist()
    first = 8 * 8 * 3
    assert rows == [first + loc * 6 + 2 for loc in range(16)]
    assert anchors[rows[0]][2] < anchors[rows[0]][3]  # box 2 of a 6-box layer: aspect ratio 0.5, tall


def test_complexity_matches_the_paper():
    """Table 6: MobileNetV2 + SSDLite, 80 COCO classes, 320x320: 4.3M parameters, 0.8B MAdds.

    Counted as for the classifier: parameters of every conv and BatchNorm (BN folds into the convs at
    inference, so its 2 per channel are counted as the conv biases they become; running statistics are
    not parameters); MAdds of convolutions only, for one image. Anchors, box decoding and NMS are not
    counted (the paper leaves post-processing out too). We measure 4.34M and 0.789B: within 1% and 2%.
    The small rest is the BN/bias bookkeeping and TF's 300x300 vs 320x320 (0.735B at 300x300).
    """
    spec = get_spec("ssdlite_mobilenet_v2_1.0_320")
    c = measure(spec.build(), spec.input_shape)
    assert c.params == pytest.approx(4.3e6, rel=0.02)
    assert c.madds == pytest.approx(0.8e9, rel=0.03)


def test_heads_and_extras_are_about_table_5():
    """Table 5: SSDLite prediction layers (extras + heads) for 80 classes: 2.1M parameters."""
    model = get_spec("ssdlite_mobilenet_v2_1.0_320").build()
    head = sum(p.numel() for m in (model.extras, model.box_head, model.cls_head) for p in m.parameters())
    assert head == pytest.approx(2.1e6, rel=0.03)


def test_width_scales_the_backbone_and_extras():
    small = SSDLite(width=0.35, resolution=128, num_classes=10)
    assert small.features[14].conv[0][0].out_channels == 32 * 6  # 96 x 0.35 rounded to 32, times t = 6
    assert [e[-1][0].out_channels for e in small.extras] == [176, 88, 88, 48]
