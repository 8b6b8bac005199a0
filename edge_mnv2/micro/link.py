"""The host end of the serial link to the firmware: requests, replies, timeouts and one retry."""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass

import numpy as np

from edge_mnv2.errors import DeviceReportedError, DeviceTimeoutError, SerialProtocolError
from edge_mnv2.micro import protocol as P


@dataclass(frozen=True)
class Calibration:
    """A CALIBRATE reply: ``ticks`` for ``iterations`` of a loop of known instruction count."""

    ticks: int
    iterations: int
    instructions_per_iteration: int

    @property
    def instructions(self) -> int:
        return self.iterations * self.instructions_per_iteration


class SerialLink:
    """Requests to the firmware over pyserial (``/dev/ttyACM0``, ``socket://127.0.0.1:PORT``, ...).

    A request whose reply is damaged (bad CRC, truncated) or that the device reports as damaged
    on arrival is sent once more; a second failure raises :class:`SerialProtocolError`, and no
    reply at all raises :class:`DeviceTimeoutError`.
    """

    def __init__(
        self,
        url: str,
        *,
        baudrate: int = 115200,
        timeout: float = 10.0,
        run_timeout: float = 300.0,
        max_payload: int = P.DEFAULT_MAX_PAYLOAD,
    ):
        self.url = url
        self.baudrate = baudrate
        self.timeout = timeout
        self.run_timeout = run_timeout
        self._decoder = P.FrameDecoder(max_payload)
        self._seq = 0
        self._serial = None
        self._info: P.DeviceInfo | None = None

    # -- connection -------------------------------------------------------------------------------
    def open(self) -> SerialLink:
        import serial

        if self._serial is None:
            try:
                self._serial = serial.serial_for_url(self.url, baudrate=self.baudrate, timeout=0.05)
            except (serial.SerialException, OSError, ValueError) as exc:
                raise SerialProtocolError(
                    f"cannot open serial port {self.url!r}: {exc} (check the port name, that the "
                    "board is connected, and that no other program holds the port)"
                ) from exc
        return self

    def close(self) -> None:
        if self._serial is not None:
            self._serial.close()
            self._serial = None

    def __enter__(self) -> SerialLink:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- raw frames -------------------------------------------------------------------------------
    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFFFF
        return self._seq

    def _drain(self) -> None:
        """Drop whatever the device sent before this request (stale replies, boot noise)."""
        self._decoder.clear()
        while self._serial.read(4096):
            pass

    def send_raw(self, data: bytes) -> None:
        """Write bytes as they are (tests use it to inject damaged frames)."""
        self.open()
        self._serial.write(data)
        self._serial.flush()

    def _read_reply(self, seq: int, expect: int, deadline: float) -> P.Frame | P.BadFrame | None:
        """The reply to ``seq`` (or an ERROR, or a bad frame), or None at the deadline."""
        bad: P.BadFrame | None = None
        while time.monotonic() < deadline:
            data = self._serial.read(max(1, self._serial.in_waiting))
            if not data:
                continue
            for event in self._decoder.feed(data):
                if isinstance(event, P.BadFrame):
                    # Usually the reply itself, damaged; give a good one a moment, then retry.
                    bad = event
                    deadline = min(deadline, time.monotonic() + 1.0)
                    continue
                if event.type == P.MsgType.ERROR:
                    code, _ = P.decode_error(event.payload)
                    # An error about our own request, or about a damaged frame (whose seq field
                    # may itself be damaged): either way it answers this request.
                    if event.seq == seq or code in P.TRANSPORT_ERRORS:
                        return event
                elif event.seq == seq and event.type == expect:
                    return event
                # Anything else is a stale reply to an earlier request: skip it.
        return bad

    def request(self, msg_type: int, payload: bytes, expect: int, timeout: float | None = None) -> P.Frame:
        """Send one request and return its reply frame (type ``expect``)."""
        self.open()
        timeout = self.timeout if timeout is None else timeout
        problem = ""
        for _attempt in range(2):
            self._drain()
            seq = self._next_seq()
            self._serial.write(P.encode_frame(msg_type, seq, payload))
            self._serial.flush()
            reply = self._read_reply(seq, expect, time.monotonic() + timeout)
            if reply is None:
                if self._decoder.pending:
                    problem = f"a truncated reply ({self._decoder.pending} bytes, then silence)"
                    continue
                raise DeviceTimeoutError(
                    f"no reply from {self.url} to {P.MsgType(msg_type).name} within {timeout:.0f} s "
                    "(is the firmware running and the port/baud rate right? reset the board)"
                )
            if isinstance(reply, P.BadFrame):
                problem = f"a damaged reply ({reply.reason})"
                continue
            if reply.type == P.MsgType.ERROR:
                code, message = P.decode_error(reply.payload)
                if code in P.TRANSPORT_ERRORS:
                    problem = f"the device received a damaged request ({message})"
                    continue
                raise P.error_from_frame(reply)
            if reply.version != P.VERSION:
                raise SerialProtocolError(
                    f"device answered with protocol version {reply.version}, host speaks {P.VERSION}: "
                    "rebuild and flash the firmware from this version of edge-mnv2"
                )
            return reply
        raise SerialProtocolError(
            f"{P.MsgType(msg_type).name} to {self.url} failed twice; last problem: {problem} "
            "(check the cable, the baud rate and that nothing else writes to the port)"
        )

    # -- requests ---------------------------------------------------------------------------------
    def info(self) -> P.DeviceInfo:
        """The firmware's INFO: protocol version, model id and name, input shape, clock."""
        reply = self.request(P.MsgType.INFO, b"", P.MsgType.INFO_REPLY)
        info = P.DeviceInfo.from_payload(reply.payload)
        if info.protocol_version != P.VERSION:
            raise SerialProtocolError(
                f"firmware speaks protocol version {info.protocol_version}, host {P.VERSION}: "
                "rebuild and flash the firmware"
            )
        self._info = info
        return info

    def run(self, image_u8: np.ndarray, timeout: float | None = None) -> tuple[np.ndarray, int]:
        """Run the model on one uint8 HWC image: (float32 outputs, ticks of preprocess + run)."""
        info = self._info or self.info()
        image = np.ascontiguousarray(image_u8)
        if image.dtype != np.uint8:
            raise SerialProtocolError(f"run() needs a uint8 image, got dtype {image.dtype}")
        if image.size != info.image_bytes:
            raise SerialProtocolError(
                f"image of shape {image.shape} has {image.size} values; the device's model wants "
                f"{info.input_h}x{info.input_w}x{info.input_c} (HWC) = {info.image_bytes}"
            )
        reply = self.request(
            P.MsgType.RUN, image.tobytes(), P.MsgType.RESULT, self.run_timeout if timeout is None else timeout
        )
        outputs, ticks = P.decode_result(reply.payload)
        if outputs.size != info.output_elems:
            raise SerialProtocolError(f"device returned {outputs.size} outputs, INFO announced {info.output_elems}")
        return outputs, ticks

    def profile(self) -> list[int] | None:
        """Ticks of each step of the last run (the model's steps, in order), or None from firmware
        that keeps no profile."""
        try:
            reply = self.request(P.MsgType.PROFILE, b"", P.MsgType.PROFILE_REPLY, self.run_timeout)
        except DeviceReportedError as exc:
            if getattr(exc, "code", None) == P.ErrorCode.UNKNOWN_TYPE:
                return None
            raise
        (count,) = struct.unpack_from("<I", reply.payload)
        if len(reply.payload) != 4 + 4 * count:
            raise SerialProtocolError(f"PROFILE reply of {len(reply.payload)} bytes does not hold {count} steps")
        return list(struct.unpack_from(f"<{count}I", reply.payload, 4))

    def calibrate(self, iterations: int) -> Calibration:
        """Time a loop of known instruction count on the device (see qemu.instructions_from_ticks)."""
        reply = self.request(
            P.MsgType.CALIBRATE, struct.pack("<I", iterations), P.MsgType.CALIBRATE_REPLY, self.run_timeout
        )
        ticks, n, per = struct.unpack("<QII", reply.payload)
        return Calibration(ticks, n, per)


__all__ = ["Calibration", "DeviceReportedError", "SerialLink"]
