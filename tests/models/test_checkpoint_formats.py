"""Checkpoints in torchvision's and timm's layouts load and compute the function their keys define.

The state dicts are built here from each library's own naming (not from our module), and the reference
output comes from a functional forward pass that reads those keys directly.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from edge_mnv2.errors import CheckpointError
from edge_mnv2.models import get_spec
from edge_mnv2.models.checkpoint_formats import detect_format, timm_to_torchvision
from edge_mnv2.models.weights import build_model

# (t, c, n, s) from the paper's Table 2, as both libraries define it.
TABLE2 = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


def divisible(v, d=8):
    n = max(d, int(v + d / 2) // d * d)
    return n + d if n < 0.9 * v else n


def blocks(width):
    """(stage, block, in, hidden, out, stride, t) for every inverted residual block."""
    out, cin = [], divisible(32 * width)
    for stage, (t, c, n, s) in enumerate(TABLE2):
        cout = divisible(c * width)
        for b in range(n):
            out.append((stage, b, cin, cin * t, cout, s if b == 0 else 1, t))
            cin = cout
    return out


def bn(prefix, ch, gen):
    return {
        f"{prefix}.weight": torch.rand(ch, generator=gen) + 0.5,
        f"{prefix}.bias": torch.randn(ch, generator=gen) * 0.1,
        f"{prefix}.running_mean": torch.randn(ch, generator=gen) * 0.1,
        f"{prefix}.running_var": torch.rand(ch, generator=gen) + 0.5,
        f"{prefix}.num_batches_tracked": torch.tensor(0),
    }


def conv(key, shape, gen):
    fan_in = int(np.prod(shape[1:]))
    return {key: torch.randn(shape, generator=gen) * (1.0 / fan_in) ** 0.5}


def torchvision_state(width, classes, seed=0):
    g = torch.Generator().manual_seed(seed)
    sd, stem, last = {}, divisible(32 * width), divisible(1280 * max(1.0, width))
    sd |= conv("features.0.0.weight", (stem, 3, 3, 3), g) | bn("features.0.1", stem, g)
    for i, (_s, _b, cin, hid, cout, _st, t) in enumerate(blocks(width), start=1):
        p = f"features.{i}.conv"
        if t == 1:
            sd |= conv(f"{p}.0.0.weight", (cin, 1, 3, 3), g) | bn(f"{p}.0.1", cin, g)
            sd |= conv(f"{p}.1.weight", (cout, cin, 1, 1), g) | bn(f"{p}.2", cout, g)
        else:
            sd |= conv(f"{p}.0.0.weight", (hid, cin, 1, 1), g) | bn(f"{p}.0.1", hid, g)
            sd |= conv(f"{p}.1.0.weight", (hid, 1, 3, 3), g) | bn(f"{p}.1.1", hid, g)
            sd |= conv(f"{p}.2.weight", (cout, hid, 1, 1), g) | bn(f"{p}.3", cout, g)
    cin = blocks(width)[-1][4]
    sd |= conv("features.18.0.weight", (last, cin, 1, 1), g) | bn("features.18.1", last, g)
    sd["classifier.1.weight"] = torch.randn(classes, last, generator=g) * 0.05
    sd["classifier.1.bias"] = torch.randn(classes, generator=g) * 0.1
    return sd


def timm_state(width, classes, seed=0):
    g = torch.Generator().manual_seed(seed)
    sd, stem, last = {}, divisible(32 * width), divisible(1280 * max(1.0, width))
    sd |= conv("conv_stem.weight", (stem, 3, 3, 3), g) | bn("bn1", stem, g)
    for stage, b, cin, hid, cout, _st, t in blocks(width):
        p = f"blocks.{stage}.{b}"
        if t == 1:  # timm's DepthwiseSeparableConv
            sd |= conv(f"{p}.conv_dw.weight", (cin, 1, 3, 3), g) | bn(f"{p}.bn1", cin, g)
            sd |= conv(f"{p}.conv_pw.weight", (cout, cin, 1, 1), g) | bn(f"{p}.bn2", cout, g)
        else:  # timm's InvertedResidual
            sd |= conv(f"{p}.conv_pw.weight", (hid, cin, 1, 1), g) | bn(f"{p}.bn1", hid, g)
            sd |= conv(f"{p}.conv_dw.weight", (hid, 1, 3, 3), g) | bn(f"{p}.bn2", hid, g)
            sd |= conv(f"{p}.conv_pwl.weight", (cout, hid, 1, 1), g) | bn(f"{p}.bn3", cout, g)
    cin = blocks(width)[-1][4]
    sd |= conv("conv_head.weight", (last, cin, 1, 1), g) | bn("bn2", last, g)
    sd["classifier.weight"] = torch.randn(classes, last, generator=g) * 0.05
    sd["classifier.bias"] = torch.randn(classes, generator=g) * 0.1
    return sd


def _bn(x, sd, p):
    return F.batch_norm(
        x, sd[f"{p}.running_mean"], sd[f"{p}.running_var"], sd[f"{p}.weight"], sd[f"{p}.bias"], False, 0.0, 1e-5
    )


def _conv(x, w, stride=1):
    groups = x.shape[1] if w.shape[1] == 1 and w.shape[2] == 3 else 1
    return F.conv2d(x, w, stride=stride, padding=w.shape[2] // 2, groups=groups)


def timm_forward(sd, width, x):
    """MobileNetV2 as timm's keys describe it."""
    x = F.relu6(_bn(_conv(x, sd["conv_stem.weight"], 2), sd, "bn1"))
    for stage, b, cin, _hid, cout, stride, t in blocks(width):
        p, inp = f"blocks.{stage}.{b}", x
        if t == 1:
            x = F.relu6(_bn(_conv(x, sd[f"{p}.conv_dw.weight"], stride), sd, f"{p}.bn1"))
            x = _bn(_conv(x, sd[f"{p}.conv_pw.weight"]), sd, f"{p}.bn2")
        else:
            x = F.relu6(_bn(_conv(x, sd[f"{p}.conv_pw.weight"]), sd, f"{p}.bn1"))
            x = F.relu6(_bn(_conv(x, sd[f"{p}.conv_dw.weight"], stride), sd, f"{p}.bn2"))
            x = _bn(_conv(x, sd[f"{p}.conv_pwl.weight"]), sd, f"{p}.bn3")
        if stride == 1 and cin == cout:
            x = x + inp
    x = F.relu6(_bn(_conv(x, sd["conv_head.weight"]), sd, "bn2"))
    return F.linear(x.mean((2, 3)), sd["classifier.weight"], sd["classifier.bias"])


