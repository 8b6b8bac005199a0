"""Instruction counts per kernel on the emulated Raspberry Pi 4: each kernel call of one inference in a
region of its own (slow: compiles for the board and runs it under qemu)."""

import numpy as np
import pytest

from edge_mnv2.errors import DeviceError
from edge_mnv2.remote.instructions.counting import CountSettings, count_runtime

pytestmark = pytest.mark.slow

TRAINED_MODEL = "mobilenet_v2_0.35_96.shapes"  # the shipped trained model, as conftest's rpi4b_artifact


def _input(artifact) -> np.ndarray:
    return np.random.default_rng(0).standard_normal(artifact.input_shape).astype(np.float32)


def test_each_kernel_call_of_a_bytecode_build_is_counted(rpi4b_image, tmp_path):
    from edge_mnv2.compile import compile_model

    artifact = compile_model(TRAINED_MODEL, "rpi4b", tmp_path / "bytecode", exec_mode="bytecode")
    counted = count_runtime(
        rpi4b_image, "tvm", artifact.library_path, _input(artifact), CountSettings(runs=1), per_kernel=True
    )
    names = [name for name, _ in counted.kernels]
    kernels = set(artifact.metadata["schedules"]["kernels"])
    # every call is one of the build's kernels (weights prepacked at build time keep their kernel's name)
    assert len(names) >= 40 and all(n.removesuffix("_prepacked") in kernels or n in kernels for n in names), names
    assert all(region.total > 0 for _, region in counted.kernels)
    # the kernels are the inference: their sum is the whole run's count, less the VM's own steps and
    # plus each region's call overhead, within a few percent
    total = sum(region.total for _, region in counted.kernels)
    assert abs(total - counted.median.total) <= 0.05 * counted.median.total
    # the 1x1 convolutions are where the multiply-adds are: most of them vector FMAs
    fma = sum(region.mix["vector_fma"] for _, region in counted.kernels)
    assert fma >= 0.9 * counted.median.mix["vector_fma"]


def test_a_build_with_the_vm_compiled_to_machine_code_says_to_build_with_bytecode(rpi4b_image, rpi4b_artifact):
    assert rpi4b_artifact.metadata["target"]["exec_mode"] == "compiled"  # the Pi targets' default
    with pytest.raises(DeviceError, match="--exec-mode bytecode"):
        count_runtime(
            rpi4b_image,
            "tvm",
            rpi4b_artifact.library_path,
            _input(rpi4b_artifact),
            CountSettings(runs=1),
            per_kernel=True,
        )
