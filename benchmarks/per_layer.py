"""Benchmark (run by hand): a TVM build against ONNX Runtime layer by layer, to see where the time goes.

    .venv/bin/python benchmarks/per_layer.py ARTIFACT [--turns 8] [--per-turn 5] [-o per_layer.md]

ARTIFACT is a host build (``edge-mnv2 compile --exec-mode bytecode -o``: the hook below needs the VM's
interpreter), NCHW or NHWC. Each convolution and the classifier
are timed in both runtimes inside whole-model runs: TVM's kernels through the Relax VM's instrument hook,
ONNX Runtime's nodes through its profiler, on the build's own ONNX file, both on TVM's thread count
(``runtime_threads``). Both run in this process, taking turns of a few runs back to back (as
``tvm_vs_ort.py`` times them), the turns a quarter second apart (a thread pool spins for a while after
a run, see ``isolated.py``). The layers are paired in execution order and checked by output shape.
Prints every layer's medians and ratio, then totals by kind (stem, depthwise, depthwise with stride 2,
pointwise, classifier). Both hooks cost a few microseconds a layer, so the totals run above a plain
run's time.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from edge_mnv2.bench.layer_profile import (  # noqa: E402,F401
    KINDS,
    TIMED_OPS,
    onnx_layers,
    ort_layer_times,
    output_shape,
    spatial,
    tvm_layer_times,
)

from isolated import SETTLE_S  # noqa: E402
from table_output import emit  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifact", type=Path, help="a host build folder (edge-mnv2 compile -o)")
    parser.add_argument("--turns", type=int, default=8, help="turns of each runtime")
    parser.add_argument("--per-turn", type=int, default=5, help="runs back to back in a turn")
    parser.add_argument("-o", "--output", type=Path, help="also write the Markdown table here")
    args = parser.parse_args()
    if args.turns < 1 or args.per_turn < 1:
        parser.error(f"--turns and --per-turn must be at least 1, got {args.turns} and {args.per_turn}")

    from edge_mnv2.remote import runtime_threads

    threads = runtime_threads.configure()  # before TVM's thread pool starts in this process
    from edge_mnv2.artifact import load_artifact
    from edge_mnv2.errors import EdgeMnv2Error

    try:
        artifact = load_artifact(args.artifact)
    except EdgeMnv2Error as exc:
        parser.error(str(exc))
    if artifact.target_name != "host":
        parser.error(
            f"{args.artifact} was built for {artifact.target_name!r}; per_layer.py runs builds on "
            "this machine: compile with --target host"
        )
    if artifact.metadata.get("target", {}).get("exec_mode") == "compiled":
        parser.error(
            f"{args.artifact} runs a compiled VM (exec_mode), which calls no instrument hook between "
            "kernels: compile it with --exec-mode bytecode to time it layer by layer"
        )
    x = np.random.default_rng(0).random(artifact.input_shape, dtype=np.float32)
    kinds = onnx_layers(artifact.onnx_path)
    tvm_run = tvm_layer_times(artifact.library_path, x)
    with tempfile.TemporaryDirectory() as tmp:
        ort_run, ort_read = ort_layer_times(artifact.onnx_path, x, Path(tmp), args.turns * args.per_turn, threads)
        tvm_runs = []
        for turn in range(1 + args.turns):  # the first turn warms up
            time.sleep(SETTLE_S)
            calls = [tvm_run() for _ in range(args.per_turn)]
            if turn:
                tvm_runs += calls
            time.sleep(SETTLE_S)
            for _ in range(args.per_turn):
                ort_run()
        ort_runs = ort_read(args.per_turn)
    layers = len(kinds)
    if len(tvm_runs[0]) != layers or len(ort_runs[0]) != layers:
        print(
            f"could not pair the layers: the ONNX model has {layers}, TVM ran {len(tvm_runs[0])} kernels "
            f"and ONNX Runtime {len(ort_runs[0])} nodes",
            file=sys.stderr,
        )
        return 2
    meta = artifact.metadata
    # a tuned build computes in its log's layout, one without a log in the default rules' (older: NCHW)
    layout = (meta.get("tuning") or {}).get("layout") or (meta.get("schedules") or {}).get("layout") or "NCHW"
    pairs = [(t[1], o[1]) for t, o in zip(tvm_runs[0], ort_runs[0])]
    if any(spatial(t, layout) != spatial(o, "NCHW") for t, o in pairs):
        print(f"layers out of step: output shapes (TVM, ONNX Runtime) {pairs}", file=sys.stderr)
        return 2
    tvm_ms = np.median([[c[2] for c in run] for run in tvm_runs], axis=0) * 1e3
    ort_ms = np.median([[c[2] for c in run] for run in ort_runs], axis=0) * 1e3
    lines = [
        f"{artifact.model_name or args.artifact}: per-layer medians of {args.turns} turns x "
        f"{args.per_turn} runs each (ms), TVM ({layout}) and ONNX Runtime on {threads} threads",
        "",
        "| # | kind | TVM kernel | output | TVM | ORT | TVM / ORT |",
        "|---|---|---|---|---|---|---|",
    ]
    for i, (kind, call) in enumerate(zip(kinds, tvm_runs[0])):
        lines.append(
            f"| {i} | {kind} | `{call[0]}` | {'x'.join(map(str, call[1]))} | {tvm_ms[i]:.3f} | "
            f"{ort_ms[i]:.3f} | {tvm_ms[i] / ort_ms[i]:.2f} |"
        )
    lines += ["", "| kind | layers | TVM | ORT | TVM - ORT | TVM / ORT |", "|---|---|---|---|---|---|"]
    for kind in (*KINDS, "all"):
        pick = [i for i, k in enumerate(kinds) if k == kind or kind == "all"]
        if pick:
            t, o = tvm_ms[pick].sum(), ort_ms[pick].sum()
            lines.append(f"| {kind} | {len(pick)} | {t:.3f} | {o:.3f} | {t - o:+.3f} | {t / o:.2f} |")
    emit(lines, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
