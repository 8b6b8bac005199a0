"""Cross-compilation for the Raspberry Pi targets: the right ISA in the library, the target recorded."""

import pytest

from edge_mnv2.compile import compile_model
from edge_mnv2.targets import load_target

pytestmark = pytest.mark.slow

# ELF e_machine values and classes (1: 32-bit, 2: 64-bit).
EM_AARCH64, EM_ARM, EM_X86_64 = 0xB7, 0x28, 0x3E


def elf_header(path):
    data = path.read_bytes()[:20]
    assert data[:4] == b"\x7fELF", f"{path} is not an ELF file"
    return data[4], int.from_bytes(data[18:20], "little")


@pytest.mark.parametrize(
    "target, elf_class, machine",
    [("rpi4b", 2, EM_AARCH64), ("rpi5", 2, EM_AARCH64), ("rpi3b", 2, EM_AARCH64), ("rpi3b-armv7", 1, EM_ARM)],
)
def test_cross_compiled_library(tmp_path, target, elf_class, machine, request):
    # rpi4b's is the session's build of the same model (conftest), shared with the emulator tests
    artifact = (
        request.getfixturevalue("rpi4b_artifact")
        if target == "rpi4b"
        else compile_model("mobilenet_v2_0.35_96.shapes", target, tmp_path / target)
    )
    assert elf_header(artifact.library_path) == (elf_class, machine)
    meta = artifact.metadata["target"]
    spec = load_target(target)
    assert meta["name"] == target and meta["tvm"]["mcpu"] == spec.tvm["mcpu"]
    assert meta["tvm"]["mtriple"] == spec.tvm["mtriple"] and meta["cross_compiler"] == spec.cross_compiler
    artifact.verify()


def test_host_library_is_x86_64(small_artifact):
    assert elf_header(small_artifact.library_path) == (2, EM_X86_64)


def test_pi_targets_name_a_key_and_an_emulator():
    for name in ("rpi4b", "rpi5", "rpi3b"):
        spec = load_target(name)
        assert spec.rpc_key == name and spec.emulate["qemu"] == "qemu-aarch64"
        assert spec.emulate["cpu"] == spec.tvm["mcpu"]  # the emulated CPU is the one compiled for
    assert not load_target("rpi3b-armv7").emulate  # no armv7 TVM runtime on PyPI
