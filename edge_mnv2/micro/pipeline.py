"""``edge-mnv2 compile MODEL --target <board>``: generated C, a firmware project and its built image.

The artifact folder holds ``model.onnx``, ``model/`` (the generated sources, see
:mod:`edge_mnv2.micro.emit`), ``firmware/`` (a self-contained project, rebuildable with ``make``),
``firmware.elf``/``firmware.bin``, and ``artifact.json`` with the memory report.
"""

from __future__ import annotations

import platform
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from edge_mnv2 import __version__, progress
from edge_mnv2.artifact import ONNX_FILE, SCHEMA_VERSION, staged_output, write_metadata
from edge_mnv2.models.weights import file_sha256
from edge_mnv2.targets import TargetSpec

MODEL_DIR = "model"
PROJECT_DIR = "firmware"


def compile_micro(
    model_or_onnx: str | Path,
    target: TargetSpec,
    output_dir: Path,
    checkpoint=None,
    seed: int = 0,
    quantize: str | None = None,
    calibration: str | None = None,
):
    """Compile for a microcontroller board; returns the loaded artifact."""
    import onnx
    import tvm

    from edge_mnv2.artifact import load_artifact
    from edge_mnv2.compile.frontend import log_name, stage_onnx, tensor_info
    from edge_mnv2.export import read_metadata
    from edge_mnv2.micro.board import board_config
    from edge_mnv2.micro.codegen import generate_model_sources
    from edge_mnv2.micro.firmware import build_firmware
    from edge_mnv2.micro.memory import check_fits, memory_report

    board = board_config(target)  # a bad board file fails before any work
    started = time.perf_counter()
    with staged_output(output_dir) as staging:
        onnx_path, proto = stage_onnx(model_or_onnx, staging, checkpoint, seed)
        model_meta = read_metadata(proto)
        name = log_name(proto, model_or_onnx)
        input_info = tensor_info(proto.graph.input[0], Path(model_or_onnx))
        quantization, kernels = None, None
        if quantize:
            from edge_mnv2.micro.codegen import generate_int8_sources
            from edge_mnv2.quantize import quantized_module

            shape = tuple(input_info["shape"])
            _, quantization, quantized = quantized_module(model_meta, quantize, calibration, shape)
            sources, kernels = generate_int8_sources(
                quantized, shape, name, staging / MODEL_DIR, model_meta.get("preprocessing"), board.gcc_flags()
            )
            quantization["kernels"] = f"micro-{kernels['implementation']}"
        else:
            sources = generate_model_sources(proto, name, staging / MODEL_DIR, model_meta.get("preprocessing"))
        check_fits(sources, board, name)
        with progress.stage(f"building firmware for {board.name} ({board.cpu}, arm-none-eabi-gcc)"):
            build = build_firmware(staging / MODEL_DIR, target, staging / PROJECT_DIR)
        for built in (build.elf, build.bin):
            shutil.copyfile(built, staging / built.name)
        report = memory_report(sources, build, savings=kernels["savings"] if kernels else None)
        for line in report.lines():
            print(f"  {line}", file=sys.stderr, flush=True)
        metadata = {
            "schema": SCHEMA_VERSION,
            "kind": "micro",
            "model": model_meta or {"model": name, "source": str(model_or_onnx)},
            "input": input_info,
            "quantization": quantization,
            "output": tensor_info(proto.graph.output[0], Path(model_or_onnx)),
            "preprocessing": model_meta.get("preprocessing"),
            "tuning": None,
            "target": {
                "name": target.name,
                "tvm": target.resolved_tvm(),
                "device": target.device,
                "micro": target.micro,
                "flash": target.flash,
            },
            "micro": {
                **sources.to_dict(),
                "directory": MODEL_DIR,
                "project": PROJECT_DIR,
                "memory": report.to_dict(),
                "runtime": "mnv2_nn" if kernels else "tvm",
                **({"implementation": kernels["implementation"], "macs": kernels["macs"]} if kernels else {}),
            },
            "files": {
                "firmware": {"path": build.elf.name, "sha256": file_sha256(staging / build.elf.name)},
                "image": {"path": build.bin.name, "sha256": file_sha256(staging / build.bin.name)},
                "weights": {
                    "path": f"{MODEL_DIR}/weights.bin",
                    "sha256": file_sha256(staging / MODEL_DIR / "weights.bin"),
                },
                "onnx": {"path": ONNX_FILE, "sha256": file_sha256(onnx_path)},
            },
            "versions": {
                "tvm": tvm.__version__,
                "edge_mnv2": __version__,
                "onnx": onnx.__version__,
                "python": platform.python_version(),
                "gcc": _arm_gcc_version(),
            },
            "build": {
                "host": platform.node(),
                "machine": platform.machine(),
                "seconds": round(time.perf_counter() - started, 2),
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            },
        }
        write_metadata(staging, metadata)
    return load_artifact(output_dir)


def _arm_gcc_version() -> str | None:
    import subprocess

    try:
        out = subprocess.run(["arm-none-eabi-gcc", "-dumpversion"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None
