"""Benchmark (run by hand): where TVM's calling thread runs, against its pool's worker, turn by turn.

    TVM_BIND_THREADS=1 .venv/bin/python benchmarks/thread_placement.py ARTIFACT [--rounds 20] [--runs 10]

Times a host build in turns of ``--runs`` runs a quarter second apart, as the benchmarks do, and after
each turn reads every thread's last CPU and CPU time from ``/proc/self/task``: a turn counts as shared
when the calling thread was last on the same CPU as a thread that worked during the turn. Prints the
median and fastest run and the shared turns. Run it with ``TVM_BIND_THREADS=1`` (TVM's default: its
worker pinned, the calling thread free) and ``=0`` (edge-mnv2's) to see why edge-mnv2 unpins them.
Linux only; not a test.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np


def thread_cpus() -> dict[int, tuple[int, int]]:
    """Every thread of this process: (the CPU it last ran on, its user + system CPU ticks)."""
    found = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        found[int(tid)] = (int(fields[36]), int(fields[11]) + int(fields[12]))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifact", type=Path, help="a host artifact folder (edge-mnv2 compile -o)")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--runs", type=int, default=10, help="runs per turn")
    args = parser.parse_args()

    from edge_mnv2.artifact import load_artifact
    from edge_mnv2.errors import EdgeMnv2Error
    from edge_mnv2.remote import runtime_threads

    runtime_threads.configure()  # keeps a TVM_BIND_THREADS given on the command line
    try:
        artifact = load_artifact(args.artifact)
    except EdgeMnv2Error as exc:
        print(f"thread_placement.py: {exc}", file=sys.stderr)
        return 2
    import tvm
    from tvm import relax

    main_fn = relax.VirtualMachine(tvm.runtime.load_module(str(artifact.library_path)), tvm.cpu())["main"]
    x = tvm.runtime.tensor(
        np.random.default_rng(0).standard_normal(artifact.metadata["input"]["shape"]).astype("float32")
    )
    for _ in range(5):
        main_fn(x)
    me, times, shared, turns = os.getpid(), [], 0, 0
    before = thread_cpus()
    for _ in range(args.rounds):
        time.sleep(0.25)
        for _ in range(args.runs):
            start = time.perf_counter()
            main_fn(x)
            times.append(time.perf_counter() - start)
        now = thread_cpus()
        worked = [t for t in now if t != me and t in before and now[t][1] > before[t][1]]
        if worked and me in now:
            turns += 1
            shared += any(now[t][0] == now[me][0] for t in worked)
        before = now
    print(
        f"TVM_BIND_THREADS={os.environ.get('TVM_BIND_THREADS')}, {runtime_threads.tvm_threads()} threads: "
        f"median {np.median(times) * 1e3:.3f} ms, fastest {min(times) * 1e3:.3f} ms, calling thread on a "
        f"working thread's CPU after {shared} of {turns} turns"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
