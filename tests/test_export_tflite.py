"""ONNX -> .tflite: LiteRT (XNNPACK and built-in kernels) computes what ONNX Runtime does; the graph; errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from ai_edge_litert import schema_py_generated as tfl
from ai_edge_litert.interpreter import Interpreter, OpResolverType
from onnx import TensorProto, helper, numpy_helper

import edge_mnv2.export.tflite as tflite_mod
from edge_mnv2.errors import ModelFileError
from edge_mnv2.export import export_onnx, onnxruntime_outputs
from edge_mnv2.export.tflite import to_tflite_input, write_tflite

MODELS = {  # name -> (TFLite output shape, output layout)
    "mobilenet_v2_0.35_96": ((1, 1000), "same"),
    "ssdlite_mobilenet_v2_0.35_128": ((1, 330, 85), "same"),
    "deeplabv3_mobilenet_v2_0.35_128": ((1, 128, 128, 21), "nhwc"),
    "deeplabv3_aspp_mobilenet_v2_0.35_128": ((1, 128, 128, 21), "nhwc"),
}
# Max abs error over max |output|. Measured at most 2.1e-5 (SSDLite, built-in kernels; XNNPACK 1.4e-5,
# the classifier 0.7e-5, DeepLab 0.9e-5): float32 summation order, the same weights. 10x above that.
TOLERANCE = 2e-4
RESOLVERS = {
    "xnnpack": {},  # LiteRT applies XNNPACK by default
    "builtin": {"experimental_op_resolver_type": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES},
}


@pytest.fixture(scope="module")
def convert(tmp_path_factory):
    """name -> (ONNX path, TfliteModel) of a model with its seeded random weights, converted once per module."""
    cache = {}

    def get(name: str):
        if name not in cache:
            tmp = tmp_path_factory.mktemp("tflite")
            export_onnx(name, tmp / "m.onnx")
            cache[name] = tmp / "m.onnx", write_tflite(tmp / "m.onnx", tmp / "m.tflite")
        return cache[name]

    return get


@pytest.fixture(params=list(MODELS))
def converted(request, convert):
    return (request.param, *convert(request.param))


def _litert(path, x_nchw: np.ndarray, resolver: str = "xnnpack") -> tuple[np.ndarray, Interpreter]:
    """Run a batch one image at a time (the model has a static batch of 1); outputs stacked, as LiteRT gives them."""
    interpreter = Interpreter(model_path=str(path), num_threads=1, **RESOLVERS[resolver])
    interpreter.allocate_tensors()
    outs = []
    for i in range(len(x_nchw)):
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], to_tflite_input(x_nchw[i : i + 1]))
        interpreter.invoke()
        outs.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))
    return np.concatenate(outs), interpreter


def _inputs(shape_nhwc, n: int = 2, seed: int = 0) -> np.ndarray:
    _, h, w, c = shape_nhwc
    return np.random.default_rng(seed).standard_normal((n, c, h, w)).astype(np.float32)


def _model(path) -> tfl.ModelT:
    return tfl.ModelT.InitFromObj(tfl.Model.GetRootAs(path.read_bytes(), 0))


def _ops(model: tfl.ModelT) -> list[tuple[str, tfl.OperatorT]]:
    names = {v: k for k, v in vars(tfl.BuiltinOperator).items() if not k.startswith("_")}
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    return [(names[codes[op.opcodeIndex]], op) for op in model.subgraphs[0].operators]


@pytest.mark.parametrize("resolver", list(RESOLVERS))
def test_matches_onnxruntime(converted, resolver):
    name, onnx_path, model = converted
    x = _inputs(model.input_shape)
    expected = onnxruntime_outputs(onnx_path, x)
    scale = float(np.abs(expected).max())
    # The comparison means something only if the random weights make the output depend on the input.
    assert expected.std() > 0.1 and np.abs(expected[0] - expected[1]).max() > 0.1 * scale
    got, interpreter = _litert(model.path, x, resolver)
    assert got.shape[1:] == model.output_shape[1:]
    got = model.to_onnx_layout(got)
    assert got.shape == expected.shape
    err = float(np.abs(got - expected).max())
    assert err <= TOLERANCE * scale, f"{name} ({resolver}): max abs error {err:.3g}, output scale {scale:.3g}"
    # XNNPACK really runs the model (a delegate node replaces its operators) or really does not.
    delegated = any(op["op_name"] == "DELEGATE" for op in interpreter._get_ops_details())
    assert delegated == (resolver == "xnnpack")


def test_written_model(converted):
    name, onnx_path, model = converted
    assert model.path.is_file() and not list(model.path.parent.glob(".*.partial"))
    res = int(name.rsplit("_", 1)[1])
    assert model.input_shape == (1, res, res, 3)
    assert (model.output_shape, model.output_layout) == MODELS[name]
    info = model.describe()
    assert info["schema_version"] == 3
    assert info["bytes"] == model.path.stat().st_size
    assert set(info["operators"]) <= {
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "PAD",
        "ADD",
        "MEAN",
        "RESHAPE",
        "FULLY_CONNECTED",
        "CONCATENATION",
        "TILE",
        "RESIZE_BILINEAR",
    }
    proto = onnx.load(str(onnx_path))
    convs = sum(n.op_type == "Conv" for n in proto.graph.node)
    assert info["operators"]["CONV_2D"] + info["operators"]["DEPTHWISE_CONV_2D"] == convs


def test_stride2_convolutions_are_padded(converted):
    """PyTorch pads a stride-2 3x3 convolution 1/1 where TFLite's SAME pads 0/1: each needs a PAD, then VALID."""
    _, _, model = converted
    written = _model(model.path)
    ops = _ops(written)
    producer = {op.outputs[0]: kind for kind, op in ops}
    strided = [op for kind, op in ops if kind.endswith("CONV_2D") and op.builtinOptions.strideH == 2]
    padded = [op for op in strided if producer.get(op.inputs[0]) == "PAD"]
    assert len(padded) >= 4
    assert all(op.builtinOptions.padding == tfl.Padding.VALID for op in padded)
    for op in set(strided) - set(padded):  # only on a 1x1 map (SSDLite's last extras) are SAME's pads 1/1 too
        assert written.subgraphs[0].tensors[op.inputs[0]].shape[1:3].tolist() == [1, 1]
        assert op.builtinOptions.padding == tfl.Padding.SAME
    assert sum(kind == "PAD" for kind, _ in ops) == len(padded)  # and no PAD anywhere else


