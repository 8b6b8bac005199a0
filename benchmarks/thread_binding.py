"""Benchmark (run by hand): TVM with its threads pinned to cores and left to the OS, beside ONNX Runtime.

    .venv/bin/python benchmarks/thread_binding.py ARTIFACT [ARTIFACT ...] [--rounds 20] [--runs 5] [-o FILE]

TVM pins each worker thread of its pool to one core (leaving the calling thread free) unless
``TVM_BIND_THREADS=0``, which edge-mnv2 sets (``edge_mnv2/remote/runtime_threads.py``: pinned processes fell
into whole-life slow spells more often, the calling thread on the worker's core: see
``thread_placement.py``; README, Tuning). Each runtime runs in its own process, taking turns a quarter second
apart (``isolated.py``), so the two TVM settings and ONNX Runtime (its default threads, on the
artifact's ONNX file) meet the same machine load. Prints medians and ratios to ONNX Runtime per
artifact. Not a test: whole processes fall into slow spells on a shared machine, so run it several
times and compare the ratios run by run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from isolated import Spec, measure  # noqa: E402
from table_output import emit  # noqa: E402

SETTINGS = {"TVM, threads pinned (TVM's default)": "1", "TVM, threads left to the OS (edge-mnv2's)": "0"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifacts", nargs="+", type=Path, help="host artifact folders (edge-mnv2 compile -o)")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5, help="runs per runtime per round")
    parser.add_argument("-o", "--output", type=Path, help="also write the Markdown table here")
    args = parser.parse_args()

    from edge_mnv2.artifact import load_artifact
    from edge_mnv2.errors import EdgeMnv2Error
    from edge_mnv2.remote import runtime_threads

    threads = runtime_threads.configure()
    lines = [f"TVM on {threads} threads, {args.rounds} interleaved rounds x {args.runs} runs, medians (ms)", ""]
    for path in args.artifacts:
        try:
            artifact = load_artifact(path)
        except EdgeMnv2Error as exc:
            print(f"thread_binding.py: {exc}", file=sys.stderr)
            return 2
        onnx = artifact.directory / "model.onnx"
        if artifact.target_name != "host" or not onnx.is_file():
            print(
                f"thread_binding.py: {path} is not a host build with its model.onnx; compile it with --target host",
                file=sys.stderr,
            )
            return 2
        x = np.random.default_rng(0).standard_normal(artifact.metadata["input"]["shape"]).astype("float32")
        specs = {
            name: Spec("tvm", artifact.library_path, env=(("TVM_BIND_THREADS", bind),))
            for name, bind in SETTINGS.items()
        }
        specs["ONNX Runtime (default threads)"] = Spec("onnxruntime", onnx)
        samples = measure(specs, x, args.rounds, args.runs)
        ort = float(np.median(samples["ONNX Runtime (default threads)"]))
        lines += [f"### {path}", "", "| runtime | median ms | / ONNX Runtime |", "|---|---|---|"]
        lines += [f"| {name} | {np.median(s) * 1e3:.3f} | {np.median(s) / ort:.2f} |" for name, s in samples.items()]
        lines.append("")
    emit(lines, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
