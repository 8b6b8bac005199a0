"""Benchmark (run by hand): TVM untuned and tuned against ONNX Runtime and PyTorch eager on the host.

    .venv/bin/python benchmarks/tvm_vs_ort.py [--models mobilenet_v2_1.0_224 mobilenet_v2_0.35_96]
                                              [--rounds 20] [--runs 5] [--int8] [-o benchmarks/results.md]
                                              [--log LABEL=DIR ...]

Every runtime runs in a process of its own (see isolated.py), batch 1, interleaved round by round
(each round times every runtime ``--runs`` times, in a shuffled order), so machine load hits them alike;
the table gives medians over all runs and ratios to ONNX Runtime with its default threads. "TVM tuned"
applies the model's log in tuning_logs/host/ (and is left out when there is none); ``--log LABEL=DIR``
adds a build tuned with another log of the same model (an older log, one tuned another way), timed in
the same rounds. Not a test: run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from isolated import Spec, measure  # noqa: E402
from table_output import emit  # noqa: E402


def log_root_for(model: str, log: Path, root: Path) -> Path:
    """``root``, made a log root in which ``log`` (a model's log folder) is the host log of ``model``."""
    (root / "host").mkdir(parents=True, exist_ok=True)
    (root / "host" / model).symlink_to(log.resolve(), target_is_directory=True)
    return root


def runtimes(model: str, work: Path, int8: bool = False, logs: dict[str, Path] | None = None) -> dict[str, Spec]:
    """What to time for ``model``: the builds (compiled here, into ``work``) and the peers."""
    import torch

    from edge_mnv2.compile import compile_model

    untuned = compile_model(model, "host", work / f"{model}-untuned", use_tuning=False)
    out = {"TVM untuned (default rules, 0 trials)": Spec("tvm", untuned.library_path)}
    tuned = compile_model(model, "host", work / f"{model}-tuned")
    if tuned.metadata.get("tuning"):
        t = tuned.metadata["tuning"]
        out[f"TVM tuned ({t['covered_tasks']}/{t['tasks']} tasks)"] = Spec("tvm", tuned.library_path)
    for label, log in (logs or {}).items():
        root = log_root_for(model, log, work / f"{model}-{label}-logs")
        other = compile_model(model, "host", work / f"{model}-{label}", log_root=root)
        t = other.metadata["tuning"]
        out[f"TVM tuned, {label} ({t['covered_tasks']}/{t['tasks']} tasks)"] = Spec("tvm", other.library_path)
    if int8:
        quantized = compile_model(model, "host", work / f"{model}-int8", quantize="int8", use_tuning=False)
        out["TVM int8 untuned"] = Spec("tvm", quantized.library_path)
        quantized = compile_model(model, "host", work / f"{model}-int8-tuned", quantize="int8")
        if quantized.metadata.get("tuning"):
            t = quantized.metadata["tuning"]
            out[f"TVM int8 tuned ({t['covered_tasks']}/{t['tasks']} tasks)"] = Spec("tvm", quantized.library_path)
    out["ONNX Runtime (default threads)"] = Spec("onnxruntime", untuned.onnx_path)
    out["ONNX Runtime (2 threads)"] = Spec("onnxruntime", untuned.onnx_path, threads=2)
    out[f"PyTorch eager ({torch.get_num_threads()} threads)"] = Spec("torch", model=model)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["mobilenet_v2_1.0_224", "mobilenet_v2_0.35_96"])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5, help="runs per runtime per round")
    parser.add_argument("--int8", action="store_true", help="also time the int8 build (compile --quantize int8)")
    parser.add_argument("-o", "--output", type=Path, help="also write the Markdown table here")
    parser.add_argument(
        "--log",
        action="append",
        default=[],
        metavar="LABEL=DIR",
        help="also time a build tuned with the log folder DIR (one model only)",
    )
    args = parser.parse_args()
    logs = dict(item.split("=", 1) for item in args.log)
    if logs and len(args.models) != 1:
        parser.error("--log needs exactly one model in --models")

    from edge_mnv2.remote import runtime_threads

    runtime_threads.configure()  # before TVM's thread pool starts in this process
    threads = runtime_threads.tvm_threads()
    from tvm.target import codegen

    from edge_mnv2.data.evalset import evaluation_inputs
    from edge_mnv2.models import get_spec

    lines = [
        f"Host CPU {codegen.llvm_get_system_cpu()}, TVM on {threads} threads, batch 1, {args.rounds} "
        f"interleaved rounds x {args.runs} runs, medians (ms).",
        "",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            spec = get_spec(model)
            x = evaluation_inputs(1, spec.resolution, spec.preprocessing)
            runs = runtimes(model, Path(tmp), args.int8, {k: Path(v) for k, v in logs.items()})
            samples = measure(runs, x, args.rounds, args.runs)
            ort = float(np.median(samples["ONNX Runtime (default threads)"]))
            lines += [f"### {model}", "", "| runtime | median ms | p90 ms | / ONNX Runtime |", "|---|---|---|---|"]
            for name, s in samples.items():
                ms = np.asarray(s) * 1e3
                lines.append(
                    f"| {name} | {np.median(ms):.3f} | {np.percentile(ms, 90):.3f} | "
                    f"{np.median(ms) / (ort * 1e3):.2f} |"
                )
            medians = {name: float(np.median(s)) for name, s in samples.items()}
            for kind in ("untuned", "tuned"):
                fp32 = [v for k, v in medians.items() if k.startswith(f"TVM {kind}")]
                int8 = [v for k, v in medians.items() if k.startswith(f"TVM int8 {kind}")]
                if fp32 and int8:
                    lines += ["", f"int8 / fp32 TVM build, both {kind}: {int8[0] / fp32[0]:.2f}"]
            lines.append("")
    emit(lines, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
