"""An emulated Cortex-M board: qemu-system-arm running firmware, its UART on a local TCP port.

Timing under ``-icount shift=0,align=off,sleep=off``: QEMU advances its virtual clock by exactly
2**shift = 1 ns per executed guest instruction, and never by host time. The firmware's SysTick is
a QEMU ptimer on that virtual clock, counting at the board's core clock (``clock-hz``: 25 MHz on
mps2-an385/an386, 32 MHz on mps3-an547). So one tick is ``1e9 / clock_hz`` instructions (40 on
mps2, 31.25 on mps3), and ``instructions = ticks * 1e9 / clock_hz``: a deterministic instruction
count (resolution one tick), not a cycle count of real silicon. The firmware's CALIBRATE request
times a loop of known length, which ``tests/micro`` uses to check this relation.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from edge_mnv2.errors import EmulatorError
from edge_mnv2.targets import TargetSpec

QEMU = "qemu-system-arm"
ICOUNT_SHIFT = 0
NS_PER_INSTRUCTION = 2**ICOUNT_SHIFT


def instructions_from_ticks(ticks: int, clock_hz: int) -> float:
    """Guest instructions executed in ``ticks`` SysTick ticks under ``-icount shift=0``."""
    if clock_hz <= 0:
        raise ValueError(f"clock_hz must be positive, got {clock_hz}")
    return ticks * 1e9 / (clock_hz * NS_PER_INSTRUCTION)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EmulatedBoard:
    """``with EmulatedBoard(target, elf) as board: SerialLink(board.url)``.

    Starts qemu in its own process group, waits until its UART socket accepts connections and
    stops the whole group on exit. A qemu that exits early raises :class:`EmulatorError` with
    its stderr.
    """

    def __init__(
        self,
        target: TargetSpec,
        elf: str | Path,
        *,
        port: int | None = None,
        startup_timeout: float = 20.0,
        qemu: str = QEMU,
    ):
        machine = (target.flash or {}).get("machine")
        if (target.flash or {}).get("method") != "qemu" or not machine:
            raise EmulatorError(
                f"target {target.name!r} is not an emulated board: its [flash] table needs "
                'method = "qemu" and machine = "<qemu -M name>"'
            )
        self.target = target
        self.machine = machine
        self.elf = Path(elf)
        self.port = port
        self.startup_timeout = startup_timeout
        self.qemu = qemu
        self._proc: subprocess.Popen | None = None
        self._stderr = None

    @property
    def url(self) -> str:
        """pyserial URL of the board's UART."""
        if self.port is None:
            raise EmulatorError("the emulated board is not running; use it as a context manager")
        return f"socket://127.0.0.1:{self.port}"

    def command(self, port: int) -> list[str]:
        return [
            self.qemu,
            "-M",
            self.machine,
            "-nographic",
            "-monitor",
            "none",
            "-kernel",
            str(self.elf),
            "-icount",
            f"shift={ICOUNT_SHIFT},align=off,sleep=off",
            "-serial",
            f"tcp:127.0.0.1:{port},server=on,wait=off",
        ]

    def _stderr_text(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace").strip()

    def start(self) -> EmulatedBoard:
        """Start qemu (a no-op if this board is already running) and wait for its UART."""
        if self.alive():
            return self
        if shutil.which(self.qemu) is None:
            raise EmulatorError(f"{self.qemu} is not installed (Debian: apt-get install qemu-system-arm)")
        if not self.elf.is_file():
            raise EmulatorError(f"firmware ELF {str(self.elf)!r} does not exist; build the firmware first")
        port = self.port or _free_port()
        self._stderr = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(
            self.command(port),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            start_new_session=True,
        )
        self.port = port
        deadline = time.monotonic() + self.startup_timeout
        try:  # interrupted while waiting (Ctrl-C, SIGTERM), qemu must not outlive us
            while True:
                code = self._proc.poll()
                if code is not None:
                    raise EmulatorError(
                        f"{self.qemu} -M {self.machine} exited with code "
                        f"{code}: {self._stderr_text() or '(no message)'}"
                    )
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                        return self
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise EmulatorError(
                        f"{self.qemu} did not open its UART on port {port} within {self.startup_timeout:.0f} s"
                    )
                time.sleep(0.05)
        except BaseException:
            self.stop()
            raise

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def wait(self, poll_s: float = 0.5) -> None:
        """Return when qemu exits (the firmware stopped, or qemu was killed); Ctrl-C interrupts the wait."""
        while self.alive():
            time.sleep(poll_s)

    def check(self) -> None:
        """Raise :class:`EmulatorError` (with qemu's stderr) if qemu has died."""
        if self._proc is not None and self._proc.poll() is not None:
            raise EmulatorError(
                f"{self.qemu} -M {self.machine} died with code "
                f"{self._proc.returncode}: {self._stderr_text() or '(no message)'}"
            )

    def stop(self) -> None:
        """Stop qemu and anything in its process group."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> EmulatedBoard:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
