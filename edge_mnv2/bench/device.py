"""Where ``edge-mnv2 bench`` measures an artifact: firmware over its serial link, a TVM build over TVM RPC."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from edge_mnv2.errors import EdgeMnv2Error
from edge_mnv2.remote.address import DeviceAddress

if TYPE_CHECKING:
    from edge_mnv2.bench.measure import BenchSettings


def is_firmware(artifact: str | Path) -> bool:
    """Whether ``artifact`` is firmware for a microcontroller (False when it does not load either)."""
    from edge_mnv2.artifact import load_artifact

    try:
        return load_artifact(artifact).is_micro
    except EdgeMnv2Error:
        return False  # bench_artifact reports the problem


def choose_device(
    artifact: str | Path,
    rpc: str | None = None,
    tracker: str | None = None,
    key: str | None = None,
    baseline: str | None = None,
    target: str | None = None,
    port: str | None = None,
) -> DeviceAddress | None:
    """The TVM RPC device to measure on, or None for firmware measured over its serial link.

    Options that belong to the other kind of device are an error rather than ignored.
    """
    from edge_mnv2.remote.address import device_address

    if target or port or is_firmware(artifact):
        if rpc or tracker or key or baseline:
            raise EdgeMnv2Error(
                "--rpc/--tracker/--key/--baseline are for TVM RPC devices; firmware is measured "
                "over its serial link (--target BOARD [--port PORT])"
            )
        return None
    return device_address(rpc, tracker, key)


def bench_on(
    artifact: str | Path,
    device: DeviceAddress | None,
    settings: BenchSettings,
    baseline: str | None = None,
    target: str | None = None,
    port: str | None = None,
    failure_report: Path | None = None,
) -> dict:
    """Measure ``artifact`` on the device :func:`choose_device` chose; its report.

    When a TVM RPC device fails and ``failure_report`` is given, a report saying what failed is written there
    before the error propagates, so a scripted run still finds a report.
    """
    if device is None:
        from edge_mnv2.micro.bench import bench_micro

        return bench_micro(artifact, target, port, settings)
    from edge_mnv2.bench.measure import bench_artifact
    from edge_mnv2.bench.report import failure_report as failed
    from edge_mnv2.bench.report import write_json
    from edge_mnv2.errors import DeviceError

    try:
        return bench_artifact(artifact, device, settings, baseline)
    except DeviceError as exc:
        if failure_report:
            write_json(failed(str(artifact), exc, device.to_dict()), failure_report)
        raise
