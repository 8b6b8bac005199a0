"""Post-training int8 quantization: the folded float graph, calibration, the integer scheme, and a Relax
module whose kernels really compute in int8 and match the integer reference bit for bit."""

import numpy as np
import pytest
import torch

from edge_mnv2.data.labelled import open_split
from edge_mnv2.models import get_spec
from edge_mnv2.models.weights import build_model
from edge_mnv2.quantize import calibration_images, ptq
from edge_mnv2.quantize.graph import layer_graph, run_float
from edge_mnv2.quantize.relax_int8 import build_module

TRAINED = "mobilenet_v2_0.35_96.shapes"


@pytest.fixture(scope="module")
def trained():
    spec = get_spec(TRAINED)
    model = build_model(spec).eval()
    layers = layer_graph(model)
    quantized = ptq.quantize(layers, ptq.calibrate(layers, calibration_images("shapes", 96, spec.preprocessing)))
    val = open_split("shapes", "val", 96, 500, preprocessing=spec.preprocessing)
    x = spec.preprocessing.normalize(val.batch(np.arange(len(val))))
    return spec, model, layers, quantized, x, val.labels


def test_folded_graph_computes_what_the_model_computes(trained):
    _, model, layers, _, x, _ = trained
    with torch.inference_mode():
        want = model(torch.from_numpy(x[:8])).numpy()
    assert np.abs(run_float(layers, x[:8]) - want).max() <= 1e-4
    assert sum(1 for layer in layers if type(layer).__name__ == "Add") == 10  # MobileNetV2's residuals


def test_int8_loses_at_most_one_point_and_weights_shrink_below_30_percent(trained):
    _, model, layers, quantized, x, labels = trained
    with torch.inference_mode():
        fp32 = model(torch.from_numpy(x)).numpy()
    int8 = np.concatenate([ptq.run_integer(quantized, x[i : i + 100]) for i in range(0, len(x), 100)])
    fp32_top1 = (fp32.argmax(1) == labels).mean() * 100
    int8_top1 = (int8.argmax(1) == labels).mean() * 100
    assert fp32_top1 - int8_top1 <= 1.0, (fp32_top1, int8_top1)
    fp32_bytes = sum(layer.weight.size * 4 + layer.bias.size * 4 for layer in layers if hasattr(layer, "weight"))
    assert quantized.weight_bytes()["total"] <= 0.30 * fp32_bytes


def test_requantization_is_integer_rounding_to_nearest():
    rq = ptq.Requant.of(np.array([0.3, 1.7]))
    x = np.arange(-50, 50).reshape(1, 1, 100).repeat(2, axis=1).astype(np.int64)
    got = rq.apply(x.reshape(1, 2, 100, 1), channel_axis=1).reshape(2, 100)
    want = np.floor(x[0] * np.array([[0.3], [1.7]]) + 0.5)
    assert np.abs(got - want).max() <= 1  # the multiplier is rounded to 30 bits
    assert rq.multiplier.dtype == np.int32 and rq.multiplier.max() < 2**31


def test_relax_module_is_int8_and_matches_the_integer_reference_exactly(trained):
    import tvm
    from tvm import relax

    from edge_mnv2.micro.graph import build_plan
    from edge_mnv2.micro.lowering import fused_module

    spec, _, _, quantized, x, _ = trained
    mod = build_module(quantized, spec.input_shape)
    plan = build_plan(fused_module(mod))
    constants = [plan.tensors[t] for t in plan.constants]
    weights = [t for t in constants if len(t.shape) == 4 and t.shape[2] * t.shape[3] * t.shape[0] > 1]
    assert weights and all(t.dtype == "int8" for t in weights)  # weights stored as int8
    activations = [t for t in plan.tensors if t.kind == "activation"]
    # every layer hands on int8; TVM fuses the pool's widening cast into the last conv, whose output
    # (int8 values) is therefore stored as int32, then the pool's int32 sum and the float logits
    assert all(t.dtype == "int8" for t in activations[:-3]) and len(activations) > 50
    executable = tvm.compile(mod, target=tvm.target.Target({"kind": "llvm", "num-cores": 2}))
    vm = relax.VirtualMachine(executable, tvm.cpu())
    got = np.concatenate([vm["main"](tvm.runtime.tensor(x[i : i + 1])).numpy() for i in range(6)])
    np.testing.assert_array_equal(got, ptq.run_integer(quantized, x[:6]))
