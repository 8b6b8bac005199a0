"""The harness recovers from a crashed server it owns, and reports a device it does not own (slow)."""

import os
import signal

import numpy as np
import pytest

from edge_mnv2.errors import DeviceError
from edge_mnv2.remote import runtime_threads
from edge_mnv2.remote.address import DeviceAddress
from edge_mnv2.remote.harness import DeviceHarness
from edge_mnv2.remote.server import LocalRPCServer
from edge_mnv2.remote.session import Timeouts

pytestmark = pytest.mark.slow
X = np.zeros((1, 3, 96, 96), np.float32)


def test_owned_server_killed_mid_run_is_restarted_and_the_step_retried(small_artifact):
    server = LocalRPCServer()
    with DeviceHarness(DeviceAddress("local"), Timeouts(connect=20, run=20), server) as device:
        device.load(small_artifact.library_path)
        before = device.step("run", lambda: device.model.run(X))
        os.killpg(server.process.pid, signal.SIGKILL)  # the device dies between two steps
        after = device.step("run after the crash", lambda: device.model.run(X))
        assert np.array_equal(before, after)
        assert device.incidents[0]["step"] == "run after the crash"
        assert device.incidents[0]["outcome"] == "recovered"
    assert not server.alive()


def test_device_not_owned_fails_with_device_and_step(small_artifact, rpc_server):
    scratch = LocalRPCServer().start()
    try:
        with DeviceHarness(DeviceAddress("rpc", scratch.host, scratch.port), Timeouts(connect=10, run=10)) as device:
            device.load(small_artifact.library_path)
            scratch.stop()
            with pytest.raises(DeviceError, match=rf"{scratch.port}.*step: run image 3"):
                device.step("run image 3", lambda: device.model.run(X))
            assert device.incidents == []
    finally:
        scratch.stop()


def test_plain_server_says_it_is_not_emulated_and_runs_kernels_on_every_core(rpc_server):
    with DeviceHarness(DeviceAddress("rpc", rpc_server.host, rpc_server.port)) as device:
        info = device.device_info()
    # TVM's own default would be half the logical CPUs on x86, whatever the cores
    assert info == {"emulated": False, "tvm_threads": runtime_threads.configure(dict(os.environ))}


@pytest.mark.parametrize(
    "log, expected",
    [
        ("RuntimeError: Child process 8985 exited unsuccessfully with error code -4", "SIGILL"),
        ("... exited unsuccessfully with error code -11", "SIGSEGV"),
        ("connection reset", ""),
    ],
)
def test_crash_signals_are_named(log, expected):
    from edge_mnv2.remote.harness import explain_crash

    text = explain_crash(log)
    assert (expected in text) if expected else text == ""
