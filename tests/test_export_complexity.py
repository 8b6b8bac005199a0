"""Multiply-adds counted on an ONNX graph agree with the count on the PyTorch module."""

import pytest

from edge_mnv2.export import export_onnx
from edge_mnv2.export.complexity import onnx_macs
from edge_mnv2.models import get_spec
from edge_mnv2.models.complexity import count_madds
from edge_mnv2.models.weights import build_model


@pytest.mark.parametrize(
    "name", ["mobilenet_v2_0.35_96", "ssdlite_mobilenet_v2_0.35_96", "deeplabv3_aspp_mobilenet_v2_0.35_96"]
)
def test_onnx_count_matches_the_module_count(name, tmp_path):
    spec = get_spec(name)
    path = export_onnx(name, tmp_path / "m.onnx").path
    assert onnx_macs(path) == count_madds(build_model(spec, None), spec.input_shape)


def test_published_figure_of_the_paper_model(tmp_path):
    """MobileNetV2 1.0 at 224: 300.8 M multiply-adds (the paper's 300 M)."""
    assert onnx_macs(export_onnx("mobilenet_v2_1.0_224", tmp_path / "m.onnx").path) == 300_774_272