@pytest.mark.parametrize("width", [0.35, 1.0, 1.4])
def test_timm_layout_maps_onto_torchvision_layout(width):
    mapped, unmapped = timm_to_torchvision(timm_state(width, 7))
    assert unmapped == []
    expected = torchvision_state(width, 7)
    assert set(mapped) == set(expected)
    assert all(mapped[k].shape == expected[k].shape for k in expected)


@pytest.mark.parametrize("width, resolution", [(0.35, 96), (1.0, 128)])
def test_timm_checkpoint_computes_timm_function(tmp_path, width, resolution):
    sd = timm_state(width, 1000, seed=1)
    path = tmp_path / "timm.pth"
    torch.save(sd, path)
    assert detect_format(sd) == "timm"
    name = f"mobilenet_v2_{width:.1f}_{resolution}" if width == 1 else f"mobilenet_v2_{width:g}_{resolution}"
    model = build_model(get_spec(name), checkpoint=path)
    x = torch.randn(2, 3, resolution, resolution, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        assert torch.allclose(model(x), timm_forward(sd, width, x), atol=1e-4, rtol=1e-4)


def test_torchvision_checkpoint_computes_the_same_as_timm_equivalent(tmp_path):
    """Our layout is torchvision's: its state dict loads directly and matches the same weights in timm form."""
    timm_sd = timm_state(0.5, 1000, seed=2)
    tv_sd, _ = timm_to_torchvision(timm_sd)
    torch.save(tv_sd, tmp_path / "tv.pth")
    model = build_model(get_spec("mobilenet_v2_0.5_96"), checkpoint=tmp_path / "tv.pth")
    x = torch.randn(1, 3, 96, 96, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        assert torch.allclose(model(x), timm_forward(timm_sd, 0.5, x), atol=1e-4, rtol=1e-4)


def test_torchvision_state_loads_with_its_exact_keys(tmp_path):
    sd = torchvision_state(1.0, 1000)
    torch.save({"state_dict": sd, "epoch": 3}, tmp_path / "wrapped.pth")  # training-script wrapper
    model = build_model(get_spec("mobilenet_v2_1.0_224"), checkpoint=tmp_path / "wrapped.pth")
    assert set(model.state_dict()) == set(sd)
    assert torch.equal(model.state_dict()["features.5.conv.1.0.weight"], sd["features.5.conv.1.0.weight"])


def test_class_count_follows_the_checkpoint(tmp_path):
    torch.save(torchvision_state(0.35, 10), tmp_path / "ten.pth")
    model = build_model(get_spec("mobilenet_v2_0.35_96"), checkpoint=tmp_path / "ten.pth")
    assert model.classifier[1].out_features == 10


def test_timm_checkpoint_of_wrong_width_names_the_mismatch(tmp_path):
    torch.save(timm_state(0.5, 1000), tmp_path / "half.pth")
    with pytest.raises(CheckpointError, match="wrong shape"):
        build_model(get_spec("mobilenet_v2_1.0_224"), checkpoint=tmp_path / "half.pth")


def test_timm_checkpoint_with_extra_keys_lists_them(tmp_path):
    sd = timm_state(0.35, 1000)
    sd["blocks.0.0.se.conv_reduce.weight"] = torch.zeros(1)  # an SE block MobileNetV2 does not have
    del sd["conv_head.weight"]
    torch.save(sd, tmp_path / "odd.pth")
    with pytest.raises(CheckpointError) as info:
        build_model(get_spec("mobilenet_v2_0.35_96"), checkpoint=tmp_path / "odd.pth")
    assert "blocks.0.0.se.conv_reduce.weight" in str(info.value)
    assert "features.18.0.weight" in str(info.value)


def test_corrupt_checkpoint(tmp_path):
    torch.save(torchvision_state(0.35, 10), tmp_path / "ok.pth")
    data = (tmp_path / "ok.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cannot be read"):
        build_model(get_spec("mobilenet_v2_0.35_96"), checkpoint=tmp_path / "cut.pth")


def test_checkpoint_that_would_run_code_is_refused(tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(tmp_path / "evil.pth", "wb") as f:
        pickle.dump({"state_dict": Evil()}, f)
    with pytest.raises(CheckpointError):
        build_model(get_spec("mobilenet_v2_0.35_96"), checkpoint=tmp_path / "evil.pth")
