"""Export of detection and segmentation models: one input, one output, static graph, metadata enough
to postprocess, checked against ONNX Runtime."""

import collections

import numpy as np
import onnx
import pytest

from edge_mnv2.export import export_onnx, onnxruntime_outputs, read_metadata

MODELS = ["ssdlite_mobilenet_v2_0.35_96", "deeplabv3_mobilenet_v2_0.35_96", "deeplabv3_aspp_mobilenet_v2_0.35_96"]


@pytest.fixture(scope="module", params=MODELS)
def exported(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / f"{request.param}.onnx"
    return request.param, export_onnx(request.param, path)


def test_one_input_one_output_static_graph(exported):
    name, result = exported
    proto = onnx.load(str(result.path))
    assert [i.name for i in proto.graph.input] == ["input"] and len(proto.graph.output) == 1
    ops = collections.Counter(n.op_type for n in proto.graph.node)
    assert "Shape" not in ops  # constant shapes: nothing computed from the input's shape
    dims = [d.dim_value for d in proto.graph.output[0].type.tensor_type.shape.dim]
    meta = read_metadata(proto)
    if meta["task"] == "detection":
        assert dims == [1, meta["postprocessing"]["num_anchors"], 4 + 1 + 80]
    else:
        assert dims == [1, 21, 96, 96]
    assert result.max_abs_error <= 1e-4


def test_metadata_is_enough_to_postprocess(exported):
    from edge_mnv2.data.evalset import evaluation_inputs
    from edge_mnv2.data.preprocessing import Preprocessing
    from edge_mnv2.postprocess.detection import detect
    from edge_mnv2.postprocess.segmentation import predict_masks

    name, result = exported
    meta = read_metadata(onnx.load(str(result.path)))
    assert meta["model"] == name
    x = evaluation_inputs(2, meta["resolution"], Preprocessing.from_dict(meta["preprocessing"]))
    out = onnxruntime_outputs(result.path, x)
    if meta["task"] == "detection":
        detections = detect(out, meta, score_threshold=0.05)
        assert len(detections) == 2 and all(d[0].shape[1] == 4 for d in detections)
    else:
        assert meta["task"] == "segmentation" and meta["postprocessing"]["kind"] == "argmax"
        assert predict_masks(out).shape == (2, 96, 96)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ssdlite_mobilenet_v2_1.0_320", "deeplabv3_mobilenet_v2_1.0_512"])
def test_paper_models_export(name, tmp_path):
    result = export_onnx(name, tmp_path / "m.onnx")
    assert result.max_abs_error <= 1e-4
    assert np.isfinite(result.max_abs_error)
