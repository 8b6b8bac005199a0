"""``edge-mnv2 bench ARTIFACT --target BOARD [--port PORT]``: firmware measured over its serial link.

uint8 images go to the board, outputs and tick counts come back. Accuracy is measured against the
desktop PyTorch reference on the same images (preprocessed exactly as the firmware does) and
against the same generated C run on the host ("TVM on the host"); the report has the keys of the RPC
bench (``latency_ms``, ``accuracy``, ``status`` ...) plus ``cycles``, ``instructions`` (emulated
boards, deterministic under ``-icount``) and ``memory``.
"""

from __future__ import annotations

import contextlib
import json
import platform
from datetime import datetime, timezone

import numpy as np

from edge_mnv2 import __version__, progress
from edge_mnv2.artifact import Artifact, load_artifact
from edge_mnv2.bench.measure import TASK_SETS, BenchSettings, evaluation_images, reference_model, task_metrics
from edge_mnv2.bench.metrics import latency_stats, output_agreement, topk_accuracy
from edge_mnv2.errors import ArtifactError, DeviceError
from edge_mnv2.micro.emit import MANIFEST, InputFormat
from edge_mnv2.targets import TargetSpec, load_target

MICRO_IMAGES = 100  # default images for a serial bench: each costs seconds over an emulated UART


def _input_format(artifact: Artifact) -> InputFormat:
    manifest = _manifest(artifact)
    return InputFormat(**{k: tuple(v) if isinstance(v, list) else v for k, v in manifest["input_format"].items()})


@contextlib.contextmanager
def _board_link(artifact: Artifact, target: TargetSpec, port: str | None, timeout: float):
    """A SerialLink to the board: the given port, or a fresh emulator for an emulated board."""
    from edge_mnv2.micro.board import board_config
    from edge_mnv2.micro.link import SerialLink
    from edge_mnv2.micro.qemu import EmulatedBoard

    board = board_config(target)
    if port is None and board.emulated:
        with progress.stage(f"starting qemu-system-arm -M {board.machine} with {artifact.firmware_path.name}"):
            emulator = EmulatedBoard(target, artifact.firmware_path).start()
        try:
            with SerialLink(emulator.url, baudrate=board.baud, run_timeout=timeout) as link:
                yield (
                    link,
                    {
                        "kind": "emulated",
                        "emulated": True,
                        "emulator": f"qemu-system-arm -M {board.machine} -icount shift=0",
                        "url": emulator.url,
                        "cpu": board.cpu,
                        "key": board.name,
                    },
                )
        finally:
            emulator.stop()
        return
    port = port or board.port
    if not port:
        raise DeviceError(
            f"no serial port for {board.name}: give --port (e.g. /dev/ttyACM0 or "
            "socket://HOST:PORT), or set port in the target's [flash] table"
        )
    with SerialLink(port, baudrate=board.baud, run_timeout=timeout) as link:
        yield link, {"kind": "serial", "emulated": board.emulated, "port": port, "cpu": board.cpu, "key": board.name}


