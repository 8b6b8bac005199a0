"""Runtimes timed each in a process of its own, interleaved round by round (shared by the benchmarks).

Timed in one process, the runtimes' thread pools share it: measured here on a quiet machine, ONNX
Runtime on mobilenet_v2_0.35_96 took 0.94 ms beside a 2-thread TVM in the same process and 0.41-0.54
ms alone. So each runtime is described by a spec (built in its worker, not here), every worker waits
on its pipe between turns, and the order is shuffled every round so load hits all runtimes alike.
Separate processes are not enough by themselves: a runtime's thread pool spins for a while after a run
(ONNX Runtime's and PyTorch's OpenMP do by default), and ONNX Runtime timed right after PyTorch took
0.80 ms against 0.32 ms alone in one such run; so turns are a short pause apart.
"""

from __future__ import annotations

import multiprocessing as mp
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SETTLE_S = 0.25  # pause between turns: the last runtime's idle threads stop spinning (see above)


@dataclass(frozen=True)
class Spec:
    """A runtime to time: ``kind`` is "tvm" (``path``: a model.so), "onnxruntime" (``path``: an ONNX
    file; ``threads`` None: its default) or "torch" (``model``: a registry name, eager). ``env``: extra
    environment variables of its process (say ``TVM_BIND_THREADS``), set before the runtime starts."""

    kind: str
    path: Path | None = None
    threads: int | None = None
    model: str | None = None
    env: tuple[tuple[str, str], ...] = ()


def build(spec: Spec):
    """The callable that runs one inference of ``spec`` on a numpy input."""
    if spec.kind == "tvm":
        import tvm
        from tvm import relax

        device = tvm.cpu()
        main = relax.VirtualMachine(tvm.runtime.load_module(str(spec.path)), device)["main"]
        # The input is copied into one tensor kept for the process, as an application feeding camera
        # frames would, and ONNX Runtime reads the numpy array in place. A fresh tvm.runtime.tensor(x)
        # per run (600 KB for mobilenet_v2_1.0_224, freshly faulted in) and set_input/invoke_stateful
        # cost 0.25 ms of a 5.45 ms run measured here, 0.16 ms of it the fresh tensor.
        inputs: dict[tuple, object] = {}

        def run(x):
            key = (x.shape, str(x.dtype))
            if key not in inputs:
                inputs[key] = tvm.runtime.empty(x.shape, str(x.dtype), device)
            inputs[key].copyfrom(x)
            return main(inputs[key]).numpy()

        return run
    if spec.kind == "onnxruntime":
        from edge_mnv2.bench.peers import OnnxRuntimePeer

        return OnnxRuntimePeer(spec.path, threads=spec.threads)
    if spec.kind == "torch":
        from edge_mnv2.bench.peers import TorchPeer
        from edge_mnv2.models import get_spec
        from edge_mnv2.models.weights import build_model

        return TorchPeer(build_model(get_spec(spec.model)))
    raise ValueError(f"unknown runtime kind {spec.kind!r}: tvm, onnxruntime or torch")


def _serve(conn, spec: Spec, x: np.ndarray) -> None:
    import os

    os.environ.update(dict(spec.env))
    run = build(spec)
    for _ in range(3):  # warm up
        run(x)
    conn.send("ready")
    while (count := conn.recv()) is not None:
        samples = []
        for _ in range(count):
            start = time.perf_counter()
            run(x)
            samples.append(time.perf_counter() - start)
        conn.send(samples)


def measure(
    specs: dict[str, Spec], x: np.ndarray, rounds: int, per_round: int, settle: float = SETTLE_S
) -> dict[str, list[float]]:
    """Seconds per run of every runtime: ``rounds`` rounds, each running every runtime ``per_round``
    times in its own process, in a shuffled order, ``settle`` seconds apart."""
    context = mp.get_context("spawn")
    workers = {}
    try:
        for name, spec in specs.items():
            parent, child = context.Pipe()
            process = context.Process(target=_serve, args=(child, spec, x), daemon=True)
            process.start()
            workers[name] = (parent, process)
        for name, (conn, _) in workers.items():
            if conn.recv() != "ready":
                raise RuntimeError(f"{name} did not start")
        samples = {name: [] for name in specs}
        order = list(specs)
        rng = random.Random(0)
        for _ in range(rounds):
            rng.shuffle(order)
            for name in order:
                conn = workers[name][0]
                time.sleep(settle)
                conn.send(per_round)
                samples[name] += conn.recv()
        return samples
    finally:
        for conn, process in workers.values():
            try:
                conn.send(None)
            except OSError:
                pass
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
