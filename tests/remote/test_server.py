import os

import pytest

from edge_mnv2.remote.server import LocalRPCServer, port_open

pytestmark = pytest.mark.slow


def test_server_starts_and_stops_its_whole_process_group():
    server = LocalRPCServer().start()
    try:
        assert server.alive()
        assert port_open(server.host, server.port)
        pgid = server.process.pid
    finally:
        server.stop()
    assert not server.alive()
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)
    assert not port_open(server.host, server.port)
