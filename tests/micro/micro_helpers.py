"""Helpers for the microcontroller tests: the toy model and its reference, and a fake device that
speaks the protocol over a local socket. (A module of its own: `conftest` names clash across folders.)"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import numpy as np

from edge_mnv2.micro import protocol as P

TOY_MODEL = Path(__file__).parent / "data" / "toy_model"
TOY_SHAPE = (8, 8, 3)
ALL_TARGETS = ["mps2-an385", "mps2-an386", "mps3-an547", "stm32f746g-disco", "nrf52840dk"]
EMULATED_TARGETS = ["mps3-an547", "mps2-an386", "mps2-an385"]


def toy_reference(image_u8: np.ndarray) -> np.ndarray:
    """What toy_model/toy.c computes, in numpy (preprocessing in float32 as the C does)."""
    w = np.fromfile(TOY_MODEL / "weights.bin", dtype="<f4").astype(np.float64)
    w1, b1 = w[: 16 * 192].reshape(16, 192), w[16 * 192 : 16 * 192 + 16]
    w2 = w[3088 : 3088 + 160].reshape(10, 16)
    b2 = w[3248:3258]
    x = (image_u8.astype(np.float32) / np.float32(255.0) - np.float32(0.5)) / np.float32(0.25)
    x = x.transpose(2, 0, 1).ravel().astype(np.float64)
    hidden = np.maximum(w1 @ x + b1, 0.0)
    return (w2 @ hidden + b2).astype(np.float32)


def toy_image(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, TOY_SHAPE, dtype=np.uint8)


class FakeDevice:
    """A TCP server answering protocol requests like the firmware, with scriptable misbehaviour.

    ``script`` is a list of actions, one per request received: "ok", "corrupt" (flip a byte of
    the reply), "silent" (no reply), "truncate" (only half the reply), "error:<code>".
    After the script runs out every request gets "ok".
    """

    INFO = P.DeviceInfo(P.VERSION, 0x1234ABCD, 8, 8, 3, 10, 25_000_000, 64, 192, "fake", "fake-board")

    def __init__(self, script=()):
        self.script = list(script)
        self.requests: list[P.Frame] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"socket://127.0.0.1:{self._server.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _reply(self, frame: P.Frame) -> bytes:
        if frame.type == P.MsgType.INFO:
            return P.encode_frame(P.MsgType.INFO_REPLY, frame.seq, self.INFO.to_payload())
        if frame.type == P.MsgType.RUN:
            outputs = np.arange(10, dtype=np.float32) + frame.payload[0]
            return P.encode_frame(P.MsgType.RESULT, frame.seq, P.encode_result(1234, outputs))
        return P.encode_frame(P.MsgType.ERROR, frame.seq, P.encode_error(P.ErrorCode.UNKNOWN_TYPE, "?"))

    def _serve(self) -> None:
        conn, _ = self._server.accept()
        decoder = P.FrameDecoder()
        with conn:
            while True:
                data = conn.recv(4096)
                if not data:
                    return
                for event in decoder.feed(data):
                    if not isinstance(event, P.Frame):
                        continue
                    self.requests.append(event)
                    action = self.script.pop(0) if self.script else "ok"
                    reply = self._reply(event)
                    if action == "corrupt":
                        reply = reply[:12] + bytes([reply[12] ^ 0xFF]) + reply[13:]
                    elif action == "truncate":
                        reply = reply[: len(reply) // 2]
                    elif action == "silent":
                        continue
                    elif action.startswith("error:"):
                        code = int(action.split(":")[1])
                        reply = P.encode_frame(P.MsgType.ERROR, event.seq, P.encode_error(code, "scripted"))
                    conn.sendall(b"\x00garbage\xe2" + reply)

    def close(self) -> None:
        self._server.close()
