"""Compile and bench every variant of a width x resolution grid on one device, resumably.

Each variant's artifact goes to ``DIR/artifacts/<variant>`` and its measured result to
``DIR/results/<variant>.json`` as soon as it is known, so an interrupted sweep continues where it
stopped: an artifact that loads, verifies and was built for the same target and quantization is
reused, and so is a result measured on the same device with the same settings.
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from edge_mnv2 import progress
from edge_mnv2.errors import EdgeMnv2Error, FirmwareTooLargeError
from edge_mnv2.remote.address import DeviceAddress

OK, DOES_NOT_FIT, FAILED = "ok", "does not fit", "failed"
RESULT_VERSION = 1


@dataclass
class VariantResult:
    """One variant of the grid on the device: its cost as the model defines it, what was measured,
    and the published accuracy of the reference checkpoint of its width and resolution."""

    variant: str
    width: float
    resolution: int
    quantize: str | None
    madds: int
    params: int
    status: str  # "ok", "does not fit" or "failed"
    latency_ms: float | None = None  # median, batch 1 (meaningless on an emulated device)
    instructions: float | None = None  # per inference, on an emulated device
    flash_bytes: int | None = None  # microcontrollers: firmware flash, or what it would need
    ram_bytes: int | None = None
    library_bytes: int | None = None  # CPU/GPU builds: the compiled library
    published_top1: float | None = None
    published_top5: float | None = None
    detail: str = ""  # why it does not fit, or what failed
    artifact: str | None = None
    device_key: str = ""  # the device and settings the result was measured with

    @property
    def measured(self) -> float | None:
        """The figure the sweep ranks by: instructions where counted, else latency."""
        return self.instructions if self.instructions is not None else self.latency_ms


@dataclass
class SweepResult:
    target: str
    device: str
    metric: str  # "instructions" or "latency_ms"
    variants: list[VariantResult]
    published_source: dict = field(default_factory=dict)
    created: str = ""
    machine: str = ""

    def pareto(self) -> list[VariantResult]:
        """Measured variants with a published accuracy that no other beats on both figures, cheapest first."""
        from edge_mnv2.sweep.pareto import pareto_front

        points = [
            v for v in self.variants if v.status == OK and v.measured is not None and v.published_top1 is not None
        ]
        return [points[i] for i in pareto_front([p.measured for p in points], [p.published_top1 for p in points])]

    def to_dict(self) -> dict:
        return {
            "target": self.target,
            "device": self.device,
            "metric": self.metric,
            "created": self.created,
            "machine": self.machine,
            "published_source": self.published_source,
            "pareto": [v.variant for v in self.pareto()],
            "variants": [asdict(v) for v in self.variants],
        }


def variant_name(width: float, resolution: int) -> str:
    """The registry name of the ImageNet classifier of this width and resolution."""
    from edge_mnv2.models import get_spec, list_models

    for name in list_models("mobilenet_v2"):
        spec = get_spec(name)
        untagged = "." not in name.rsplit("_", 1)[-1]  # not a trained variant such as ...96.shapes
        if spec.width == width and spec.resolution == resolution and spec.num_classes == 1000 and untagged:
            return name
    from edge_mnv2.models.mobilenet_v2 import RESOLUTIONS, WIDTHS

    raise EdgeMnv2Error(
        f"no MobileNetV2 of width {width:g} and resolution {resolution}: widths are "
        f"{', '.join(f'{w:g}' for w in WIDTHS)}, resolutions {', '.join(map(str, RESOLUTIONS))}"
    )


def _reusable(directory: Path, target: str, quantize: str | None):
    from edge_mnv2.artifact import load_artifact

    try:
        artifact = load_artifact(directory)
        artifact.verify()
    except EdgeMnv2Error:
        return None
    quant = artifact.quantization
    if artifact.target_name != target or (quant is not None) != bool(quantize):
        return None
    return artifact


def _measure(
    result: VariantResult,
    artifact,
    device: DeviceAddress | None,
    target: str,
    port: str | None,
    settings,
    emulated_board: bool | None,
) -> None:
    """Bench ``artifact`` into ``result`` (a real board without a port is left unmeasured)."""
    from edge_mnv2.bench.device import bench_on

    if artifact.is_micro:
        memory = artifact.micro.memory
        result.flash_bytes, result.ram_bytes = memory.get("flash_total"), memory.get("ram_total")
        if not emulated_board and port is None:
            result.detail = "real board: memory only (give --port to measure)"
            return
        report = bench_on(artifact.directory, None, settings, target=target, port=port)
    else:
        result.library_bytes = artifact.library_path.stat().st_size
        report = bench_on(artifact.directory, device, settings)
    result.latency_ms = report["latency_ms"]["median"]
    counted = report.get("instructions") or {}
    result.instructions = counted.get("per_inference", counted.get("median"))


def run_sweep(
    target: str,
    widths: list[float],
    resolutions: list[int],
    output_dir: Path,
    device: DeviceAddress | None = None,
    quantize: str | None = None,
    port: str | None = None,
    settings=None,
) -> SweepResult:
    """Compile and bench each variant; returns the results (also written as ``DIR/results/*.json``)."""
    from edge_mnv2.bench.measure import BenchSettings
    from edge_mnv2.compile.pipeline import compile_model
    from edge_mnv2.models import get_spec
    from edge_mnv2.models.catalogue import counts
    from edge_mnv2.targets import load_target

    spec = load_target(target)
    is_micro = spec.device == "micro"
    emulated_board = None
    if is_micro:
        from edge_mnv2.micro.board import board_config

        emulated_board = board_config(spec).emulated
    device = device or DeviceAddress("local")
    settings = settings or BenchSettings(images=4, warmup=3, repeat=20, rounds=4, peers=False, count_runs=1)
    device_key = json.dumps(
        {"device": device.to_dict() if not is_micro else {"port": port}, "settings": asdict(settings)}, sort_keys=True
    )
    grid = [(w, r) for w in widths for r in resolutions]
    names = [variant_name(w, r) for w, r in grid]  # every name checked before any work
    output_dir = Path(output_dir)
    (output_dir / "results").mkdir(parents=True, exist_ok=True)
    results: list[VariantResult] = []
    for (width, resolution), name in progress.bar(list(zip(grid, names)), "variants", total=len(grid)):
        label = f"{name}.{quantize}" if quantize else name
        saved = output_dir / "results" / f"{label}.json"
        artifact_dir = output_dir / "artifacts" / label
        artifact = _reusable(artifact_dir, spec.name, quantize)
        if artifact is not None and saved.is_file():
            previous = json.loads(saved.read_text())
            if previous.get("version") == RESULT_VERSION and previous["result"].get("device_key") == device_key:
                results.append(VariantResult(**previous["result"]))
                progress.note(f"{label}: measured before, reused")
                continue
        c = counts(name)
        published = get_spec(name).published
        result = VariantResult(
            variant=name,
            width=width,
            resolution=resolution,
            quantize=quantize,
            madds=c.madds,
            params=c.params,
            status=OK,
            published_top1=published.top1 if published else None,
            published_top5=published.top5 if published else None,
            artifact=str(artifact_dir),
            device_key=device_key,
        )
        try:
            if artifact is None:
                artifact = compile_model(name, target, artifact_dir, quantize=quantize)
            _measure(result, artifact, device, spec.name, port, settings, emulated_board)
        except FirmwareTooLargeError as exc:
            result.status, result.detail = DOES_NOT_FIT, str(exc)
            result.flash_bytes, result.ram_bytes = exc.needs.get("flash"), exc.needs.get("ram")
        except EdgeMnv2Error as exc:  # one variant's failure is a result; the sweep goes on
            result.status, result.detail = FAILED, str(exc).splitlines()[0]
        saved.write_text(json.dumps({"version": RESULT_VERSION, "result": asdict(result)}, indent=1) + "\n")
        results.append(result)
    from edge_mnv2.models.published import _table

    source = next(iter(_table().values()), None)
    metric = "instructions" if any(r.instructions is not None for r in results) else "latency_ms"
    return SweepResult(
        target=spec.name,
        device=_describe(device, spec, emulated_board, port),
        metric=metric,
        variants=results,
        published_source={"title": source.source, "url": source.url} if source else {},
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        machine=f"{platform.node()} ({platform.machine()})",
    )


def _describe(device: DeviceAddress, spec, emulated_board: bool | None, port: str | None) -> str:
    if spec.device == "micro":
        if emulated_board and port is None:
            return f"{spec.name}, emulated (qemu-system-arm -icount)"
        return f"{spec.name} on {port}" if port else f"{spec.name} (real board, memory only)"
    if spec.emulate and device.kind == "local":
        return f"{spec.name}, emulated (qemu-user)"
    if device.kind == "local":
        return f"this machine: {_cpu_name()}"
    return device.describe()


def _cpu_name() -> str:
    """The host CPU as /proc/cpuinfo names it, with LLVM's name for its microarchitecture."""
    from edge_mnv2.bench.measure import host_cpu

    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {host_cpu()}, {len(os.sched_getaffinity(0))} cores"
