"""TVM's RPC server on this machine, started and stopped as a process group we own."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from edge_mnv2.errors import DeviceError
from edge_mnv2.remote import runtime_threads

READY_TIMEOUT = 60.0


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class LocalRPCServer:
    """``python -m tvm.exec.rpc_server`` on 127.0.0.1, in its own process group.

    The server forks a worker per session and the worker holds the port, so stopping kills the
    whole group. Use as a context manager; the server is stopped however the block ends.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int | None = None,
        tracker: tuple[str, int] | None = None,
        key: str = "",
        python: str | None = None,
        env: dict[str, str] | None = None,
        ready_timeout: float = READY_TIMEOUT,
        load_libraries: tuple[str, ...] = (),
    ):
        self.host, self.port = host, port or free_port(host)
        self.tracker, self.key = tracker, key
        self.python = python or sys.executable
        self.env = env or {}
        self.ready_timeout = ready_timeout
        self.load_libraries = load_libraries
        self.process: subprocess.Popen | None = None
        self._log = tempfile.NamedTemporaryFile(prefix="edge-mnv2-rpc-", suffix=".log", delete=False)
        self._log_start = 0

    @property
    def log_path(self) -> Path:
        return Path(self._log.name)

    def command(self) -> list[str]:
        cmd = [
            self.python,
            "-m",
            "tvm.exec.rpc_server",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--port-end",
            str(self.port + 1),
        ]
        if self.tracker:
            cmd += ["--tracker", f"{self.tracker[0]}:{self.tracker[1]}", "--key", self.key]
        if self.load_libraries:
            cmd += ["--load-library", ":".join(self.load_libraries)]
        return cmd

    def describe(self) -> str:
        return f"local RPC server {self.host}:{self.port}"

    def start(self, timeout: float | None = None) -> "LocalRPCServer":
        """Start the server and wait until it accepts connections."""
        timeout = timeout or self.ready_timeout
        env = dict(os.environ)
        if self.env:  # another Python (an emulated device's): the host's PYTHONHOME must not leak in
            env.pop("PYTHONHOME", None)
        env.update(self.env, PYTHONUNBUFFERED="1")
        runtime_threads.configure(env)
        self._log.seek(0, os.SEEK_END)
        self._log_start = self._log.tell()  # after a restart, readiness is read from the new lines only
        self.process = subprocess.Popen(
            self.command(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
        )
        try:  # interrupted while waiting (Ctrl-C, SIGTERM), its process group must not outlive us
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise DeviceError(
                        f"{self.describe()} exited with code {self.process.returncode} before "
                        f"it was ready; its log: {self.log_path}"
                    )
                if self._log_says("bind to"):
                    return self
                time.sleep(0.1)
            raise DeviceError(f"{self.describe()} was not ready within {timeout:g} s; its log: {self.log_path}")
        except BaseException:
            self.stop()
            raise

    def _log_says(self, text: str) -> bool:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_start)
                return text.encode() in f.read()
        except OSError:
            return False

    def log_tail(self, lines: int = 5) -> str:
        """The last lines the server printed (for error messages)."""
        try:
            return " | ".join(self.log_path.read_text(errors="replace").strip().splitlines()[-lines:])
        except OSError:
            return ""

    def restart(self) -> "LocalRPCServer":
        """Stop and start again on the same port (after a crash, or a hang)."""
        self.stop()
        return self.start()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """Stop the server and every process it forked."""
        if self.process is None:
            return
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        try:  # the forked session worker can outlive the parent: clear the whole group
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        # Orphaned workers are reaped by init, not by us: wait (briefly) until the group is gone so
        # the port is really free when stop() returns.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(self.process.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)

    def __enter__(self) -> "LocalRPCServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        self._log.close()
        if not any(exc):
            self.log_path.unlink(missing_ok=True)
