"""compile --quantize int8 for the host: int8 kernels and weights in the artifact, and device outputs
equal to the int8 desktop reference. (The boards: tests/micro/test_int8_boards.py.)"""

import numpy as np
import pytest

from edge_mnv2.bench import BenchSettings
from edge_mnv2.compile import compile_model

TRAINED = "mobilenet_v2_0.35_96.shapes"


@pytest.mark.slow
def test_int8_host_build_runs_on_the_local_device_like_the_integer_reference(tmp_path, trained_artifact):
    from edge_mnv2.bench import bench_artifact
    from edge_mnv2.quantize import kernels_for
    from edge_mnv2.targets import load_target

    artifact = compile_model(TRAINED, "host", tmp_path / "int8", quantize="int8")
    quant = artifact.metadata["quantization"]
    assert quant["weight_ratio"] <= 0.30 and quant["calibration"] == {"data": "shapes", "images": 256}
    assert quant["stored_ratio"] <= 0.30  # what the artifact really stores
    assert quant["kernels"] == kernels_for(load_target("host").tvm_target())  # VNNI layout on such CPUs
    fp32 = trained_artifact  # the same model compiled for the host in fp32 (a session fixture)
    report = bench_artifact(
        artifact.directory,
        settings=BenchSettings(images=60, repeat=4, rounds=2, peers=False),
        baseline_path=fp32.directory,
    )
    acc = report["accuracy"]
    assert acc["int8_reference"]["max_abs_error"] == 0.0  # bit for bit
    assert acc["reference_top1"] - acc["device_top1"] <= 2.0  # next to the fp32 desktop reference
    baseline = report["baseline"]  # and next to an fp32 build on the device
    assert baseline["quantization"] is None and baseline["latency_ms"]["samples"] == 4
    assert baseline["accuracy"]["max_abs_error"] < 1e-3 and baseline["accuracy"]["device_top1"] == acc["reference_top1"]
    assert report["ratios"]["tvm_over_baseline"] == report["latency_ms"]["median"] / baseline["latency_ms"]["median"]


@pytest.mark.slow
def test_int8_host_build_without_a_log_is_bit_exact_with_the_default_rules(tmp_path):
    """Zero trials: every int8 kernel scheduled by the default rules (VNNI's vpdpbusd tiles for the 1x1
    convolutions where this CPU has it), the outputs those of the integer reference, bit for bit."""
    import tvm
    from tvm import relax

    from edge_mnv2.quantize import integer_reference, kernels_for
    from edge_mnv2.targets import load_target

    artifact = compile_model(TRAINED, "host", tmp_path / "int8", quantize="int8", use_tuning=False)
    schedules = artifact.metadata["schedules"]
    assert schedules["by_source"].get("none", 0) == 0 and schedules["by_source"].get("log", 0) == 0
    if kernels_for(load_target("host").tvm_target()) == "x86-vnni":
        assert schedules["by_rule"]["pointwise_vnni"] >= 10  # the 1x1 convolutions and the classifier
        assert schedules["by_rule"]["depthwise_int8"] >= 8  # channels in int32 vectors, requantized per tile
    x = np.random.default_rng(0).standard_normal((4, *artifact.input_shape[1:])).astype(np.float32)
    vm = relax.VirtualMachine(tvm.runtime.load_module(str(artifact.library_path)), tvm.cpu())
    got = np.concatenate([vm["main"](tvm.runtime.tensor(x[i : i + 1])).numpy() for i in range(len(x))])
    np.testing.assert_array_equal(got, integer_reference(artifact.metadata, x))
