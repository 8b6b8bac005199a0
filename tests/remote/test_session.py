"""Sessions with real TVM RPC servers, and with addresses that refuse or never answer."""

import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from edge_mnv2.errors import DeviceError, DeviceTimeoutError
from edge_mnv2.remote.address import DeviceAddress
from edge_mnv2.remote.server import LocalRPCServer, free_port
from edge_mnv2.remote.session import DeviceSession, Timeouts

pytestmark = pytest.mark.slow


@pytest.fixture
def silent_listener():
    """An address that accepts TCP connections and then never says a word."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    held = []
    stop = threading.Event()

    def accept():
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield sock.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    sock.close()


def test_silent_address_times_out(silent_listener):
    start = time.monotonic()
    session = DeviceSession(DeviceAddress("rpc", "127.0.0.1", silent_listener), Timeouts(connect=2))
    with pytest.raises(DeviceTimeoutError, match=rf"127.0.0.1:{silent_listener}.*connect"):
        session.connect()
    assert time.monotonic() - start < 10


def test_refused_address_fails_fast():
    port = free_port()
    start = time.monotonic()
    with pytest.raises(DeviceError, match=rf"cannot connect to RPC server 127.0.0.1:{port}"):
        DeviceSession(DeviceAddress("rpc", "127.0.0.1", port), Timeouts(connect=2)).connect()
    assert time.monotonic() - start < 15


def test_run_on_real_server(rpc_server, small_artifact):
    session = DeviceSession(DeviceAddress("rpc", rpc_server.host, rpc_server.port)).connect()
    try:
        model = session.load_model(Path(small_artifact.library_path))
        out = model.run(np.zeros((1, 3, 96, 96), np.float32))
        assert out.shape == (1, 1000) and np.isfinite(out).all()
        samples = model.time(3)
        assert len(samples) == 3 and all(s > 0 for s in samples)
    finally:
        session.close()


def test_server_killed_mid_run_gives_an_error_not_a_hang(small_artifact):
    server = LocalRPCServer().start()
    try:
        session = DeviceSession(DeviceAddress("rpc", server.host, server.port), Timeouts(connect=10, run=10))
        session.connect()
        model = session.load_model(Path(small_artifact.library_path))
        model.run(np.zeros((1, 3, 96, 96), np.float32))
    finally:
        server.stop()
    start = time.monotonic()
    with pytest.raises(DeviceError):
        model.run(np.zeros((1, 3, 96, 96), np.float32))
    assert time.monotonic() - start < 30
