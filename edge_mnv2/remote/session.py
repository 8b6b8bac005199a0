"""Open an RPC session to a device (direct or through a tracker) and run a compiled model on it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_mnv2.errors import DeviceError
from edge_mnv2.remote.address import DeviceAddress
from edge_mnv2.remote.deadline import DeadlineWorker

# A server that has just bound its port may not be listening yet: retry refusals this long.
REFUSED_RETRY_S = 5.0


@dataclass(frozen=True)
class Timeouts:
    """Seconds allowed for each kind of remote step."""

    connect: float = 30.0
    upload: float = 300.0
    run: float = 120.0
    session: float = 3600.0  # the server ends a session that outlives this

    @classmethod
    def scaled(cls, base: float) -> "Timeouts":
        """Timeouts from one ``--timeout`` value (the run limit); the others keep their proportions."""
        return cls(connect=min(base, 30.0), upload=max(base, 60.0) * 2.5, run=base, session=max(3600.0, base * 30))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1].strip() if lines else type(exc).__name__


class DeviceSession:
    """A connected device: uploads libraries and builds remote VMs, every call under a deadline."""

    def __init__(self, address: DeviceAddress, timeouts: Timeouts = Timeouts()):
        self.address = address
        self.timeouts = timeouts
        self.worker = DeadlineWorker(address.describe())
        self.remote = None
        self.device_kind = "cpu"

    def connect(self) -> "DeviceSession":
        from tvm import rpc

        a = self.address
        if a.kind == "tracker":

            def opener():
                tracker = rpc.connect_tracker(a.host, a.port)
                return tracker.request(a.key, priority=1, session_timeout=int(self.timeouts.session), max_retry=3)
        else:

            def opener():
                return rpc.connect(a.host, a.port, session_timeout=int(self.timeouts.session))

        deadline = time.monotonic() + REFUSED_RETRY_S
        while True:
            try:
                self.remote = self.worker.call("connect", opener, self.timeouts.connect)
                return self
            except DeviceError:
                raise
            except Exception as exc:  # TVM raises its own error types for a refused connection
                message = _first_line(exc)
                refused = "failed" in message.lower() or "refused" in message.lower()
                if refused and time.monotonic() < deadline:
                    time.sleep(0.2)
                    continue
                raise DeviceError(
                    f"cannot connect to {a.describe()}: {message}; check the address and that "
                    "TVM's RPC server (or tracker) runs there"
                ) from exc

    def call(self, step: str, fn, timeout: float):
        """Run ``fn`` against the device with a deadline; device-side failures become DeviceError."""
        try:
            return self.worker.call(step, fn, timeout)
        except DeviceError:
            raise
        except Exception as exc:
            raise DeviceError(f"device {self.address.describe()} failed to {step}: {_first_line(exc)}") from exc

    def load_model(self, library: Path, device_kind: str = "cpu", remote_name: str | None = None) -> "RemoteModel":
        """Upload a compiled library (as ``remote_name``, default its own name) and make a Relax VM for it
        on the device. Two models in one session need two names: the device's loader would hand back
        the first library for a second file at the same path."""
        from tvm import relax

        self.device_kind = device_kind
        remote = self.remote
        remote_name = remote_name or library.name
        self.call(f"upload {library.name}", lambda: remote.upload(str(library), remote_name), self.timeouts.upload)

        def make_vm():
            lib = remote.load_module(remote_name)
            dev = remote.device(device_kind, 0)
            return relax.VirtualMachine(lib, dev), dev

        vm, dev = self.call(f"load {library.name}", make_vm, self.timeouts.upload)
        return RemoteModel(self, vm, dev)

    def close(self) -> None:
        self.remote = None
        self.worker.close()


class RemoteModel:
    """A model loaded on a device: run one input, or time repeated runs."""

    def __init__(self, session: DeviceSession, vm, dev):
        self.session, self.vm, self.dev = session, vm, dev
        self._timer = None

    def set_input(self, x: np.ndarray) -> None:
        import tvm

        vm, dev = self.vm, self.dev
        self.session.call(
            "send the input", lambda: vm.set_input("main", tvm.runtime.tensor(x, dev)), self.session.timeouts.run
        )

    def run(self, x: np.ndarray) -> np.ndarray:
        """The model's output for one input (batch 1), computed on the device."""
        self.set_input(x)
        vm = self.vm

        def invoke():
            vm.invoke_stateful("main")
            return vm.get_outputs("main").numpy()

        return self.session.call("run the model", invoke, self.session.timeouts.run)

    def time(self, repeat: int, number: int = 1) -> list[float]:
        """``repeat`` timings in seconds of the current input, each the mean of ``number`` runs."""
        vm, dev = self.vm, self.dev

        def measure():
            timer = vm.time_evaluator("invoke_stateful", dev, number=number, repeat=repeat, min_repeat_ms=0)
            return list(timer("main").results)

        return self.session.call("time the model", measure, self.session.timeouts.run * max(1, repeat * number))
