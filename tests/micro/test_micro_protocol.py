"""The framed protocol on the host side, and SerialLink against a scripted fake device."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from edge_mnv2.errors import DeviceReportedError, DeviceTimeoutError, SerialProtocolError
from edge_mnv2.micro import protocol as P
from edge_mnv2.micro.link import SerialLink

FRAME = P.encode_frame(P.MsgType.RUN, 0x1234, bytes(range(40)))


def frames(events):
    return [e for e in events if isinstance(e, P.Frame)]


def test_layout_is_the_documented_one():
    payload = b"abc"
    data = P.encode_frame(P.MsgType.INFO, 7, payload)
    assert data[:2] == P.MAGIC
    assert struct.unpack_from("<BBHI", data, 2) == (P.VERSION, P.MsgType.INFO, 7, 3)
    assert data[10:13] == payload
    assert struct.unpack_from("<I", data, 13)[0] == zlib.crc32(data[2:13])
    assert len(data) == P.FRAME_OVERHEAD + 3


@pytest.mark.parametrize("payload", [b"", b"x", bytes(range(256)) * 10, P.MAGIC * 5])
def test_round_trip(payload):
    frame = P.decode_frame(P.encode_frame(P.MsgType.RESULT, 65535, payload))
    assert frame == P.Frame(P.MsgType.RESULT, 65535, payload, P.VERSION)


def test_payload_codecs_round_trip():
    info = P.DeviceInfo(1, 0xDEADBEEF, 96, 96, 3, 10, 32_000_000, 553000, 27648, "m.shapes", "mps3")
    assert P.DeviceInfo.from_payload(info.to_payload()) == info
    assert info.image_bytes == 96 * 96 * 3
    outputs = np.linspace(-1, 1, 10).astype(np.float32)
    got, ticks = P.decode_result(P.encode_result(2**40 + 5, outputs))
    assert ticks == 2**40 + 5 and np.array_equal(got, outputs)
    assert P.decode_error(P.encode_error(4, "model_run returned 3")) == (4, "model_run returned 3")


def test_every_flipped_byte_is_rejected():
    for i in range(len(FRAME)):
        for bit in (0x01, 0x80):
            damaged = bytearray(FRAME)
            damaged[i] ^= bit
            decoder = P.FrameDecoder(max_payload=1024)
            assert frames(decoder.feed(bytes(damaged))) == [], f"byte {i} bit {bit:#x}"


def test_bad_crc_is_reported_and_the_next_frame_still_decodes():
    bad = FRAME[:-1] + bytes([FRAME[-1] ^ 0x55])
    good = P.encode_frame(P.MsgType.INFO, 9)
    events = P.FrameDecoder().feed(bad + good)
    assert isinstance(events[0], P.BadFrame) and "CRC" in events[0].reason
    assert frames(events) == [P.Frame(P.MsgType.INFO, 9, b"")]


def test_truncated_frame_is_never_a_frame_until_complete():
    for cut in range(len(FRAME)):
        decoder = P.FrameDecoder()
        assert frames(decoder.feed(FRAME[:cut])) == []
        assert frames(decoder.feed(FRAME[cut:])) == [P.decode_frame(FRAME)]
    with pytest.raises(SerialProtocolError, match="truncated"):
        P.decode_frame(FRAME[:-3])


def test_byte_by_byte_feed():
    decoder = P.FrameDecoder()
    got = []
    for b in FRAME + FRAME:
        got += frames(decoder.feed(bytes([b])))
    assert len(got) == 2


def test_garbage_before_a_frame_including_false_magic():
    garbage = b"\x00\xffhello\xe2\xe2\x6d\x01\x02" + P.MAGIC + b"\x01\x01\x00\x00\x03\x00\x00\x00xyz\x00\x00\x00\x00"
    events = P.FrameDecoder().feed(garbage + FRAME)
    assert frames(events) == [P.decode_frame(FRAME)]


def test_oversize_length_does_not_wait_for_it():
    liar = P.MAGIC + struct.pack("<BBHI", 1, 2, 3, 0xFFFFFFF0)
    decoder = P.FrameDecoder(max_payload=4096)
    events = decoder.feed(liar + FRAME)
    assert isinstance(events[0], P.BadFrame) and "over the limit" in events[0].reason
    assert frames(events) == [P.decode_frame(FRAME)]
    assert decoder.pending == 0


def test_no_frame_error_names_the_problem():
    with pytest.raises(SerialProtocolError, match="no frame magic"):
        P.decode_frame(b"just text")


def test_result_with_wrong_count_is_rejected():
    payload = P.encode_result(5, np.zeros(4, np.float32))[:-4]
    with pytest.raises(SerialProtocolError, match="announces 4 outputs"):
        P.decode_result(payload)


# -- SerialLink against a fake device -------------------------------------------------------------


def test_link_info_and_run(fake_device):
    device = fake_device()
    with SerialLink(device.url, timeout=5) as link:
        assert link.info() == device.INFO
        outputs, ticks = link.run(np.full((8, 8, 3), 3, np.uint8))
    assert ticks == 1234
    assert outputs.dtype == np.float32 and np.array_equal(outputs, np.arange(10) + 3)


@pytest.mark.parametrize("fault", ["corrupt", "truncate", f"error:{int(P.ErrorCode.BAD_CRC)}"])
def test_link_retries_once_after_a_bad_reply(fake_device, fault):
    device = fake_device([fault])
    with SerialLink(device.url, timeout=2) as link:
        assert link.info().model_id == 0x1234ABCD
    assert len(device.requests) == 2
    assert device.requests[0].seq != device.requests[1].seq


def test_link_gives_up_after_two_bad_replies(fake_device):
    device = fake_device(["corrupt", "corrupt"])
    with SerialLink(device.url, timeout=2) as link, pytest.raises(SerialProtocolError, match="failed twice"):
        link.info()


def test_link_times_out_on_silence(fake_device):
    device = fake_device(["silent"])
    with SerialLink(device.url, timeout=0.5) as link, pytest.raises(DeviceTimeoutError, match="no reply"):
        link.info()


def test_link_raises_device_errors(fake_device):
    device = fake_device(["ok", f"error:{int(P.ErrorCode.MODEL_FAILED)}"])
    with SerialLink(device.url, timeout=2) as link:
        link.info()
        with pytest.raises(DeviceReportedError, match="MODEL_FAILED") as exc:
            link.run(np.zeros((8, 8, 3), np.uint8))
    assert exc.value.code == P.ErrorCode.MODEL_FAILED
    assert len(device.requests) == 2  # a model failure is not retried


def test_link_checks_the_image_before_sending(fake_device):
    device = fake_device()
    with SerialLink(device.url, timeout=2) as link:
        with pytest.raises(SerialProtocolError, match="8x8x3"):
            link.run(np.zeros((4, 4, 3), np.uint8))
        with pytest.raises(SerialProtocolError, match="uint8"):
            link.run(np.zeros((8, 8, 3), np.float32))


def test_link_bad_port_is_a_clear_error():
    with pytest.raises(SerialProtocolError, match="cannot open serial port"):
        SerialLink("/dev/does-not-exist-edge-mnv2").open()
