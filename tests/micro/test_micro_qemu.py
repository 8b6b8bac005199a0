"""The toy model's firmware on emulated boards (qemu-system-arm), over the real serial protocol."""

from __future__ import annotations

import os
import struct
import time

import numpy as np
import pytest

from edge_mnv2.errors import DeviceReportedError, EmulatorError
from edge_mnv2.micro import protocol as P
from edge_mnv2.micro.flash import flash
from edge_mnv2.micro.link import SerialLink
from edge_mnv2.micro.qemu import EmulatedBoard, instructions_from_ticks
from edge_mnv2.targets import load_target

from micro_helpers import EMULATED_TARGETS, toy_image, toy_reference

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=EMULATED_TARGETS)
def device(request, toy_firmware):
    """(target, SerialLink) to the toy firmware running under qemu, one board per target."""
    target = load_target(request.param)
    fw = toy_firmware(request.param)
    board = flash(fw, target)
    try:
        with SerialLink(board.url, timeout=10) as link:
            yield target, link, board
    finally:
        board.stop()


def test_info(device):
    target, link, _ = device
    info = link.info()
    assert info.protocol_version == P.VERSION
    assert info.model_id == 0x70790001 and info.model_name == "toy_dense_8x8"
    assert (info.input_h, info.input_w, info.input_c, info.output_elems) == (8, 8, 3, 10)
    assert info.clock_hz == target.micro["clock-hz"] and info.board == target.name
    assert info.max_payload == 192


def test_run_matches_reference_and_is_deterministic(device):
    _, link, _ = device
    for seed in range(3):
        image = toy_image(seed)
        outputs, ticks = link.run(image)
        np.testing.assert_allclose(outputs, toy_reference(image), rtol=0, atol=1e-5)
        assert ticks > 0
        again, ticks_again = link.run(image)
        assert np.array_equal(outputs, again) and ticks_again == ticks


def test_corrupted_request_gets_error_then_recovers(device):
    _, link, board = device
    frame = bytearray(P.encode_frame(P.MsgType.RUN, 77, toy_image(5).tobytes()))
    frame[40] ^= 0x10  # damage the image: the CRC no longer matches
    link.send_raw(b"noise\x00" + bytes(frame))
    reply = _read_frame(link)
    assert reply.type == P.MsgType.ERROR and reply.seq == 77
    assert P.decode_error(reply.payload)[0] == P.ErrorCode.BAD_CRC
    outputs, _ = link.run(toy_image(5))
    np.testing.assert_allclose(outputs, toy_reference(toy_image(5)), atol=1e-5)
    board.check()


def test_truncated_request_times_out_on_the_device(device):
    _, link, _ = device
    frame = P.encode_frame(P.MsgType.RUN, 78, toy_image(6).tobytes())
    link.send_raw(frame[:50])
    reply = _read_frame(link, timeout=10)
    assert reply.type == P.MsgType.ERROR and P.decode_error(reply.payload)[0] == P.ErrorCode.TIMEOUT
    assert link.info().model_id == 0x70790001


def test_oversize_and_unknown_requests(device):
    _, link, _ = device
    link.send_raw(P.MAGIC + struct.pack("<BBHI", P.VERSION, P.MsgType.RUN, 79, 1 << 30))
    reply = _read_frame(link)
    assert reply.type == P.MsgType.ERROR and P.decode_error(reply.payload)[0] == P.ErrorCode.FRAME_TOO_LONG
    with pytest.raises(DeviceReportedError, match="UNKNOWN_TYPE"):
        link.request(0x55, b"", P.MsgType.RESULT)
    with pytest.raises(DeviceReportedError, match="WRONG_PAYLOAD_SIZE"):
        link.request(P.MsgType.RUN, b"\x00" * 10, P.MsgType.RESULT)


def test_model_failure_is_reported(device):
    _, link, _ = device
    with pytest.raises(DeviceReportedError, match="MODEL_FAILED: model_run returned 7") as exc:
        link.run(np.full((8, 8, 3), 255, np.uint8))
    assert exc.value.code == P.ErrorCode.MODEL_FAILED


def test_ticks_count_instructions_under_icount(device):
    """-icount shift=0: one instruction is 1 ns, so ticks = instructions * clock_hz / 1e9."""
    target, link, _ = device
    clock = target.micro["clock-hz"]
    small, big = link.calibrate(1_000_000), link.calibrate(5_000_000)
    # The difference cancels the fixed cost of the call and of reading the counter.
    ticks = big.ticks - small.ticks
    instructions = big.instructions - small.instructions
    assert abs(instructions_from_ticks(ticks, clock) - instructions) <= 2 * 1e9 / clock
    assert link.calibrate(1_000_000).ticks == small.ticks  # deterministic


def _read_frame(link: SerialLink, timeout: float = 5.0) -> P.Frame:
    """The next valid frame the device sends (for requests sent raw)."""
    decoder = P.FrameDecoder()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = link._serial.read(256)
        for event in decoder.feed(data):
            if isinstance(event, P.Frame):
                return event
    raise AssertionError("no frame from the device")


def test_qemu_failure_shows_its_stderr(toy_firmware):
    target = load_target("mps2-an386")
    bogus = target.__class__(**{**target.__dict__, "flash": {"method": "qemu", "machine": "no-such-board"}})
    with pytest.raises(EmulatorError, match="no-such-board"):
        EmulatedBoard(bogus, toy_firmware("mps2-an386").elf).start()


def test_stop_ends_the_process_group(toy_firmware):
    board = flash(toy_firmware("mps2-an386"), load_target("mps2-an386"))  # started
    pid = board._proc.pid
    with board:  # entering a started board does not start a second qemu
        assert board._proc.pid == pid
        assert board.url.startswith("socket://127.0.0.1:")
    assert not board.alive()
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)


def test_tick_counter_extends_past_systick_wraps(toy_firmware):
    """SysTick is 24 bits; a measurement longer than 2**24 ticks must still be exact."""
    target = load_target("mps3-an547")
    with EmulatedBoard(target, toy_firmware("mps3-an547").elf) as board, SerialLink(board.url) as link:
        cal = link.calibrate(300_000_000)  # 600 M instructions = 19.2 M ticks at 32 MHz
    assert cal.ticks > 2**24
    assert abs(instructions_from_ticks(cal.ticks, 32_000_000) - cal.instructions) <= 2 * 31.25
