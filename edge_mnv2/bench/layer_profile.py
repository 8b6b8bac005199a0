"""Per-layer timing: a host build's kernels beside ONNX Runtime's nodes, paired by execution order and
checked by output shape, and the bar chart ``edge-mnv2 bench --per-layer`` draws (also of a board's
per-step profile).

TVM's kernels are timed through the Relax VM's instrument hook, so the build must run the bytecode VM
(``compile --exec-mode bytecode``) in this process; ONNX Runtime's nodes through its profiler, on the
build's own ONNX file, on the same thread count. The runtimes take turns of a few runs, a quarter second
apart (a thread pool spins for a while after a run). Both hooks cost a few microseconds a layer.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np

from edge_mnv2.errors import EdgeMnv2Error

SETTLE_S = 0.25
KINDS = ("stem", "depthwise", "depthwise s2", "pointwise", "classifier")
TIMED_OPS = ("Conv", "Gemm", "MatMul", "FusedConv", "FusedGemm")


def onnx_layers(path: Path) -> list[str]:
    """The kind of each convolution or matrix product of the ONNX model, in graph order."""
    import onnx

    graph = onnx.load(str(path)).graph
    kinds = []
    for node in graph.node:
        if node.op_type in ("Gemm", "MatMul"):
            kinds.append("classifier")
        elif node.op_type == "Conv":
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            if not kinds:
                kinds.append("stem")
            elif attrs.get("group", 1) > 1:
                kinds.append("depthwise s2" if max(attrs.get("strides", [1])) > 1 else "depthwise")
            else:
                kinds.append("pointwise")
    return kinds


def tvm_layer_times(library: Path, x: np.ndarray):
    """A function running the build once and returning (kernel, output shape, seconds) per layer."""
    import tvm
    from tvm import relax

    vm = relax.VirtualMachine(tvm.runtime.load_module(str(library)), tvm.cpu())
    data = tvm.runtime.tensor(x)
    calls, started = [], [0.0]

    def instrument(func, name, before, ret, *args):
        if before:
            started[0] = time.perf_counter()
        elif "conv2d" in name or "matmul" in name or "dense" in name:
            calls.append((name, tuple(args[-1].shape), time.perf_counter() - started[0]))
        return 0  # carry on

    vm.set_instrument(instrument)

    def run():
        calls.clear()
        vm["main"](data)
        return list(calls)

    return run


def output_shape(event: dict) -> tuple[int, ...]:
    """An ONNX Runtime profile event's first output shape (from ``[{"float": [1, 32, 112, 112]}]``)."""
    (shape,) = event["args"]["output_type_shape"][0].values()
    return tuple(shape)


def spatial(shape: tuple[int, ...], layout: str) -> tuple[int, ...]:
    """What two runtimes' outputs of one layer share: (H, W) of a feature map (ONNX Runtime's blocked
    layout pads channels, 24 to 32), the whole shape of the classifier's."""
    if len(shape) != 4:
        return shape
    return shape[1:3] if layout == "NHWC" else shape[2:]


