"""Board target files, their validation, the tick/instruction relation and the flasher wrapper."""

from __future__ import annotations

import dataclasses

import pytest

from edge_mnv2.errors import BoardConfigError, FlashError
from edge_mnv2.micro.board import board_config
from edge_mnv2.micro.flash import FlashedBoard, flash
from edge_mnv2.micro.qemu import instructions_from_ticks
from edge_mnv2.targets import load_target

from micro_helpers import ALL_TARGETS

MB = 1024 * 1024


@pytest.mark.parametrize("name", ALL_TARGETS)
def test_board_files_are_valid(name):
    target = load_target(name)
    assert target.is_micro and target.device == "micro" and target.tvm["kind"] == "c"
    board = board_config(target)
    assert board.clock_hz > 0 and board.stack_bytes >= 4096
    assert f"-mcpu={board.cpu}" in board.gcc_flags()
    if board.emulated:
        # Room for MobileNetV2 0.35@96 in fp32: ~1.7 MB of weights, ~1 MB of RAM.
        assert board.flash.size >= 2 * MB and board.ram.size >= 1 * MB
        assert board.machine == name
    else:
        assert board.flash_command and board.port


def test_real_boards_have_their_datasheet_memories():
    f7 = board_config(load_target("stm32f746g-disco"))
    assert (f7.flash.origin, f7.flash.size, f7.ram.origin, f7.ram.size) == (0x08000000, MB, 0x20000000, 320 * 1024)
    assert f7.uart == "stm32-usart" and f7.uart_base == 0x40011000
    nrf = board_config(load_target("nrf52840dk"))
    assert (nrf.flash.origin, nrf.flash.size, nrf.ram.origin, nrf.ram.size) == (0, MB, 0x20000000, 256 * 1024)
    assert nrf.uart == "nrf-uarte" and nrf.uart_base == 0x40002000


def test_soft_float_board_gets_no_fpu_flags():
    flags = board_config(load_target("mps2-an385")).gcc_flags()
    assert "-mfloat-abi=soft" in flags and not any(f.startswith("-mfpu") for f in flags)


def _with(name, **changes):
    target = load_target(name)
    micro = {**target.micro, **changes.pop("micro", {})}
    return dataclasses.replace(target, micro=micro, **changes)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"micro": {"cpu": 3}}, "cpu must be a non-empty string"),
        ({"micro": {"uart": "pl011"}}, "uart 'pl011' has no driver"),
        ({"micro": {"memory": {"ram": {"origin": 0x20000000, "size": 4096}}}}, r"\[micro.memory.flash\] is missing"),
        (
            {"micro": {"memory": {"flash": {"origin": 0}, "ram": {"origin": 1, "size": 1}}}},
            "lacks the required key 'size'",
        ),
        ({"micro": {"memory": {"flash": {"origin": 0, "size": 100}, "ram": {"origin": 50, "size": 100}}}}, "overlap"),
        ({"micro": {"fpu": "none", "float-abi": "hard"}}, "needs float-abi"),
        ({"flash": {"method": "jtag-magic"}}, "method 'jtag-magic'"),
        ({"flash": {"method": "qemu"}}, "lacks the required key 'machine'"),
        ({"flash": {"method": "openocd", "command": "openocd -f x"}}, "command must be a list"),
    ],
)
def test_bad_board_fields_are_named(change, message):
    with pytest.raises(BoardConfigError, match=message):
        board_config(_with("mps2-an386", **change))


def test_missing_clock_is_named():
    target = load_target("mps2-an386")
    micro = {k: v for k, v in target.micro.items() if k != "clock-hz"}
    with pytest.raises(BoardConfigError, match="'clock-hz'"):
        board_config(dataclasses.replace(target, micro=micro))


def test_instructions_from_ticks():
    # -icount shift=0: 1 instruction = 1 ns; SysTick at 25 MHz ticks every 40 ns.
    assert instructions_from_ticks(500_000, 25_000_000) == 20_000_000
    assert instructions_from_ticks(640_000, 32_000_000) == 20_000_000
    with pytest.raises(ValueError):
        instructions_from_ticks(1, 0)


def test_flash_real_board_runs_the_command_with_paths(tmp_path):
    elf = tmp_path / "firmware.elf"
    elf.write_bytes(b"\x7fELF")
    target = _with(
        "stm32f746g-disco", flash={"method": "openocd", "command": ["true", "{elf}"], "port": "/dev/ttyACM7"}
    )
    board = flash(elf, target)
    assert isinstance(board, FlashedBoard) and board.url == "/dev/ttyACM7"
    assert flash(tmp_path, target, port="socket://127.0.0.1:1").url == "socket://127.0.0.1:1"


def test_flash_errors_name_the_problem(tmp_path):
    elf = tmp_path / "firmware.elf"
    elf.write_bytes(b"\x7fELF")
    missing = _with("nrf52840dk", flash={"method": "nrfjprog", "command": ["no-such-flasher-xyz", "{elf}"]})
    with pytest.raises(FlashError, match="'no-such-flasher-xyz' .* not installed"):
        flash(elf, missing)
    failing = _with("nrf52840dk", flash={"method": "nrfjprog", "command": ["false", "{elf}"]})
    with pytest.raises(FlashError, match="failed flashing nrf52840dk"):
        flash(elf, failing)
    with pytest.raises(FlashError, match="does not exist"):
        flash(tmp_path / "nope.elf", failing)
    needs_hex = _with("nrf52840dk", flash={"method": "nrfjprog", "command": ["true", "{hex}"]})
    with pytest.raises(FlashError, match="firmware.hex, which is missing"):
        flash(elf, needs_hex)
