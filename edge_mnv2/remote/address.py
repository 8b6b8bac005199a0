"""Where a device is: the embedded local server, a direct RPC address, or a tracker and key."""

from __future__ import annotations

from dataclasses import dataclass

from edge_mnv2.errors import DeviceError


@dataclass(frozen=True)
class DeviceAddress:
    """How to reach a device. ``kind``: ``local`` or ``emulated`` (a server bench starts here), ``rpc``
    (an address) or ``tracker`` (a key at a tracker)."""

    kind: str
    host: str = "127.0.0.1"
    port: int = 0
    key: str = ""

    def describe(self) -> str:
        if self.kind == "tracker":
            return f"key {self.key!r} via tracker {self.host}:{self.port}"
        if self.kind == "local":
            return f"local RPC server {self.host}:{self.port}" if self.port else "local RPC server"
        if self.kind == "emulated":
            where = f" on {self.host}:{self.port}" if self.port else ""
            return f"emulated {self.key or 'device'}{where}"
        return f"RPC server {self.host}:{self.port}"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "host": self.host, "port": self.port, "key": self.key or None}


def parse_host_port(text: str, option: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (IPv6 as ``[::1]:PORT``), with an error naming the option on bad input."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise DeviceError(f"{option} {text!r} is not HOST:PORT (for example 127.0.0.1:9190)")
    return host, int(port)


def device_address(rpc: str | None = None, tracker: str | None = None, key: str | None = None) -> DeviceAddress:
    """The device the CLI options name; neither ``rpc`` nor ``tracker`` means the embedded local server."""
    if rpc and tracker:
        raise DeviceError("give either --rpc HOST:PORT or --tracker HOST:PORT --key KEY, not both")
    if rpc:
        if key:
            raise DeviceError("--key goes with --tracker; a direct --rpc address needs no key")
        host, port = parse_host_port(rpc, "--rpc")
        return DeviceAddress("rpc", host, port)
    if tracker:
        if not key:
            raise DeviceError("--tracker needs --key KEY: the key the device registered with (e.g. rpi4b)")
        host, port = parse_host_port(tracker, "--tracker")
        return DeviceAddress("tracker", host, port, key)
    if key:
        raise DeviceError("--key needs --tracker HOST:PORT")
    return DeviceAddress("local")