def bench_micro(
    artifact_path,
    target: str | TargetSpec | None = None,
    port: str | None = None,
    settings: BenchSettings = BenchSettings(),
) -> dict:
    """Measure firmware on its board; returns the report."""
    from edge_mnv2.micro.host import HostModel
    from edge_mnv2.micro.qemu import instructions_from_ticks

    artifact = load_artifact(artifact_path)
    artifact.verify()
    if not artifact.is_micro:
        raise ArtifactError(f"artifact {str(artifact.directory)!r} is not firmware; bench it without --target")
    target_spec = target if isinstance(target, TargetSpec) else load_target(target or artifact.target_name)
    if target_spec.name != artifact.target_name:
        raise ArtifactError(
            f"artifact {str(artifact.directory)!r} was built for {artifact.target_name}, not "
            f"{target_spec.name}; compile it for {target_spec.name} first"
        )
    micro = artifact.micro
    images, labels, eval_data = evaluation_images(artifact, settings, MICRO_IMAGES)
    fmt = _input_format(artifact)
    inputs = fmt.apply(images)

    with progress.stage("computing the desktop reference and the host build of the same C"):
        reference_kind, torch_model = reference_model(artifact)
        if torch_model is not None:
            import torch

            with torch.inference_mode():
                reference = np.concatenate(
                    [torch_model(torch.from_numpy(inputs[i : i + 1])).numpy() for i in range(len(inputs))]
                )
        else:
            from edge_mnv2.bench.peers import OnnxRuntimePeer

            ort = OnnxRuntimePeer(artifact.onnx_path)
            reference = np.concatenate([ort(inputs[i : i + 1]) for i in range(len(inputs))])
        host = HostModel(artifact.directory / micro.directory, build_dir=_scratch_dir())
        host_outputs = np.concatenate([host.run(inputs[i : i + 1]) for i in range(len(inputs))])

    with _board_link(artifact, target_spec, port, settings.timeout) as (link, device):
        info = link.info()
        if info.model_id != micro.model_id:
            raise DeviceError(
                f"the board runs firmware for model id 0x{info.model_id:08x} ({info.model_name}), "
                f"not this artifact's 0x{micro.model_id:08x}: flash it with `edge-mnv2 flash "
                f"{artifact.directory} --target {target_spec.name}`"
            )
        outputs, ticks = [], []
        with progress.stage(f"evaluating {len(images)} images on {target_spec.name} over the serial link"):
            for i in progress.bar(range(len(images)), "images", total=len(images)):
                out, t = link.run(images[i])
                outputs.append(out.reshape(1, *artifact.output.per_item))
                ticks.append(int(t))
            step_ticks = link.profile()  # the last image's per-step ticks
        device.update(clock_hz=info.clock_hz, protocol=info.protocol_version, model_id=f"0x{info.model_id:08x}")
    outputs = np.concatenate(outputs)

    clock = info.clock_hz
    accuracy = output_agreement(outputs, reference.reshape(outputs.shape))
    accuracy.update(
        reference=reference_kind,
        data=eval_data,
        max_abs_error_vs_host=float(np.abs(outputs - host_outputs.reshape(outputs.shape)).max()),
        top1_agreement_vs_host=float((outputs.argmax(1) == host_outputs.reshape(outputs.shape).argmax(1)).mean() * 100),
    )
    task = artifact.task
    if task in TASK_SETS and labels is not None:
        accuracy["task_metrics"] = task_metrics(
            task, artifact.model_metadata, outputs, reference.reshape(outputs.shape), labels
        )
    elif labels is not None:
        accuracy.update(
            device_top1=topk_accuracy(outputs, labels, 1),
            reference_top1=topk_accuracy(reference, labels, 1),
            device_top5=topk_accuracy(outputs, labels, 5),
            reference_top5=topk_accuracy(reference, labels, 5),
        )
    from edge_mnv2.quantize import integer_reference, reference_accuracy

    int8 = integer_reference(artifact.metadata, inputs)
    if int8 is not None:
        accuracy["int8_reference"] = reference_accuracy(outputs, int8, labels)
    cycles = np.asarray(ticks, dtype=np.float64)
    report = {
        "model": artifact.model_name,
        "artifact": str(artifact.directory),
        "target": artifact.metadata["target"],
        "status": "ok",
        "device": device,
        "incidents": [],
        "input": artifact.metadata["input"],
        "latency_ms": latency_stats(list(cycles / clock)),
        "cycles": {
            "median": float(np.median(cycles)),
            "min": int(cycles.min()),
            "max": int(cycles.max()),
            "clock_hz": clock,
        },
        "accuracy": accuracy,
        "memory": micro.memory,
        "model_code": {
            k: getattr(micro, k) for k in ("kernels", "calls", "arena_bytes", "unshared_arena_bytes", "weight_bytes")
        },
        "peers": {},
        "ratios": {},
        "settings": settings.__dict__,
        "environment": {
            "host": platform.node(),
            "machine": platform.machine(),
            "edge_mnv2": __version__,
            "tvm": artifact.metadata["versions"]["tvm"],
            "gcc": artifact.metadata["versions"].get("gcc"),
        },
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if device.get("emulated"):
        instructions = [instructions_from_ticks(t, clock) for t in ticks]
        median = float(np.median(instructions))
        report["instructions"] = {
            "median": median,
            "per_inference": median,  # per_inference: the Pi's key
            "min": float(min(instructions)),
            "max": float(max(instructions)),
            "note": "qemu -icount shift=0: 1 instruction = 1 ns of virtual time; resolution one SysTick tick",
        }
        macs = micro.macs
        if macs:
            report["instructions"]["per_mac"] = round(median / macs, 4)
    if step_ticks is not None:
        report["per_layer"] = per_layer(_manifest(artifact)["steps"], step_ticks, clock, bool(device.get("emulated")))
    return report


def _manifest(artifact: Artifact) -> dict:
    return json.loads((artifact.directory / artifact.micro.directory / MANIFEST).read_text())


def per_layer(steps: list[dict], ticks: list[int], clock_hz: int, emulated: bool) -> list[dict]:
    """One entry per step of the model: its name, ticks and milliseconds, and on an emulated board its
    instructions (and per multiply-accumulate where the step has MACs)."""
    from edge_mnv2.micro.qemu import instructions_from_ticks

    if len(steps) != len(ticks):
        raise DeviceError(
            f"the board profiled {len(ticks)} steps, the artifact's model has {len(steps)}: "
            "flash the firmware of this artifact"
        )
    rows = []
    for step, t in zip(steps, ticks, strict=True):
        row = {
            "name": step.get("name", step.get("kernel")),
            "kind": step.get("kind", "kernel"),
            "ticks": int(t),
            "ms": round(t / clock_hz * 1e3, 4),
        }
        if step.get("macs"):
            row["macs"] = int(step["macs"])
        if emulated:
            row["instructions"] = instructions_from_ticks(t, clock_hz)
            if step.get("macs"):
                row["instructions_per_mac"] = round(row["instructions"] / step["macs"], 3)
        rows.append(row)
    return rows


def _scratch_dir():
    import tempfile
    from pathlib import Path

    return Path(tempfile.mkdtemp(prefix="edge-mnv2-host-"))
