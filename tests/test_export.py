"""PyTorch -> ONNX export: the file, its metadata, the ONNX Runtime check, and load errors."""

from __future__ import annotations

import math

import numpy as np
import onnx
import pytest
import torch

import edge_mnv2.export as export_mod
from edge_mnv2.data.evalset import evaluation_inputs
from edge_mnv2.errors import ExportCheckError, ModelFileError, UnknownModelError
from edge_mnv2.export import export_onnx, load_onnx, onnxruntime_outputs, read_metadata
from edge_mnv2.models import get_spec
from edge_mnv2.models.weights import build_model

MODEL = "mobilenet_v2_0.35_96"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "m.onnx"
    result = export_onnx(MODEL, path)
    return path, result


def _dims(value_info):
    return [d.dim_value for d in value_info.type.tensor_type.shape.dim]


def test_file_written_and_valid(exported):
    path, result = exported
    assert path.is_file()
    assert result.path == path
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert not list(path.parent.glob("*.partial"))
    assert not list(path.parent.glob(".*.partial"))


def test_graph_io(exported):
    proto = onnx.load(str(exported[0]))
    inits = {i.name for i in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in inits]
    assert [i.name for i in inputs] == ["input"]
    assert _dims(inputs[0]) == [1, 3, 96, 96]
    assert all(d.HasField("dim_value") for d in inputs[0].type.tensor_type.shape.dim)  # static
    assert inputs[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [o.name for o in proto.graph.output] == ["logits"]
    assert _dims(proto.graph.output[0]) == [1, 1000]


def test_opset(exported):
    proto = onnx.load(str(exported[0]))
    default = [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")]
    assert default == [17]
    assert exported[1].opset == 17


def test_metadata(exported):
    path, result = exported
    proto = onnx.load(str(path))
    meta = read_metadata(proto)
    assert meta["model"] == MODEL
    assert meta["width"] == 0.35
    assert meta["resolution"] == 96
    assert meta["num_classes"] == 1000
    assert meta["preprocessing"]["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert meta["preprocessing"]["std"] == pytest.approx([0.229, 0.224, 0.225])
    assert meta["weights"] == {"kind": "random", "seed": 0}
    assert meta["opset"] == 17
    assert meta["input_name"] == "input" and meta["output_name"] == "logits"
    assert meta == result.metadata
    flat = {p.key: p.value for p in proto.metadata_props}
    assert flat["model_name"] == MODEL
    assert flat["resolution"] == "96"
    assert proto.producer_name == "edge-mnv2"


def test_read_metadata_of_foreign_model():
    assert read_metadata(onnx.ModelProto()) == {}


def test_max_abs_error_reported(exported):
    err = exported[1].max_abs_error
    assert isinstance(err, float)
    assert math.isfinite(err)
    assert 0 <= err <= 1e-4


def test_onnxruntime_matches_pytorch(exported):
    spec = get_spec(MODEL)
    inputs = evaluation_inputs(4, spec.resolution, spec.preprocessing)
    with torch.inference_mode():
        expected = build_model(spec)(torch.from_numpy(inputs)).numpy()
    got = onnxruntime_outputs(exported[0], inputs)
    assert got.shape == (4, 1000)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)
    # The comparison is not trivially satisfied: the four images get different logits.
    assert np.abs(got[0] - got[1]).max() > 1e-2


def test_failed_check_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(export_mod, "CHECK_TOLERANCE", -1.0)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(ExportCheckError, match=MODEL):
        export_onnx(MODEL, out_dir / "m.onnx")
    assert list(out_dir.iterdir()) == []


def test_unknown_model_export(tmp_path):
    with pytest.raises(UnknownModelError):
        export_onnx("resnet50", tmp_path / "r.onnx")
    assert not (tmp_path / "r.onnx").exists()


def test_load_onnx_valid(exported):
    proto = load_onnx(exported[0])
    assert read_metadata(proto)["model"] == MODEL


def test_load_onnx_missing(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        load_onnx(tmp_path / "missing.onnx")


def test_load_onnx_garbage(tmp_path):
    path = tmp_path / "garbage.onnx"
    path.write_bytes(b"\xff\xfe not protobuf at all \x00\x07" * 20)
    with pytest.raises(ModelFileError):
        load_onnx(path)


def test_load_onnx_empty_model(tmp_path):
    path = tmp_path / "empty.onnx"
    path.write_bytes(onnx.ModelProto().SerializeToString())
    with pytest.raises(ModelFileError, match="no graph"):
        load_onnx(path)
