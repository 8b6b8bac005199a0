import threading
import time

import pytest

from edge_mnv2.errors import DeviceError, DeviceTimeoutError
from edge_mnv2.remote.deadline import DeadlineWorker


def test_returns_results_and_raises_errors():
    worker = DeadlineWorker("test device")
    assert worker.call("add", lambda: 1 + 1, timeout=5) == 2
    with pytest.raises(ZeroDivisionError):
        worker.call("divide", lambda: 1 / 0, timeout=5)
    worker.close()


def test_a_call_that_never_returns_times_out_naming_step_and_device():
    worker = DeadlineWorker("pi-in-a-drawer")
    never = threading.Event()
    start = time.monotonic()
    with pytest.raises(DeviceTimeoutError, match=r"pi-in-a-drawer.*upload the library"):
        worker.call("upload the library", never.wait, timeout=0.5)
    assert time.monotonic() - start < 3
    # The connection is abandoned: later steps fail at once rather than queue behind the stuck one.
    with pytest.raises(DeviceError, match="upload the library"):
        worker.call("run", lambda: 1, timeout=5)
    never.set()
