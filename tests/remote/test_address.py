import pytest

from edge_mnv2.errors import DeviceError
from edge_mnv2.remote.address import DeviceAddress, device_address, parse_host_port


def test_default_is_local():
    assert device_address() == DeviceAddress("local")


def test_rpc_and_tracker():
    assert device_address(rpc="10.0.0.5:9090") == DeviceAddress("rpc", "10.0.0.5", 9090)
    assert device_address(tracker="[::1]:9190", key="rpi4b") == DeviceAddress("tracker", "::1", 9190, "rpi4b")


@pytest.mark.parametrize("text", ["nonsense", "host:", ":9090", "host:port", "host:70000", "host:0"])
def test_bad_host_port(text):
    with pytest.raises(DeviceError, match="HOST:PORT"):
        parse_host_port(text, "--rpc")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"rpc": "a:1", "tracker": "b:2"}, "not both"),
        ({"tracker": "b:2"}, "--key"),
        ({"key": "rpi4b"}, "--tracker"),
        ({"rpc": "a:1", "key": "rpi4b"}, "no key"),
    ],
)
def test_inconsistent_options(kwargs, message):
    with pytest.raises(DeviceError, match=message):
        device_address(**kwargs)
