"""A device for one measurement run, which never hangs and recovers from a crash where it can.

Every remote call runs under a deadline (:mod:`edge_mnv2.remote.deadline`). When the harness started
the server itself (the embedded local server or an emulated device), a failed step restarts the
server, reconnects, reloads the model and retries the step once; each such incident is recorded for
the report. A device the harness does not own (``--rpc``, ``--tracker``) fails with one clear error.
"""

from __future__ import annotations

import json
import re
import signal
import sys
from pathlib import Path
from typing import Callable, TypeVar

from edge_mnv2 import progress
from edge_mnv2.errors import DeviceError
from edge_mnv2.remote.address import DeviceAddress
from edge_mnv2.remote.server import LocalRPCServer
from edge_mnv2.remote.session import DeviceSession, RemoteModel, Timeouts

T = TypeVar("T")


_HINTS = {
    "SIGILL": "an instruction the device's CPU does not have: was the artifact compiled for this "
    "board's CPU and features?",
    "SIGSEGV": "a memory fault on the device",
    "SIGBUS": "a misaligned or invalid memory access on the device",
}


def explain_crash(server_log: str) -> str:
    """Name the signal a device worker died of (TVM's server logs ``error code -N``), with a hint."""
    match = re.search(r"error code -(\d+)", server_log)
    if not match:
        return ""
    try:
        name = signal.Signals(int(match[1])).name
    except ValueError:
        return ""
    hint = _HINTS.get(name)
    return f" (the device's worker died of {name}" + (f": {hint})" if hint else ")")


class DeviceHarness:
    """Connects to ``address`` (starting ``server`` first if given) and runs steps on a loaded model."""

    def __init__(self, address: DeviceAddress, timeouts: Timeouts = Timeouts(), server: LocalRPCServer | None = None):
        self.address, self.timeouts, self.server = address, timeouts, server
        self.session: DeviceSession | None = None
        self.model: RemoteModel | None = None  # the model under test
        self.models: dict[str, RemoteModel] = {}  # every loaded model, by name
        self.incidents: list[dict] = []
        self._libraries: dict[str, tuple[Path, str]] = {}

    @property
    def name(self) -> str:
        return self.server.describe() if self.server else self.address.describe()

    def open(self) -> "DeviceHarness":
        if self.server is not None:
            with progress.stage(f"starting the {self.server.describe()}"):
                self.server.start()
            self.address = DeviceAddress(self.address.kind, self.server.host, self.server.port, self.address.key)
        with progress.stage(f"connecting to {self.address.describe()}"):
            self.session = DeviceSession(self.address, self.timeouts).connect()
        return self

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
        if self.server is not None:
            self.server.stop()

    def __enter__(self) -> "DeviceHarness":
        try:
            return self.open()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc) -> None:
        self.close()

    def load(self, library: Path, device_kind: str = "cpu", name: str = "model") -> RemoteModel:
        """Upload and load a library; ``name`` other than "model" loads a second one beside it
        (a baseline build); all are reloaded after a restart."""
        self._libraries[name] = (library, device_kind)
        self.models[name] = self.step(f"load {library.name}", lambda: self._load(name), reload=False)
        if name == "model":
            self.model = self.models[name]
        return self.models[name]

    def _load(self, name: str) -> RemoteModel:
        library, kind = self._libraries[name]
        return self.session.load_model(library, kind, library.name if name == "model" else f"{name}-{library.name}")

    def step(self, name: str, fn: Callable[[], T], reload: bool = True) -> T:
        """Run a step; on a device failure, restart an owned server (reloading the model) and retry once."""
        try:
            return fn()
        except DeviceError as exc:
            if self.server is None:
                raise DeviceError(f"{exc} (step: {name})") from exc
            incident = {"step": name, "error": str(exc), "server_log": self.server.log_tail()}
            self.incidents.append(incident)
        print(f"  {self.name} failed to {name}; restarting it and retrying once", flush=True, file=sys.stderr)
        self.session.close()
        self.server.restart()
        self.session = DeviceSession(self.address, self.timeouts).connect()
        if reload:
            for loaded in self._libraries:
                self.models[loaded] = self._load(loaded)
            self.model = self.models.get("model")
        incident["action"] = "server restarted, step retried"
        try:
            result = fn()
        except DeviceError as exc:
            incident["retry_error"] = str(exc)
            raise DeviceError(
                f"{self.name} failed to {name} twice, also after a restart: {exc}"
                f"{explain_crash(self.server.log_tail(3))}; server log: {self.server.log_tail(3)}"
            ) from exc
        incident["outcome"] = "recovered"
        return result

    def device_info(self) -> dict:
        """What the device says about itself: the threads TVM's runtime uses there, and more from emulated
        devices."""
        remote = self.session.remote

        def query():
            try:
                info = json.loads(remote.get_function("edge_mnv2.device_info")())
            except Exception:  # no such function on a plain TVM server
                info = {}
            try:  # every TVM server has it: the threads its kernels run on
                info["tvm_threads"] = int(remote.get_function("runtime.NumThreads")())
            except Exception:
                pass
            return info

        info = self.session.call("ask what it is", query, self.timeouts.connect)
        info.setdefault("emulated", False)
        return info
