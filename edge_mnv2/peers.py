"""The rivals measured beside TVM on the host: ONNX Runtime and PyTorch eager."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch


class Peer:
    """A runtime that can run one batch-1 input; :meth:`time` gives per-run seconds."""

    name = "peer"

    def __call__(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def time(self, x: np.ndarray, repeat: int) -> list[float]:
        samples = []
        for _ in range(repeat):
            start = time.perf_counter()
            self(x)
            samples.append(time.perf_counter() - start)
        return samples

    def describe(self) -> dict:
        return {}


class OnnxRuntimePeer(Peer):
    """ONNX Runtime's CPU provider on the artifact's ONNX file (``threads=None``: its default)."""

    name = "onnxruntime"

    def __init__(self, onnx_path: Path, threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.threads = threads
        self.version = ort.__version__
        self.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: x})[0]

    def describe(self) -> dict:
        return {"version": self.version, "threads": self.threads or "default"}


class TorchPeer(Peer):
    """The PyTorch module itself, eager, in inference mode."""

    name = "torch"

    def __init__(self, model: torch.nn.Module):
        self.model = model.eval()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.model(torch.from_numpy(x)).numpy()

    def describe(self) -> dict:
        return {"version": torch.__version__, "threads": torch.get_num_threads()}
