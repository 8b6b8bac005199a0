"""The instruction-count part of a bench on an emulated board: TVM's build and the rivals (ONNX Runtime,
LiteRT with XNNPACK and with its built-in kernels) counted on the same emulated CPU, on the same input,
each checked against the desktop reference."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from edge_mnv2 import progress
from edge_mnv2.errors import ModelFileError
from edge_mnv2.export.complexity import onnx_macs
from edge_mnv2.remote.emulator import PEER_WHEELS, EmulatorRecipe, prepare
from edge_mnv2.remote.instructions.counting import RUNTIMES, CountedRuntime, CountSettings, count_many

# The rivals' keys in the report's ``peers`` (ONNX Runtime on the host is ``onnxruntime`` already).
PEER_KEYS = {
    "onnxruntime": "onnxruntime_emulated",
    "litert_xnnpack": "litert_xnnpack",
    "litert_builtin": "litert_builtin",
}


def _pinned(package: str) -> str:
    return next((w.split("==")[1] for w in PEER_WHEELS if w.startswith(f"{package}==")), "?")


VERSIONS = {
    "onnxruntime": _pinned("onnxruntime"),
    "litert_xnnpack": _pinned("ai-edge-litert"),
    "litert_builtin": _pinned("ai-edge-litert"),
}


def _agreement(output: np.ndarray, reference: np.ndarray) -> dict:
    output = np.asarray(output, dtype=np.float64).reshape(reference.shape)
    return {
        "max_abs_error": float(np.max(np.abs(output - reference))),
        "reference_scale": float(np.max(np.abs(reference))),
    }


def count_instructions(
    artifact, x: np.ndarray, reference: np.ndarray, peers: bool = True, settings: CountSettings = CountSettings()
) -> dict:
    """Count TVM (and, with ``peers``, the rivals) on the artifact's emulated CPU for one input ``x``
    (batch 1, NCHW float32) whose desktop reference output is ``reference``; returns the report's
    ``instructions``, ``peers`` and ``ratios`` entries."""
    recipe = EmulatorRecipe.from_table(artifact.target.name, artifact.target.emulate)
    image = prepare(recipe)
    macs = onnx_macs(artifact.onnx_path)
    jobs: dict[str, tuple[Path, np.ndarray]] = {"tvm": (artifact.library_path, x)}
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="edge-mnv2-tflite-") as tmp:
        tflite = None
        if peers:
            from edge_mnv2.export.tflite import to_tflite_input, write_tflite

            jobs["onnxruntime"] = (artifact.onnx_path, x)
            try:
                tflite = write_tflite(artifact.onnx_path, Path(tmp) / "model.tflite")
            except ModelFileError as exc:  # a user's ONNX with an operator the writer lacks: no LiteRT figures
                skipped = {
                    PEER_KEYS[k]: f"no .tflite of this model: {exc}" for k in ("litert_xnnpack", "litert_builtin")
                }
            else:
                jobs["litert_xnnpack"] = jobs["litert_builtin"] = (tflite.path, to_tflite_input(x))
        names = ", ".join(jobs)
        with progress.stage(
            f"counting instructions per inference on the emulated {recipe.cpu} ({names}; "
            f"1 thread, {settings.warmup} untimed + {settings.runs} counted runs each)"
        ):
            counted = count_many(image, jobs, settings)
        if tflite is not None:
            for key in ("litert_xnnpack", "litert_builtin"):
                c = counted[key]
                counted[key] = CountedRuntime(key, c.regions, tflite.to_onnx_layout(c.output), c.settings)
    return instruction_report(counted, macs, recipe.cpu, reference, skipped)


def instruction_report(
    counted: dict[str, CountedRuntime],
    macs: int,
    cpu: str,
    reference: np.ndarray,
    skipped: dict[str, str] | None = None,
) -> dict:
    """The report's entries from counted runtimes (``tvm`` and any of the rivals)."""
    tvm = counted["tvm"]
    instructions = dict(tvm.summary(macs), cpu=cpu, accuracy=_agreement(tvm.output, reference))
    peers: dict[str, dict] = {}
    ratios: dict[str, float] = {}
    for runtime, key in PEER_KEYS.items():
        if runtime in counted:
            c = counted[runtime]
            peers[key] = {
                "runtime": RUNTIMES[runtime],
                "version": VERSIONS[runtime],
                "where": "emulated",
                "cpu": cpu,
                "threads": 1,
                "instructions": c.summary(macs),
                "accuracy": _agreement(c.output, reference),
            }
            ratios[f"instructions_tvm_over_{key}"] = tvm.median.total / c.median.total
        elif skipped and key in skipped:
            peers[key] = {"runtime": RUNTIMES[runtime], "where": "emulated", "skipped": skipped[key]}
    return {"instructions": instructions, "peers": peers, "ratios": ratios}
