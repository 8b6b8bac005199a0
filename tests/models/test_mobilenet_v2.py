"""MobileNetV2 architecture: registry variants, published complexity, torchvision layout, errors."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from edge_mnv2.errors import EdgeMnv2Error, InvalidModelSpecError, UnknownModelError
from edge_mnv2.models import get_spec, list_models
from edge_mnv2.models.complexity import measure
from edge_mnv2.models.mobilenet_v2 import InvertedResidual, MobileNetV2, make_divisible

ALL_MODELS = list_models("mobilenet_v2")  # the classifiers (detection/segmentation: test_ssdlite, test_deeplab)
GRID = [n for n in ALL_MODELS if get_spec(n).pretrained is None]
TAGGED = [n for n in ALL_MODELS if get_spec(n).pretrained is not None]


def test_registry_has_the_paper_grid():
    assert len(GRID) == 30
    assert len(set(ALL_MODELS)) == len(ALL_MODELS)
    widths = {get_spec(n).width for n in GRID}
    resolutions = {get_spec(n).resolution for n in GRID}
    assert widths == {0.35, 0.5, 0.75, 1.0, 1.3, 1.4}
    assert resolutions == {96, 128, 160, 192, 224}


@pytest.mark.parametrize("name", ALL_MODELS)
def test_variant_builds_and_classifies(name):
    spec = get_spec(name)
    match = re.fullmatch(r"mobilenet_v2_(\d+(?:\.\d+)?)_(\d+)(?:\.[a-z0-9_]+)?", name)
    assert match, name
    assert float(match[1]) == spec.width
    assert int(match[2]) == spec.resolution
    assert spec.input_shape == (1, 3, spec.resolution, spec.resolution)
    model = spec.build().eval()
    assert isinstance(model, MobileNetV2)
    assert model.width == spec.width and model.resolution == spec.resolution
    with torch.no_grad():
        out = model(torch.randn(spec.input_shape))
    assert out.shape == (1, spec.num_classes)
    assert torch.isfinite(out).all()


def _complexity(name):
    spec = get_spec(name)
    return measure(spec.build(), spec.input_shape)


def test_complexity_1_0_224_matches_paper():
    c = _complexity("mobilenet_v2_1.0_224")
    assert c.params == 3_504_872  # torchvision's mobilenet_v2 exactly
    assert c.madds == pytest.approx(300e6, rel=0.01)
    assert c.params_m == pytest.approx(3.504872)


def test_complexity_1_4_224_matches_paper():
    c = _complexity("mobilenet_v2_1.4_224")
    assert c.params == pytest.approx(6.1e6, rel=0.02)
    assert c.madds == pytest.approx(585e6, rel=0.01)


def test_complexity_0_35_224_matches_paper():
    c = _complexity("mobilenet_v2_0.35_224")
    assert c.params == pytest.approx(1.7e6, rel=0.03)
    assert c.madds == pytest.approx(59e6, rel=0.02)


def test_madds_scale_with_resolution_params_do_not():
    small = _complexity("mobilenet_v2_1.0_96")
    big = _complexity("mobilenet_v2_1.0_224")
    assert small.params == big.params
    # Convolution cost is proportional to the pixel count; the classifier (1.28M) is not.
    fc = 1280 * 1000
    assert (small.madds - fc) / (big.madds - fc) == pytest.approx((96 / 224) ** 2, rel=0.05)


def test_measure_restores_training_mode():
    spec = get_spec("mobilenet_v2_0.35_96")
    model = spec.build().train()
    measure(model, spec.input_shape)
    assert model.training


TORCHVISION_KEYS = {
    "features.0.0.weight": (32, 3, 3, 3),
    "features.0.1.running_var": (32,),
    "features.1.conv.0.0.weight": (32, 1, 3, 3),
    "features.1.conv.1.weight": (16, 32, 1, 1),
    "features.1.conv.2.weight": (16,),
    "features.2.conv.0.0.weight": (96, 16, 1, 1),
    "features.2.conv.1.0.weight": (96, 1, 3, 3),
    "features.2.conv.2.weight": (24, 96, 1, 1),
    "features.17.conv.2.weight": (320, 960, 1, 1),
    "features.18.0.weight": (1280, 320, 1, 1),
    "classifier.1.weight": (1000, 1280),
    "classifier.1.bias": (1000,),
}


@pytest.fixture(scope="module")
def model_1_0():
    return get_spec("mobilenet_v2_1.0_224").build()


@pytest.mark.parametrize("key", sorted(TORCHVISION_KEYS))
def test_torchvision_state_dict_layout(model_1_0, key):
    sd = model_1_0.state_dict()
    assert key in sd
    assert tuple(sd[key].shape) == TORCHVISION_KEYS[key]


def test_torchvision_module_tree(model_1_0):
    assert len(model_1_0.features) == 19
    assert isinstance(model_1_0.classifier[0], nn.Dropout)
    assert model_1_0.classifier[0].p == pytest.approx(0.2)
    assert isinstance(model_1_0.classifier[1], nn.Linear)
    # 52 convolutions and 52 BatchNorms: 1 stem + (2 + 16 * 3) in the blocks + 1 head conv.
    convs = [m for m in model_1_0.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 52
    assert all(m.bias is None for m in convs)
    assert len([m for m in model_1_0.modules() if isinstance(m, nn.BatchNorm2d)]) == 52


@pytest.mark.parametrize(
    "value, divisor, expected",
    [
        (32 * 0.35, 8, 16),  # 11.2 rounds up to the 8-multiple 16 (8 would lose > 10 %)
        (16 * 0.35, 8, 8),  # 5.6 -> at least the divisor
        (32 * 1.0, 8, 32),
        (24 * 0.75, 8, 24),  # 18 -> 16 is < 0.9 * 18, so 24
        (96 * 1.4, 8, 136),  # 134.4 -> 136
        (320 * 1.4, 8, 448),
        (1280 * 1.4, 8, 1792),
        (160 * 0.35, 8, 56),
        (1, 8, 8),
        (100, 10, 100),
        (94, 10, 90),  # 90 >= 0.9 * 94, kept
    ],
)
def test_make_divisible(value, divisor, expected):
    assert make_divisible(value, divisor) == expected
    assert make_divisible(value, divisor) % divisor == 0


def _first_and_last_conv(model):
    convs = [m for m in model.features.modules() if isinstance(m, nn.Conv2d)]
    return convs[0], convs[-1]


def test_width_0_35_channels():
    model = get_spec("mobilenet_v2_0.35_96").build()
    first, last = _first_and_last_conv(model)
    assert first.out_channels == 16
    assert last.out_channels == 1280  # the head stays 1280 for widths below 1
    assert model.classifier[1].in_features == 1280


def test_width_1_4_channels():
    model = get_spec("mobilenet_v2_1.4_96").build()
    first, last = _first_and_last_conv(model)
    assert first.out_channels == 48
    assert last.out_channels == 1792
    assert model.last_channel == 1792
    assert model.classifier[1].in_features == 1792


@pytest.mark.parametrize("width", [0.35, 1.0, 1.4])
def test_residual_connections(width):
    model = MobileNetV2(width=width, resolution=96)
    blocks = [m for m in model.features if isinstance(m, InvertedResidual)]
    assert len(blocks) == 17
    residual = 0
    for block in blocks:
        depthwise = [m for m in block.conv.modules() if isinstance(m, nn.Conv2d) and m.groups > 1][0]
        in_ch = [m for m in block.conv.modules() if isinstance(m, nn.Conv2d)][0].in_channels
        expected = depthwise.stride == (1, 1) and in_ch == block.out_channels
        assert block.use_res_connect == expected
        residual += block.use_res_connect
    assert residual == 10


def test_residual_is_actually_added():
    torch.manual_seed(0)
    block = InvertedResidual(24, 24, 1, 6).eval()
    x = torch.randn(1, 24, 8, 8)
    with torch.no_grad():
        assert torch.allclose(block(x), x + block.conv(x))
    plain = InvertedResidual(24, 32, 1, 6).eval()
    assert not plain.use_res_connect


def test_unknown_model_points_to_the_list_instead_of_printing_it():
    with pytest.raises(UnknownModelError) as info:
        get_spec("resnet50")
    msg = str(info.value)
    assert "resnet50" in msg and "`edge-mnv2 models` lists the" in msg
    assert "mobilenet_v2_0.35_96" not in msg and len(msg) < 200  # one readable line, not 141 names


def _suggestion(msg):
    assert "Did you mean" in msg, msg
    return msg.split("Did you mean", 1)[1].split("?", 1)[0]


@pytest.mark.parametrize(
    "typo, expected",
    [("mobilnet_v2_1.0_224", "mobilenet_v2_1.0_224"), ("mobilenet-v2-0.5-160", "mobilenet_v2_0.5_160")],
)
def test_misspelt_name_suggests_close_names(typo, expected):
    with pytest.raises(UnknownModelError) as info:
        get_spec(typo)
    assert expected in _suggestion(str(info.value))


def test_truncated_resolution_suggests_close_names():
    with pytest.raises(EdgeMnv2Error) as info:
        get_spec("mobilenet_v2_1.0_22")
    assert "mobilenet_v2_1.0_224" in _suggestion(str(info.value))


def test_truncated_resolution_is_still_explained():
    # The resolution is named and the valid ones are listed.
    with pytest.raises(EdgeMnv2Error) as info:
        get_spec("mobilenet_v2_1.0_22")
    msg = str(info.value)
    assert "'22'" in msg and "224" in msg


def test_off_grid_width_names_the_width():
    with pytest.raises(InvalidModelSpecError) as info:
        get_spec("mobilenet_v2_2.0_224")
    msg = str(info.value)
    assert "width" in msg and "'2.0'" in msg
    assert "0.35" in msg and "1.4" in msg


def test_off_grid_resolution_names_the_resolution():
    with pytest.raises(InvalidModelSpecError) as info:
        get_spec("mobilenet_v2_1.0_100")
    msg = str(info.value)
    assert "resolution" in msg and "'100'" in msg
    assert "224" in msg


@pytest.mark.parametrize(
    "kwargs, word",
    [
        (dict(width=0), "width"),
        (dict(width=-1.0), "width"),
        (dict(width=5.0), "width"),
        (dict(resolution=8), "resolution"),
        (dict(resolution=100.5), "resolution"),
        (dict(num_classes=0), "num_classes"),
    ],
)
def test_invalid_constructor_arguments(kwargs, word):
    with pytest.raises(InvalidModelSpecError, match=word):
        MobileNetV2(**kwargs)


def test_invalid_stride():
    with pytest.raises(InvalidModelSpecError, match="stride"):
        InvertedResidual(16, 16, 3, 6)


@pytest.mark.parametrize("cls", [UnknownModelError, InvalidModelSpecError])
def test_errors_are_project_errors(cls):
    assert issubclass(cls, EdgeMnv2Error)


def test_project_errors_caught_by_base_class():
    for name in ("resnet50", "mobilenet_v2_2.0_224", "mobilenet_v2_1.0_100"):
        with pytest.raises(EdgeMnv2Error):
            get_spec(name)


def test_shipped_weights_are_tagged_variants():
    assert "mobilenet_v2_0.35_96.shapes" in TAGGED
    for name in TAGGED:
        spec = get_spec(name)
        base = get_spec(name.rsplit(".", 1)[0])
        assert (spec.width, spec.resolution, spec.family) == (base.width, base.resolution, base.family)
        assert spec.num_classes == len(spec.pretrained.classes)
        spec.pretrained.check()  # file present, sha256 as on its card
