"""The framed serial protocol between the host and the firmware (``firmware/src/protocol.h``).

A frame is ``magic (2) | version u8 | type u8 | seq u16 | length u32 | payload | crc32 u32``,
little-endian, the CRC-32 (IEEE, as :func:`zlib.crc32`) taken over everything after the magic.
:class:`FrameDecoder` resynchronises on garbage by scanning for the magic; a frame with a bad CRC,
an oversize length or a missing tail is never returned as a frame.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from edge_mnv2.errors import DeviceReportedError, SerialProtocolError

MAGIC = b"\xe2\x6d"
VERSION = 1
HEADER = struct.Struct("<BBHI")  # version, type, seq, length (after the magic)
HEADER_BYTES = len(MAGIC) + HEADER.size
CRC_BYTES = 4
FRAME_OVERHEAD = HEADER_BYTES + CRC_BYTES
#: Host-side bound on a payload: larger lengths are garbage (a RESULT of 1000 floats is 4 KB).
DEFAULT_MAX_PAYLOAD = 1 << 20


class MsgType(IntEnum):
    """Frame types; replies have the high bit set."""

    INFO = 0x01
    RUN = 0x02
    CALIBRATE = 0x03
    PROFILE = 0x04
    INFO_REPLY = 0x81
    RESULT = 0x82
    CALIBRATE_REPLY = 0x83
    PROFILE_REPLY = 0x84
    ERROR = 0x7F


class ErrorCode(IntEnum):
    """Codes of ERROR frames."""

    BAD_CRC = 1
    FRAME_TOO_LONG = 2
    UNKNOWN_TYPE = 3
    MODEL_FAILED = 4
    BAD_VERSION = 5
    TIMEOUT = 6
    WRONG_PAYLOAD_SIZE = 7
    FAULT = 8


#: Errors that mean the request was damaged on the way: sending it again may work.
TRANSPORT_ERRORS = frozenset({ErrorCode.BAD_CRC, ErrorCode.FRAME_TOO_LONG, ErrorCode.TIMEOUT})


@dataclass(frozen=True)
class Frame:
    """One valid frame."""

    type: int
    seq: int
    payload: bytes
    version: int = VERSION


@dataclass(frozen=True)
class BadFrame:
    """Bytes that began like a frame but were not one (the decoder skipped past them)."""

    reason: str


def encode_frame(msg_type: int, seq: int, payload: bytes = b"", version: int = VERSION) -> bytes:
    """The bytes of one frame."""
    body = HEADER.pack(version, int(msg_type), seq & 0xFFFF, len(payload)) + bytes(payload)
    return MAGIC + body + struct.pack("<I", zlib.crc32(body))


class FrameDecoder:
    """Incremental decoder: :meth:`feed` bytes, get back frames and bad-frame notices.

    On a bad frame only the first magic byte is dropped and scanning resumes right after it, so a
    good frame hidden behind a damaged one is still found.
    """

    def __init__(self, max_payload: int = DEFAULT_MAX_PAYLOAD):
        self.max_payload = max_payload
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        """Bytes held back: the start of a frame still waiting for its tail."""
        return len(self._buf)

    def clear(self) -> None:
        self._buf.clear()

    def feed(self, data: bytes) -> list[Frame | BadFrame]:
        """Add received bytes; return the frames (and bad frames) now complete, in order."""
        self._buf += data
        out: list[Frame | BadFrame] = []
        buf = self._buf
        while True:
            start = buf.find(MAGIC)
            if start < 0:
                # Keep a trailing first magic byte: its partner may be in the next chunk.
                keep = 1 if buf[-1:] == MAGIC[:1] else 0
                del buf[: len(buf) - keep]
                return out
            del buf[:start]
            if len(buf) < HEADER_BYTES:
                return out
            version, msg_type, seq, length = HEADER.unpack_from(buf, len(MAGIC))
            if length > self.max_payload:
                out.append(BadFrame(f"length {length} over the limit of {self.max_payload} bytes"))
                del buf[:1]
                continue
            total = HEADER_BYTES + length + CRC_BYTES
            if len(buf) < total:
                # Garbage that looks like a header with a plausible length would hold everything
                # behind it; if a complete valid frame already follows, the head was garbage.
                later = self._later_frame(buf)
                if later is None:
                    return out
                out.append(BadFrame(f"incomplete frame of length {length} followed by a valid frame"))
                del buf[:later]
                continue
            frame = self._parse(buf, 0)
            if frame is None:
                out.append(BadFrame(f"CRC mismatch in a frame of type 0x{msg_type:02x}, seq {seq}"))
                del buf[:1]
                continue
            out.append(frame)
            del buf[:total]

    def _parse(self, buf: bytearray, at: int) -> Frame | None:
        """The complete, CRC-valid frame starting at ``buf[at]`` (magic included), if any."""
        if len(buf) - at < HEADER_BYTES:
            return None
        version, msg_type, seq, length = HEADER.unpack_from(buf, at + len(MAGIC))
        total = HEADER_BYTES + length + CRC_BYTES
        if length > self.max_payload or len(buf) - at < total:
            return None
        body = bytes(buf[at + len(MAGIC) : at + total - CRC_BYTES])
        (crc,) = struct.unpack_from("<I", buf, at + total - CRC_BYTES)
        if zlib.crc32(body) != crc:
            return None
        return Frame(msg_type, seq, body[HEADER.size :], version)

    def _later_frame(self, buf: bytearray) -> int | None:
        """Offset of the first complete valid frame after the head, if there is one."""
        at = buf.find(MAGIC, 1)
        while at >= 0:
            if self._parse(buf, at) is not None:
                return at
            at = buf.find(MAGIC, at + 1)
        return None


def decode_frame(data: bytes, max_payload: int = DEFAULT_MAX_PAYLOAD) -> Frame:
    """Exactly one frame from ``data`` (leading garbage allowed); raises if there is none."""
    decoder = FrameDecoder(max_payload)
    events = decoder.feed(data)
    frames = [e for e in events if isinstance(e, Frame)]
    if frames:
        return frames[0]
    reasons = "; ".join(e.reason for e in events) or (
        f"truncated frame ({decoder.pending} bytes, no complete frame)" if decoder.pending else "no frame magic found"
    )
    raise SerialProtocolError(f"no valid frame in {len(data)} bytes: {reasons}")


_INFO = struct.Struct("<HIHHHIIII")


@dataclass(frozen=True)
class DeviceInfo:
    """What the firmware reports about itself and its model (INFO_REPLY)."""

    protocol_version: int
    model_id: int
    input_h: int
    input_w: int
    input_c: int
    output_elems: int
    clock_hz: int
    arena_bytes: int
    max_payload: int
    model_name: str
    board: str

    @property
    def image_bytes(self) -> int:
        """Bytes of the uint8 HWC image a RUN carries."""
        return self.input_h * self.input_w * self.input_c

    @classmethod
    def from_payload(cls, payload: bytes) -> DeviceInfo:
        try:
            fields = _INFO.unpack_from(payload, 0)
            pos = _INFO.size
            name_len = payload[pos]
            name = payload[pos + 1 : pos + 1 + name_len].decode("utf-8", "replace")
            pos += 1 + name_len
            board_len = payload[pos]
            board = payload[pos + 1 : pos + 1 + board_len].decode("utf-8", "replace")
        except (struct.error, IndexError) as exc:
            raise SerialProtocolError(f"INFO reply of {len(payload)} bytes is malformed: {exc}") from exc
        return cls(*fields, model_name=name, board=board)

    def to_payload(self) -> bytes:
        name, board = self.model_name.encode()[:255], self.board.encode()[:255]
        return (
            _INFO.pack(
                self.protocol_version,
                self.model_id,
                self.input_h,
                self.input_w,
                self.input_c,
                self.output_elems,
                self.clock_hz,
                self.arena_bytes,
                self.max_payload,
            )
            + bytes([len(name)])
            + name
            + bytes([len(board)])
            + board
        )


def encode_result(ticks: int, outputs: np.ndarray) -> bytes:
    """RESULT payload: u64 ticks, u32 count, float32 outputs."""
    values = np.asarray(outputs, dtype="<f4").ravel()
    return struct.pack("<QI", ticks, values.size) + values.tobytes()


def decode_result(payload: bytes) -> tuple[np.ndarray, int]:
    """(outputs float32, ticks) from a RESULT payload."""
    if len(payload) < 12:
        raise SerialProtocolError(f"RESULT payload of {len(payload)} bytes is shorter than its header")
    ticks, count = struct.unpack_from("<QI", payload, 0)
    if len(payload) != 12 + 4 * count:
        raise SerialProtocolError(f"RESULT announces {count} outputs but carries {len(payload) - 12} bytes of them")
    return np.frombuffer(payload, dtype="<f4", count=count, offset=12).astype(np.float32), ticks


def encode_error(code: int, message: str) -> bytes:
    """ERROR payload: u16 code, u16 length, message."""
    text = message.encode()[:200]
    return struct.pack("<HH", code, len(text)) + text


def decode_error(payload: bytes) -> tuple[int, str]:
    """(code, message) from an ERROR payload."""
    if len(payload) < 4:
        return 0, "(malformed ERROR frame)"
    code, n = struct.unpack_from("<HH", payload, 0)
    return code, payload[4 : 4 + n].decode("utf-8", "replace")


def error_from_frame(frame: Frame) -> DeviceReportedError:
    """The exception for an ERROR frame, with a message that says what to do."""
    code, message = decode_error(frame.payload)
    try:
        name = ErrorCode(code).name
    except ValueError:
        name = f"code {code}"
    hints = {
        ErrorCode.MODEL_FAILED: "the generated model code returned an error; rebuild the model",
        ErrorCode.BAD_VERSION: f"host speaks protocol version {VERSION}; rebuild and flash the firmware",
        ErrorCode.WRONG_PAYLOAD_SIZE: "send an image of the size INFO reports (H x W x C uint8)",
        ErrorCode.UNKNOWN_TYPE: "the firmware is older than this host; rebuild and flash it",
        ErrorCode.FAULT: "the device crashed and halted; reset it (check stack-bytes and RAM use)",
    }
    hint = hints.get(code, "check the serial line (baud rate, cable, port) and retry")
    return DeviceReportedError(f"device error {name}: {message} ({hint})", code=code)