def test_classifier_operators(convert):
    """The classifier's 35 ReLU6 are fused into its convolutions (no RELU6 operator); its 5 stride-2 ones padded."""
    onnx_path, model = convert("mobilenet_v2_0.35_96")
    ops = _ops(_model(model.path))
    assert model.describe()["operators"] == {
        "ADD": 10,
        "CONV_2D": 35,
        "DEPTHWISE_CONV_2D": 17,
        "FULLY_CONNECTED": 1,
        "MEAN": 1,
        "PAD": 5,
        "RESHAPE": 1,
    }
    clips = sum(n.op_type == "Clip" for n in onnx.load(str(onnx_path)).graph.node)
    fused = [
        op
        for kind, op in ops
        if kind.endswith("CONV_2D") and op.builtinOptions.fusedActivationFunction == tfl.ActivationFunctionType.RELU6
    ]
    assert len(fused) == clips == 35


def test_deeplab_dilations(convert):
    """Output stride 16 dilates the last stages by 2; ASPP's branches by 6, 12 and 18 (SAME pads, no PAD)."""
    _, model = convert("deeplabv3_aspp_mobilenet_v2_0.35_128")
    convs = [op.builtinOptions for kind, op in _ops(_model(model.path)) if kind.endswith("CONV_2D")]
    assert {o.dilationHFactor for o in convs} == {1, 2, 6, 12, 18}
    assert all(o.padding == tfl.Padding.SAME for o in convs if o.dilationHFactor > 1)


def _tiny(path, nodes, inits: dict, in_shape, out_shape) -> Path:
    """An opset-17 ONNX file with input ``input`` and output ``out``, built by hand."""
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, out_shape)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _rand(*shape, seed=1):
    return np.random.default_rng(seed + len(shape)).standard_normal(shape).astype(np.float32)


def _padded_dense(path):
    """Asymmetric pads, a constant added (fused Relu), Flatten of a 4x4 map, Gemm with transB=0 and alpha/beta."""
    nodes = [
        helper.make_node("Conv", ["input", "w"], ["c"], strides=[2, 2], pads=[0, 1, 1, 0], kernel_shape=[3, 3]),
        helper.make_node("Add", ["c", "shift"], ["a"]),
        helper.make_node("Relu", ["a"], ["r"]),
        helper.make_node("Flatten", ["r"], ["f"]),
        helper.make_node("Gemm", ["f", "b", "bias"], ["out"], alpha=0.5, beta=2.0),
    ]
    inits = {"w": _rand(4, 3, 3, 3), "shift": _rand(4, 1, 1), "b": _rand(64, 7), "bias": _rand(7)}
    return _tiny(path, nodes, inits, [1, 3, 9, 9], [1, 7]), {"PAD", "ADD", "TRANSPOSE", "RESHAPE", "FULLY_CONNECTED"}


