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
        """Seconds of ``repeat`` runs, after one untimed run: TVM's time_evaluator, which times the
        device, makes an untimed call before it times any, so the runtimes start each round alike."""
        self(x)
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


class TorchCudaPeer(Peer):
    """The PyTorch module eager on this machine's GPU: input copied in, output copied back, like TVM's run."""

    name = "torch-cuda"

    def __init__(self, model: torch.nn.Module, device: str = "cuda"):
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.model(torch.from_numpy(x).to(self.device)).cpu().numpy()  # .cpu() synchronises

    def time(self, x: np.ndarray, repeat: int) -> list[float]:
        """Compute only, input already on the GPU, as TVM's time_evaluator times its VM (after one
        untimed run, as it does)."""
        samples = []
        with torch.inference_mode():
            x_gpu = torch.from_numpy(x).to(self.device)
            self.model(x_gpu)
            torch.cuda.synchronize(self.device)
            for _ in range(repeat):
                start = time.perf_counter()
                self.model(x_gpu)
                torch.cuda.synchronize(self.device)
                samples.append(time.perf_counter() - start)
        return samples

    def describe(self) -> dict:
        return {"version": torch.__version__, "gpu": torch.cuda.get_device_name(self.device)}
