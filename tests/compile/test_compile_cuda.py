"""CUDA targets: Jetson artifacts built here (host code cross-compiled for aarch64, CUDA code for the
board's GPU) or refused with the toolkit they need, and the local GPU end to end where there is one."""

import json
import shutil
import struct

import numpy as np
import pytest

from edge_mnv2.compile import compile_model, cuda
from edge_mnv2.errors import CompileError
from edge_mnv2.targets import load_target

MODEL = "mobilenet_v2_0.35_96"
EM_AARCH64 = 183
needs_nvcc = pytest.mark.skipif(shutil.which("nvcc") is None, reason="no CUDA toolkit (nvcc) on this machine")


def elf_machine(path):
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF"
    return struct.unpack_from("<H", header, 18)[0]


def test_jetson_targets_name_the_right_gpu_and_host_cpu():
    expected = {
        "jetson-nano": ("sm_53", "cortex-a57"),
        "jetson-xavier-nx": ("sm_72", "carmel"),
        "jetson-orin-nano": ("sm_87", "cortex-a78ae"),
    }  # TVM's orin-nano tag says "carmel"
    for name, (arch, cpu) in expected.items():
        target = load_target(name)
        assert target.device == "cuda" and target.cross_compiler == "aarch64-linux-gnu-g++"
        tvm_target = target.tvm_target()
        assert tvm_target.attrs["arch"] == arch
        assert tvm_target.host.attrs["mcpu"] == cpu and tvm_target.host.attrs["mtriple"] == "aarch64-linux-gnu"


@needs_nvcc
@pytest.mark.slow
@pytest.mark.parametrize("board", ["jetson-nano", "jetson-xavier-nx", "jetson-orin-nano"])
def test_jetson_artifacts_are_built_or_refused_with_the_toolkit_needed(board, tmp_path):
    target = load_target(board)
    arch = target.tvm["arch"]
    if arch not in cuda.toolkit()[1]:
        with pytest.raises(
            CompileError,
            match=rf"{board} needs {arch} code.*nvcc {cuda.toolkit()[0]}.*"
            rf"{target.cuda['jetpack'].split(' (')[0]}",
        ):
            compile_model(MODEL, board, tmp_path / board)
        assert not (tmp_path / board).exists()
        return
    artifact = compile_model(MODEL, board, tmp_path / board)
    library = artifact.library_path
    assert elf_machine(library) == EM_AARCH64  # host code for the board's CPU
    assert cuda.cubin_architectures(library.read_bytes()) == [arch]  # GPU code for the board's GPU
    meta = json.loads((artifact.directory / "artifact.json").read_text())
    assert meta["cuda"]["arch"] == arch and meta["target"]["device"] == "cuda"


def test_cubin_architecture_reader_knows_both_elf_abis():
    def cubin(abi_version, flags):
        header = bytearray(64)
        header[:4] = b"\x7fELF"
        header[4], header[7], header[8] = 2, 0x41, abi_version
        struct.pack_into("<H", header, 18, 190)
        struct.pack_into("<I", header, 48, flags)
        return bytes(header)

    blob = b"junk" + cubin(8, 0x6005704) + b"\x7fELF not a cuda elf" + cubin(7, 0x00350035)
    assert cuda.cubin_architectures(blob) == ["sm_87", "sm_53"]


def _gpu():
    try:
        return cuda.local_architecture()
    except CompileError:
        return None


@pytest.mark.skipif(_gpu() is None, reason="no NVIDIA GPU on this machine")
def test_local_gpu_end_to_end(tmp_path):
    from edge_mnv2.bench import BenchSettings, bench_artifact

    artifact = compile_model(MODEL, "cuda", tmp_path / "cuda")
    assert cuda.cubin_architectures(artifact.library_path.read_bytes()) == [_gpu()]
    report = bench_artifact(artifact.directory, settings=BenchSettings(images=8, repeat=20, rounds=2))
    assert report["accuracy"]["max_abs_error"] <= 1e-3 and report["accuracy"]["top1_agreement"] == 100.0
    assert "torch-cuda" in report["peers"] and np.isfinite(report["ratios"]["tvm_over_torch-cuda"])


@needs_nvcc
@pytest.mark.slow
def test_ssdlite_builds_for_the_orin_despite_dlights_gemv_rule(tmp_path):
    artifact = compile_model("ssdlite_mobilenet_v2_0.35_128.shapes", "jetson-orin-nano", tmp_path / "ssd")
    assert elf_machine(artifact.library_path) == EM_AARCH64
    assert cuda.cubin_architectures(artifact.library_path.read_bytes()) == ["sm_87"]
