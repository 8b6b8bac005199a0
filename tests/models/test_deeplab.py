"""Mobile DeepLabv3: registry variants, output stride 16, the heads, and the paper's complexity."""

from __future__ import annotations

import re

import pytest
import torch

from edge_mnv2.models import get_spec, list_models
from edge_mnv2.models.complexity import measure
from edge_mnv2.models.deeplab import ASPP_FAMILY, FAMILY, RESOLUTIONS, DeepLabV3
from edge_mnv2.models.mobilenet_v2 import WIDTHS

NAMES = [n for f in (FAMILY, ASPP_FAMILY) for n in list_models(f) if get_spec(n).pretrained is None]
SMALL = [n for n in NAMES if get_spec(n).resolution == min(RESOLUTIONS)]


def test_registry_has_every_width_and_resolution_with_and_without_aspp():
    assert len(NAMES) == 2 * len(WIDTHS) * len(RESOLUTIONS)
    for name in NAMES:
        spec = get_spec(name)
        match = re.fullmatch(r"deeplabv3_(aspp_)?mobilenet_v2_(\d+(?:\.\d+)?)_(\d+)", name)
        assert match and float(match[2]) == spec.width and int(match[3]) == spec.resolution
        assert spec.task == "segmentation" and spec.num_classes == 21  # VOC, background included
        assert spec.metadata()["postprocessing"]["kind"] == "argmax"


@pytest.mark.parametrize("name", SMALL)
def test_variant_builds_and_segments_at_input_resolution(name):
    spec = get_spec(name)
    model = spec.build(num_classes=4).eval()
    assert isinstance(model, DeepLabV3) and model.aspp == ("aspp" in name)
    with torch.no_grad():
        out = model(torch.randn(1, 3, spec.resolution, spec.resolution))
    assert out.shape == (1, 4, spec.resolution, spec.resolution)
    assert torch.isfinite(out).all()


def test_output_stride_16_with_atrous_convolutions():
    model = DeepLabV3(width=1.0, resolution=512).eval()
    with torch.no_grad():
        feats = model.features(torch.zeros(1, 3, 512, 512))
    assert feats.shape == (1, 320, 32, 32)  # the 320-channel second-to-last layer, 512 / 16
    dw = [block.conv[-3][0] for block in model.features[14:]]
    assert [c.stride for c in dw] == [(1, 1)] * 4
    assert [c.dilation for c in dw] == [(1, 1), (2, 2), (2, 2), (2, 2)]  # TF's output_stride rule


def test_heads():
    plain = DeepLabV3(width=1.0, aspp=False).head
    aspp = DeepLabV3(width=1.0, aspp=True).head
    assert len(plain.atrous) == 0 and plain.project[0].in_channels == 512  # image pooling + 1x1
    assert [b[0].dilation for b in aspp.atrous] == [(6, 6), (12, 12), (18, 18)]
    assert aspp.project[0].in_channels == 5 * 256


def test_complexity_matches_the_paper():
    """Mobile DeepLabv3, OS16, no ASPP, 21 classes: 2.11M parameters and 2.75B MAdds (paper, 512x512).

    Counted as for the classifier (conv and BN parameters; conv MAdds for one image; the bilinear
    upsampling is not counted). Parameters: we measure 2.114M, within 0.5%. MAdds: 2.604B at 512x512,
    5% under the paper; at 513x513, the crop size TF's DeepLab evaluates PASCAL VOC with (33x33
    features), 2.741B, within 0.5%, so the paper's figure is most likely at 513x513.
    """
    spec = get_spec("deeplabv3_mobilenet_v2_1.0_512")
    model = spec.build()
    c = measure(model, spec.input_shape)
    assert c.params == pytest.approx(2.11e6, rel=0.005)
    assert c.madds == pytest.approx(2.75e9, rel=0.06)
    assert measure(model, (1, 3, 513, 513)).madds == pytest.approx(2.75e9, rel=0.005)


def test_aspp_complexity():
    """With ASPP (OS16): paper 4.52M parameters, 5.8B MAdds. We measure 4.524M and 5.36B at 513x513:
    parameters agree, MAdds are 7.5% under (tolerance 10%). The three 3x3 atrous convs (2.21M
    parameters) cost 2.4B at 33x33; the paper does not say how it got the other 0.44B, and no layout
    with these parameter counts gives them under our counting."""
    spec = get_spec("deeplabv3_aspp_mobilenet_v2_1.0_512")
    model = spec.build()
    assert measure(model, spec.input_shape).params == pytest.approx(4.52e6, rel=0.005)
    assert measure(model, (1, 3, 513, 513)).madds == pytest.approx(5.8e9, rel=0.10)
