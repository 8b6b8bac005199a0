"""Benchmark (run by hand): two or more TVM builds of one model, A/B in one process, run by run.

    .venv/bin/python benchmarks/ab_builds.py ARTIFACT_A ARTIFACT_B [...] [--runs 1000]

For comparing builds of the same model tuned different ways (two logs, a layout, a measurement
setting). All builds share one process and so one TVM thread pool, and take turns run by run (the order
reversed every other run), so machine load hits them alike; much finer than separate processes, which
is what comparing TVM with ONNX Runtime needs (``tvm_vs_ort.py``). Prints each build's median, 10th
percentile and minimum, and the median of the run-by-run ratios to the first build. Not a test: on a
shared machine, take the median ratio of several runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifacts", nargs="+", type=Path, help="compiled artifact folders (edge-mnv2 compile -o)")
    parser.add_argument("--runs", type=int, default=1000, help="timed runs per build")
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()
    if len(args.artifacts) < 2:
        parser.error("name two or more artifacts")

    from edge_mnv2.remote import runtime_threads

    runtime_threads.configure()  # before TVM's thread pool starts in this process
    import tvm
    from tvm import relax

    from edge_mnv2.artifact import load_artifact

    artifacts = [load_artifact(a) for a in args.artifacts]
    shapes = {tuple(a.metadata["input"]["shape"]) for a in artifacts}
    if len(shapes) != 1:
        print(f"the artifacts take different inputs {sorted(shapes)}: compare builds of one model", file=sys.stderr)
        return 2
    x = tvm.runtime.tensor(np.random.default_rng(0).standard_normal(shapes.pop()).astype("float32"))
    vms = [relax.VirtualMachine(tvm.runtime.load_module(str(a.library_path)), tvm.cpu()) for a in artifacts]
    for vm in vms:
        for _ in range(args.warmup):
            vm["main"](x)
    times = [[] for _ in vms]
    for i in range(args.runs):
        for k in range(len(vms)) if i % 2 == 0 else reversed(range(len(vms))):
            start = time.perf_counter()
            vms[k]["main"](x)
            times[k].append(time.perf_counter() - start)
    ms = [np.array(t) * 1e3 for t in times]
    print(f"TVM on {runtime_threads.tvm_threads()} threads, {args.runs} alternating runs each (ms)\n")
    print("| build | median | p10 | min | run-by-run ratio to the first |")
    print("|---|---|---|---|---|")
    for path, t in zip(args.artifacts, ms):
        ratio = float(np.median(t / ms[0]))
        print(f"| {path} | {np.median(t):.3f} | {np.percentile(t, 10):.3f} | {t.min():.3f} | {ratio:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
