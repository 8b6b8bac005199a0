"""Shared fixtures: a small compiled model, and real TVM RPC servers and trackers on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from edge_mnv2.remote.server import LocalRPCServer, free_port

SMALL_MODEL = "mobilenet_v2_0.35_96"


@pytest.fixture(scope="session")
def small_artifact(tmp_path_factory):
    """mobilenet_v2_0.35_96 (seeded random weights) compiled for the host, built once per session."""
    from edge_mnv2.compile import compile_model

    return compile_model(SMALL_MODEL, "host", tmp_path_factory.mktemp("artifacts") / "small")


@pytest.fixture(scope="session")
def rpc_server():
    """A TVM RPC server on 127.0.0.1, shared by the session's tests."""
    with LocalRPCServer() as server:
        yield server


@pytest.fixture(scope="session")
def rpc_tracker():
    """TVM's RPC tracker on 127.0.0.1, with one local server registered under the key ``host``."""
    from tvm import rpc

    port = free_port()
    tracker = subprocess.Popen([sys.executable, "-m", "tvm.exec.rpc_tracker", "--host", "127.0.0.1",
                                "--port", str(port), "--port-end", str(port + 1)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    server = LocalRPCServer(tracker=("127.0.0.1", port), key="host")
    try:
        server.start()
        deadline = time.monotonic() + 60
        while True:
            try:
                if "host" in rpc.connect_tracker("127.0.0.1", port).summary()["queue_info"]:
                    break
            except Exception:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the RPC server did not register with the tracker in 60 s")
            time.sleep(0.5)
        yield ("127.0.0.1", port)
    finally:
        server.stop()
        try:
            os.killpg(tracker.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        tracker.wait()


TRAINED_MODEL = "mobilenet_v2_0.35_96.shapes"


@pytest.fixture(scope="session")
def trained_artifact(tmp_path_factory):
    """The shipped trained model (shapes, 10 classes) compiled for the host, built once per session."""
    from edge_mnv2.compile import compile_model

    return compile_model(TRAINED_MODEL, "host", tmp_path_factory.mktemp("artifacts") / "trained")
