"""Firmware builds of the toy model for every board (no emulator needed)."""

from __future__ import annotations

import dataclasses
import shutil
import struct
import subprocess

import pytest

from edge_mnv2.errors import FirmwareBuildError, FirmwareTooLargeError
from edge_mnv2.micro.firmware import build_firmware
from edge_mnv2.targets import load_target

from micro_helpers import ALL_TARGETS, TOY_MODEL

EM_ARM = 40


def elf_header(path):
    data = path.read_bytes()[:52]
    assert data[:4] == b"\x7fELF" and data[4] == 1 and data[5] == 1  # 32-bit little-endian
    (machine,) = struct.unpack_from("<H", data, 18)
    (entry,) = struct.unpack_from("<I", data, 24)
    return machine, entry


@pytest.mark.parametrize("name", ALL_TARGETS)
def test_toy_firmware_builds(toy_firmware, name):
    fw = toy_firmware(name)
    machine, entry = elf_header(fw.elf)
    assert machine == EM_ARM
    assert entry & 1, "Thumb entry point"
    assert fw.board.flash.origin <= (entry & ~1) < fw.board.flash.end
    assert fw.bin.is_file() and fw.hex.is_file() and fw.map.is_file()
    assert fw.sizes["rodata"] >= (TOY_MODEL / "weights.bin").stat().st_size  # the .incbin blob
    assert fw.sizes["text"] > 0 and fw.sizes["stack"] == fw.board.stack_bytes
    assert fw.flash_bytes <= fw.board.flash.size and fw.ram_bytes <= fw.board.ram.size
    assert fw.max_stack_frame is not None and fw.max_stack_frame.bytes > 0
    assert "toy_weights" in fw.map.read_text()


def test_project_rebuilds_on_its_own(toy_firmware, tmp_path):
    fw = toy_firmware("mps2-an386")
    copy = tmp_path / "project"
    shutil.copytree(fw.project_dir, copy)
    shutil.rmtree(copy / "build")
    proc = subprocess.run(["make", "-C", str(copy)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (copy / "build" / "firmware.elf").read_bytes()[:4] == b"\x7fELF"


def test_linker_overflow_gives_needed_and_available_bytes(tmp_path):
    target = load_target("mps2-an386")
    memory = {**target.micro["memory"], "flash": {"origin": 0x21000000, "size": 8192}}
    small = dataclasses.replace(target, micro={**target.micro, "memory": memory})
    with pytest.raises(FirmwareTooLargeError, match=r"FLASH needs \d+ bytes, has 8192"):
        build_firmware(TOY_MODEL, small, tmp_path / "p")


def test_stack_that_does_not_fit_ram(tmp_path):
    target = load_target("mps2-an386")
    tight = dataclasses.replace(target, micro={**target.micro, "stack-bytes": 8 * 1024 * 1024})
    with pytest.raises(FirmwareTooLargeError, match="RAM needs .* stack-bytes"):
        build_firmware(TOY_MODEL, tight, tmp_path / "p")


def test_model_dir_without_header(tmp_path):
    with pytest.raises(FirmwareBuildError, match="no model.h"):
        build_firmware(tmp_path, load_target("mps2-an386"), tmp_path / "p")


def test_compile_error_is_reported(tmp_path):
    model = tmp_path / "model"
    shutil.copytree(TOY_MODEL, model)
    (model / "broken.c").write_text("int f(void) { return undefined_thing; }\n")
    with pytest.raises(FirmwareBuildError, match="undefined_thing"):
        build_firmware(model, load_target("mps2-an386"), tmp_path / "p")
