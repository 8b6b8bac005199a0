"""Builds without a tuning log: every kernel scheduled by a default rule, outputs equal to PyTorch's, on
the host and on the emulated Raspberry Pi 4, for each family of the registry (slow: compiles)."""

import numpy as np
import pytest
import torch

from edge_mnv2.compile import compile_model
from edge_mnv2.models import get_spec
from edge_mnv2.models.weights import build_model

pytestmark = pytest.mark.slow

FAMILIES = (
    "mobilenet_v2_0.35_96",
    "ssdlite_mobilenet_v2_0.35_96",
    "deeplabv3_mobilenet_v2_0.35_96",
    "deeplabv3_aspp_mobilenet_v2_0.35_96",
)


def _reference(model: str, x: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return build_model(get_spec(model), None)(torch.from_numpy(x)).numpy()


def _close(got: np.ndarray, expected: np.ndarray) -> None:
    assert np.abs(got.reshape(expected.shape) - expected).max() <= 1e-4 * max(1.0, np.abs(expected).max())


def _schedules_are_all_rules(artifact) -> None:
    schedules = artifact.metadata["schedules"]
    assert schedules["by_source"] == {"rule": schedules["count"]} and schedules["layout"] == "NHWC"
    assert all(k["source"] == "rule" and k["rule"] and k["params"] for k in schedules["kernels"].values())


@pytest.mark.parametrize("model", FAMILIES)
def test_host_build_without_a_log_matches_pytorch(model, tmp_path):
    import tvm
    from tvm import relax

    artifact = compile_model(model, "host", tmp_path / "b", use_tuning=False)
    _schedules_are_all_rules(artifact)
    assert artifact.metadata["schedules"]["vector_isa"]["lanes"] in (8, 16)  # AVX2 or AVX-512, as detected
    x = np.random.default_rng(1).standard_normal(artifact.input_shape).astype("float32")
    vm = relax.VirtualMachine(tvm.runtime.load_module(str(artifact.library_path)), tvm.cpu())
    out = vm["main"](tvm.runtime.tensor(x))
    _close((out if hasattr(out, "numpy") else out[0]).numpy(), _reference(model, x))


def test_a_log_schedules_what_it_holds_and_compile_says_where_each_kernel_came_from(tmp_path, capfd):
    artifact = compile_model("mobilenet_v2_0.35_96", "host", tmp_path / "tuned")
    schedules = artifact.metadata["schedules"]
    log = artifact.metadata["tuning"]["log"]
    assert schedules["by_source"] == {"log": schedules["count"]}
    assert {k["log"] for k in schedules["kernels"].values()} == {log}
    assert f"{schedules['count']} kernels: {schedules['count']} from the tuning log" in capfd.readouterr().err


def test_emulated_rpi4b_builds_without_a_log_match_pytorch(tmp_path, rpi4b_image):
    from edge_mnv2.remote.instructions.counting import CountSettings, count_many

    jobs, references = {}, {}
    for model in FAMILIES:
        artifact = compile_model(model, "rpi4b", tmp_path / model, use_tuning=False)
        _schedules_are_all_rules(artifact)
        assert artifact.metadata["schedules"]["vector_isa"]["name"] == "neon"
        x = np.random.default_rng(2).standard_normal(artifact.input_shape).astype("float32")
        references[model] = _reference(model, x)
        jobs[model] = (artifact.library_path, x)
    # Each build runs in TVM's runtime on the emulated Cortex-A72 (one counted run gives its output).
    for model, (library, x) in jobs.items():
        counted = count_many(rpi4b_image, {"tvm": (library, x)}, CountSettings(warmup=0, runs=1))["tvm"]
        _close(counted.output, references[model])