def ort_layer_times(onnx_path: Path, x: np.ndarray, profile_dir: Path, runs: int, threads: int):
    """ONNX Runtime's session on ``threads`` threads, profiling; the run function and a reader of its
    profile (the layers of each of the last ``runs`` runs, after ``warmup`` ones)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.enable_profiling = True
    options.profile_file_prefix = str(profile_dir / "ort")
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: x}

    def read(warmup: int) -> list[list[tuple[str, tuple[int, ...], float]]]:
        events = json.loads(Path(session.end_profiling()).read_text())
        nodes = [
            (e["name"].removesuffix("_kernel_time"), output_shape(e), e["dur"] / 1e6)
            for e in events
            if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["args"].get("op_name") in TIMED_OPS
        ]
        per_run = len(nodes) // (warmup + runs)
        return [nodes[i * per_run : (i + 1) * per_run] for i in range(warmup, warmup + runs)]

    return (lambda: session.run(None, feed)), read


def check_profilable(artifact) -> None:
    """Raise unless :func:`profile_layers` can time ``artifact`` (a bytecode-VM build for this machine)."""
    if artifact.target.cross_compiler or artifact.target.device != "cpu" or artifact.is_micro:
        raise EdgeMnv2Error(
            f"--per-layer times a build on this machine; {str(artifact.directory)!r} is built "
            f"for {artifact.target_name}: compile it with --target host (TVM 0.27's Relax VM has "
            "no profiler that reports kernels over RPC)"
        )
    if artifact.target.exec_mode == "compiled":
        raise EdgeMnv2Error(
            f"{str(artifact.directory)!r} runs a compiled VM, which calls no hook between kernels: "
            "compile it with --exec-mode bytecode to time it layer by layer"
        )


def profile_layers(artifact, turns: int = 5, per_turn: int = 5) -> list[dict]:
    """Median milliseconds of each layer of a host build (``artifact``) in TVM and in ONNX Runtime."""
    from edge_mnv2.remote import runtime_threads

    check_profilable(artifact)
    threads = runtime_threads.configure()
    x = np.random.default_rng(0).random(artifact.input_shape, dtype=np.float32)
    kinds = onnx_layers(artifact.onnx_path)
    tvm_run = tvm_layer_times(artifact.library_path, x)
    with tempfile.TemporaryDirectory() as tmp:
        ort_run, ort_read = ort_layer_times(artifact.onnx_path, x, Path(tmp), turns * per_turn, threads)
        tvm_runs = []
        for turn in range(1 + turns):  # the first turn warms up
            time.sleep(SETTLE_S)
            calls = [tvm_run() for _ in range(per_turn)]
            if turn:
                tvm_runs += calls
            time.sleep(SETTLE_S)
            for _ in range(per_turn):
                ort_run()
        ort_runs = ort_read(per_turn)
    if len(tvm_runs[0]) != len(kinds) or len(ort_runs[0]) != len(kinds):
        raise EdgeMnv2Error(
            f"could not pair the layers: the ONNX model has {len(kinds)}, TVM ran "
            f"{len(tvm_runs[0])} kernels and ONNX Runtime {len(ort_runs[0])} nodes"
        )
    meta = artifact.metadata
    # a tuned build computes in its log's layout, one without a log in the default rules' (older: NCHW)
    layout = (meta.get("tuning") or {}).get("layout") or (meta.get("schedules") or {}).get("layout") or "NCHW"
    pairs = [(t[1], o[1]) for t, o in zip(tvm_runs[0], ort_runs[0])]
    if any(spatial(t, layout) != spatial(o, "NCHW") for t, o in pairs):
        raise EdgeMnv2Error(f"layers out of step: output shapes (TVM, ONNX Runtime) {pairs}")
    tvm_ms = np.median([[c[2] for c in run] for run in tvm_runs], axis=0) * 1e3
    ort_ms = np.median([[c[2] for c in run] for run in ort_runs], axis=0) * 1e3
    return [
        {
            "name": f"{i} {kind}",
            "kind": kind,
            "kernel": call[0],
            "output": list(call[1]),
            "ms": round(float(tvm_ms[i]), 5),
            "onnxruntime_ms": round(float(ort_ms[i]), 5),
            "threads": threads,
            "layout": layout,
        }
        for i, (kind, call) in enumerate(zip(kinds, tvm_runs[0]))
    ]


def plot_layers(rows: list[dict], path: Path, title: str) -> Path:
    """A horizontal bar per layer: TVM's time (or instructions), and ONNX Runtime's beside it where known."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counted = "instructions" in rows[0]
    values = [r["instructions"] / 1e3 if counted else r["ms"] for r in rows]
    ort = [r.get("onnxruntime_ms") for r in rows]
    both = not counted and all(v is not None for v in ort)
    height = max(4.0, 0.22 * len(rows) + 1.5)
    fig, ax = plt.subplots(figsize=(10, height))
    y = np.arange(len(rows))
    bar = 0.4 if both else 0.8
    ax.barh(y - (bar / 2 if both else 0), values, height=bar, color="tab:blue", label="TVM")
    if both:
        ax.barh(y + bar / 2, ort, height=bar, color="tab:orange", label="ONNX Runtime")
    ax.set_yticks(y, [r["name"][:48] for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("thousands of instructions (emulated)" if counted else "milliseconds (median)")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