def _dilated_heads(path):
    """Depthwise x2 dilated, Expand, Concat, Resize by sizes, a free and a real Transpose, Tile."""
    nodes = [
        helper.make_node(
            "Conv", ["input", "w"], ["c"], group=3, dilations=[2, 2], pads=[2, 2, 2, 2], kernel_shape=[3, 3]
        ),
        helper.make_node("Constant", [], ["lo"], value_float=0.0),
        helper.make_node("Constant", [], ["hi"], value_float=6.0),
        helper.make_node("Clip", ["c", "lo", "hi"], ["y"]),
        helper.make_node("GlobalAveragePool", ["y"], ["p"]),
        helper.make_node("Expand", ["p", "full"], ["e"]),
        helper.make_node("Tile", ["p", "reps"], ["t"]),
        helper.make_node("Concat", ["y", "e", "t"], ["z"], axis=1),
        helper.make_node("Resize", ["z", "", "", "sizes"], ["r"], mode="linear"),
        helper.make_node("Transpose", ["r"], ["rt"], perm=[0, 2, 3, 1]),
        helper.make_node("Reshape", ["rt", "shape"], ["o"]),
        helper.make_node("Transpose", ["o"], ["out"], perm=[0, 2, 1]),
    ]
    inits = {
        "w": _rand(6, 1, 3, 3),
        "full": np.array([1, 6, 8, 8]),
        "reps": np.array([1, 1, 8, 8]),
        "sizes": np.array([1, 18, 12, 16]),
        "shape": np.array([1, -1, 18]),
    }
    return _tiny(path, nodes, inits, [1, 3, 8, 8], [1, 18, 192]), {
        "DEPTHWISE_CONV_2D",
        "BROADCAST_TO",
        "TILE",
        "CONCATENATION",
        "RESIZE_BILINEAR",
        "TRANSPOSE",
    }


@pytest.mark.parametrize("resolver", list(RESOLVERS))
@pytest.mark.parametrize("build", [_padded_dense, _dilated_heads])
def test_small_graphs_match_onnxruntime(tmp_path, build, resolver):
    """Paths the four models do not take: layout changes, constants in the NHWC layout, attribute variants."""
    onnx_path, kinds = build(tmp_path / "tiny.onnx")
    model = write_tflite(onnx_path, tmp_path / "tiny.tflite")
    assert kinds <= set(model.describe()["operators"])
    x = _inputs(model.input_shape, n=2, seed=3)
    expected = onnxruntime_outputs(onnx_path, x)
    got = model.to_onnx_layout(_litert(model.path, x, resolver)[0])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * np.abs(expected).max())


def _sigmoid(path):
    nodes = [
        helper.make_node("Conv", ["input", "w"], ["c"], kernel_shape=[1, 1]),
        helper.make_node("Sigmoid", ["c"], ["out"], name="gate"),
    ]
    return _tiny(path, nodes, {"w": _rand(4, 3, 1, 1)}, [1, 3, 8, 8], [1, 4, 8, 8])


def _auto_pad(path):
    nodes = [helper.make_node("Conv", ["input", "w"], ["out"], kernel_shape=[3, 3], auto_pad="SAME_UPPER", name="cv")]
    return _tiny(path, nodes, {"w": _rand(4, 3, 3, 3)}, [1, 3, 8, 8], [1, 4, 8, 8])


def _nearest(path):
    nodes = [helper.make_node("Resize", ["input", "", "scales"], ["out"], mode="nearest", name="up")]
    return _tiny(path, nodes, {"scales": np.array([1, 1, 2, 2], np.float32)}, [1, 3, 8, 8], [1, 3, 16, 16])


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (_sigmoid, r"node 'gate' \(Sigmoid\).*operator is not supported"),
        (_auto_pad, r"node 'cv' \(Conv\).*auto_pad=SAME_UPPER"),
        (_nearest, r"node 'up' \(Resize\).*mode=nearest"),
    ],
)
def test_unsupported_raises_and_writes_nothing(tmp_path, build, match):
    onnx_path = build(tmp_path / "bad.onnx")
    with pytest.raises(ModelFileError, match=match) as info:
        write_tflite(onnx_path, tmp_path / "out" / "bad.tflite")
    assert "writer supports Add, Clip, Concat" in str(info.value)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_failed_write_leaves_no_file(tmp_path, monkeypatch):
    onnx_path, _ = _padded_dense(tmp_path / "tiny.onnx")

    def broken(path, expected):
        assert path.is_file()  # the failure comes after the temporary file was written
        raise RuntimeError("LiteRT rejects it")

    monkeypatch.setattr(tflite_mod, "_check_loads", broken)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.tflite").write_bytes(b"old")
    with pytest.raises(RuntimeError, match="rejects"):
        write_tflite(onnx_path, out / "tiny.tflite")
    with pytest.raises(RuntimeError, match="rejects"):
        write_tflite(onnx_path, out / "keep.tflite")
    assert sorted(p.name for p in out.iterdir()) == ["keep.tflite"]
    assert (out / "keep.tflite").read_bytes() == b"old"  # an existing file is not replaced by a failed write


def test_missing_onnx_file(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        write_tflite(tmp_path / "none.onnx", tmp_path / "none.tflite")
    assert not (tmp_path / "none.tflite").exists()
