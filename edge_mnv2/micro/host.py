"""The generated model compiled for this machine and run in-process: a quick check of the C code.

The same ``kernels.c``, ``model.c`` and ``weights.S`` the firmware builds are compiled by the host C
compiler into a shared library and called through ctypes, so code generation is tested in seconds,
without an emulator.
"""

from __future__ import annotations

import ctypes
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np

from edge_mnv2.errors import CompileError
from edge_mnv2.micro.emit import MANIFEST, InputFormat

SOURCES = ("kernels.c", "model.c", "weights.S")


class HostModel:
    """A generated model directory, built for the host and loaded."""

    def __init__(self, model_dir: Path, build_dir: Path | None = None, cc: str = "gcc"):
        self.model_dir = Path(model_dir)
        manifest = json.loads((self.model_dir / MANIFEST).read_text())
        self.input_shape = tuple(manifest["input"]["shape"])
        self.output_shape = tuple(manifest["output"]["shape"])
        self.input_format = InputFormat(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in manifest["input_format"].items()}
        )
        build_dir = Path(build_dir or self.model_dir / "host-build")
        build_dir.mkdir(parents=True, exist_ok=True)
        self.library = build_dir / "libmodel.so"
        if shutil.which(cc) is None:
            raise CompileError(f"the host C compiler {cc!r} is not installed; run `make setup`")
        sources: list[str] = list(SOURCES)
        if manifest.get("runtime") == "mnv2_nn":  # an int8 model with its copy of the kernel library
            sources = sorted(p.name for p in self.model_dir.glob("*.c")) + ["weights.S"]
        # -ffp-contract=off: no fused multiply-adds, so results round like TVM's LLVM build on the host
        cmd = [cc, "-O2", "-shared", "-fPIC", "-ffp-contract=off", "-o", str(self.library), *sources, "-lm"]
        proc = subprocess.run(cmd, cwd=self.model_dir, capture_output=True, text=True)
        if proc.returncode != 0:
            raise CompileError(
                f"the host C compiler failed on the generated model: {(proc.stderr.strip().splitlines() or ['?'])[0]}"
            )
        self._lib = ctypes.CDLL(str(self.library))
        self._lib.model_run.restype = ctypes.c_int32
        self._lib.model_run.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        self._lib.model_preprocess_u8.argtypes = [ctypes.c_void_p, ctypes.c_void_p]

    def run(self, x: np.ndarray) -> np.ndarray:
        """The model's output for one float32 input of the model's input shape."""
        x = np.ascontiguousarray(x, dtype=np.float32).reshape(self.input_shape)
        out = np.empty(self.output_shape, np.float32)
        status = self._lib.model_run(x.ctypes.data, out.ctypes.data)
        if status != 0:
            raise CompileError(f"model_run returned {status}")
        return out

    def preprocess(self, image_hwc_uint8: np.ndarray) -> np.ndarray:
        """The firmware's uint8 HWC -> float input conversion, run from the generated C."""
        img = np.ascontiguousarray(image_hwc_uint8, dtype=np.uint8)
        x = np.empty(self.input_shape, np.float32)
        self._lib.model_preprocess_u8(img.ctypes.data, x.ctypes.data)
        return x

    def run_image(self, image_hwc_uint8: np.ndarray) -> np.ndarray:
        return self.run(self.preprocess(image_hwc_uint8))
