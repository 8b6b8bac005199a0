"""TVM's RPC tracker on this machine, started and stopped as a process group."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from edge_mnv2.errors import DeviceError
from edge_mnv2.remote.server import free_port


class LocalTracker:
    """``python -m tvm.exec.rpc_tracker`` on ``host:port``; devices register with it under a key."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None):
        self.host, self.port = host, port or free_port(host)
        self.process: subprocess.Popen | None = None
        self._log = tempfile.NamedTemporaryFile(prefix="edge-mnv2-tracker-", suffix=".log", delete=False)

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def start(self, timeout: float = 60.0) -> "LocalTracker":
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tvm.exec.rpc_tracker",
                "--host",
                self.host,
                "--port",
                str(self.port),
                "--port-end",
                str(self.port + 1),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        try:  # interrupted while waiting (Ctrl-C, SIGTERM), the tracker must not outlive us
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise DeviceError(
                        f"the RPC tracker on {self.host}:{self.port} exited with code "
                        f"{self.process.returncode}; is the port in use? log: {self._log.name}"
                    )
                if b"bind to" in Path(self._log.name).read_bytes():
                    return self
                time.sleep(0.1)
            raise DeviceError(f"the RPC tracker was not ready within {timeout:g} s; log: {self._log.name}")
        except BaseException:
            self.stop()
            raise

    def keys(self) -> dict:
        """The tracker's queue: registered device keys and how many are free."""
        from tvm import rpc

        return rpc.connect_tracker(self.host, self.port).summary()["queue_info"]

    def wait_for_key(self, key: str, timeout: float = 60.0) -> None:
        """Wait until a device has registered under ``key``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if key in self.keys():
                    return
            except Exception:  # not answering yet
                pass
            time.sleep(0.5)
        raise DeviceError(
            f"no device registered as {key!r} with the tracker {self.host}:{self.port} within {timeout:g} s"
        )

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()

    def __enter__(self) -> "LocalTracker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        self._log.close()
        Path(self._log.name).unlink(missing_ok=True)
