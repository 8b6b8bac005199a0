"""Deadlines for calls that may block forever (a device that accepts a connection and then goes silent).

TVM's RPC calls have no client-side timeout: ``rpc.connect`` to a peer that accepts but never answers
blocks for good. Every remote call therefore runs on one daemon worker thread and the caller waits
with a time limit; a worker stuck past its deadline is abandoned (it cannot block process exit).
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Callable, TypeVar

from edge_mnv2.errors import DeviceError, DeviceTimeoutError

T = TypeVar("T")


class DeadlineWorker:
    """Runs calls one at a time on a daemon thread; :meth:`call` gives up after ``timeout`` seconds."""

    def __init__(self, device: str):
        self.device = device
        self._jobs: queue.Queue = queue.Queue()
        self._broken: str | None = None
        self._thread = threading.Thread(target=self._loop, name=f"rpc-{device}", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, future = job
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn())
                except BaseException as exc:  # handed to the caller
                    future.set_exception(exc)

    def call(self, step: str, fn: Callable[[], T], timeout: float) -> T:
        """Run ``fn`` on the worker; raise :class:`DeviceTimeoutError` naming the step if it is late."""
        if self._broken:
            raise DeviceError(
                f"device {self.device}: cannot {step}, an earlier step ({self._broken}) "
                "timed out and the connection was abandoned"
            )
        future: Future = Future()
        self._jobs.put((fn, future))
        try:
            return future.result(timeout=timeout)
        except FutureTimeout:
            self._broken = step
            raise DeviceTimeoutError(
                f"device {self.device} did not answer within {timeout:g} s while trying "
                f"to {step}; check that it is up, or raise --timeout"
            ) from None

    def close(self) -> None:
        """Let the worker end once its current call (if any) returns."""
        self._jobs.put(None)
