"""Fixtures for the microcontroller tests: toy firmware builds, and fake devices."""

from __future__ import annotations

import pytest

from edge_mnv2.targets import load_target

from micro_helpers import TOY_MODEL, FakeDevice


@pytest.fixture(scope="session")
def toy_firmware(tmp_path_factory):
    """build(target_name) -> FirmwareBuild of the toy model, built once per target per session."""
    from edge_mnv2.micro.firmware import build_firmware

    cache: dict[str, object] = {}
    root = tmp_path_factory.mktemp("firmware")

    def build(name: str):
        if name not in cache:
            cache[name] = build_firmware(TOY_MODEL, load_target(name), root / name)
        return cache[name]

    return build


@pytest.fixture
def fake_device():
    devices = []

    def make(script=()):
        device = FakeDevice(script)
        devices.append(device)
        return device

    yield make
    for device in devices:
        device.close()
