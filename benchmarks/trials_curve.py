"""Benchmark (run by hand): how a model's latency falls with the number of tuning trials.

    .venv/bin/python benchmarks/trials_curve.py mobilenet_v2_0.35_96 [--points 0 128 256 512 ALL]
                                                [--target host] [--rounds 10] [-o benchmarks/curve.md]

For each point N it compiles the model with only the first N records of its log in
tuning_logs/<target>/<model>/ (records are appended in the order they were measured), then times all
the builds interleaved, round by round, each in a process of its own, with ONNX Runtime beside them, and prints a
Markdown table of medians. N = 0 is the untuned build.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from isolated import Spec, measure  # noqa: E402
from table_output import emit  # noqa: E402


def truncated_log(log: Path, records: int, root: Path, target: str, model: str) -> Path:
    """A log root holding the workloads and the first ``records`` tuning records of ``log``."""
    from edge_mnv2.tuning.logs import META_FILE

    out = root / target / model
    out.mkdir(parents=True)
    shutil.copyfile(log / "database_workload.json", out / "database_workload.json")
    lines = (log / "database_tuning_record.json").read_text().splitlines()[:records]
    (out / "database_tuning_record.json").write_text("".join(f"{line}\n" for line in lines))
    if (log / META_FILE).is_file():
        shutil.copyfile(log / META_FILE, out / META_FILE)
    return root


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--target", default="host")
    parser.add_argument("--points", nargs="+", default=["0", "64", "128", "256", "512", "ALL"])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("-o", "--output", type=Path)
    args = parser.parse_args()

    from edge_mnv2.remote import runtime_threads

    runtime_threads.configure()  # before TVM's thread pool starts in this process
    threads = runtime_threads.tvm_threads()
    from edge_mnv2.compile import compile_model
    from edge_mnv2.data.evalset import evaluation_inputs
    from edge_mnv2.models import get_spec
    from edge_mnv2.targets import load_target
    from edge_mnv2.tuning.logs import detected_cpu, find_log

    log = find_log(args.target, args.model, cpu=detected_cpu(load_target(args.target)))
    if log is None:
        print(f"no tuning log for {args.model} on {args.target}; run `edge-mnv2 tune` first", file=sys.stderr)
        return 2
    total = len((log / "database_tuning_record.json").read_text().splitlines())
    points = sorted({total if p == "ALL" else min(int(p), total) for p in args.points})
    spec = get_spec(args.model)
    x = evaluation_inputs(1, spec.resolution, spec.preprocessing)
    runs, covered = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in points:
            root = truncated_log(log, n, Path(tmp) / f"log{n}", args.target, log.name)
            artifact = compile_model(args.model, args.target, Path(tmp) / f"build{n}", use_tuning=n > 0, log_root=root)
            info = artifact.metadata.get("tuning") or {}
            covered[n] = f"{info.get('covered_tasks', 0)}/{info.get('tasks', '-')}"
            runs[n] = Spec("tvm", artifact.library_path)
        samples = measure({**runs, "ort": Spec("onnxruntime", artifact.onnx_path)}, x, args.rounds, args.runs)
    ort_ms = float(np.median(samples["ort"])) * 1e3
    lines = [
        f"{args.model} on {args.target}: latency against tuning trials (medians of {args.rounds} x "
        f"{args.runs} interleaved runs; TVM on {threads} threads; ONNX Runtime {ort_ms:.3f} ms)",
        "",
        "| trials | tasks tuned | median ms | / ONNX Runtime |",
        "|---|---|---|---|",
    ]
    for n in points:
        ms = float(np.median(samples[n])) * 1e3
        lines.append(f"| {n} | {covered[n]} | {ms:.3f} | {ms / ort_ms:.2f} |")
    emit(lines, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
