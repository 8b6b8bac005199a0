"""Benchmark (run by hand): instructions per inference on emulated Raspberry Pis, TVM beside the rivals.

    .venv/bin/python benchmarks/pi_instructions.py [--boards rpi4b,rpi5,rpi3b]
        [--models mobilenet_v2_1.0_224,mobilenet_v2_0.35_96] [--build-dir build/pi-instructions] [-o table.md]

For each board and model: compiles the model for the board (reusing a build already in --build-dir),
then counts one inference, on one thread, of TVM's build, ONNX Runtime, LiteRT with XNNPACK and LiteRT's
built-in kernels, each in its own process on the board's emulated CPU (qemu-user with edge-mnv2's
counting plugin; the guest sees the board's /proc/cpuinfo, so the rivals pick the kernels they pick on
the board). Every runtime's output is checked against ONNX Runtime on the host. Prints Markdown tables.
Counts are deterministic; they are not time (no caches, memory bandwidth or issue width): see
docs/instruction-counts.md.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from table_output import emit  # noqa: E402

COLUMNS = {
    "tvm": "TVM (0 trials)",
    "onnxruntime_emulated": "ONNX Runtime",
    "litert_xnnpack": "LiteRT + XNNPACK",
    "litert_builtin": "LiteRT built-in",
}
# Past this, ONNX Runtime on the host and the emulated runtimes disagree: a wrong .tflite or a broken build.
TOLERANCE = 1e-3


def artifact_for(model: str, board: str, build_dir: Path):
    """The build of ``model`` for ``board`` in ``build_dir``, compiled first if missing."""
    from edge_mnv2.artifact import load_artifact
    from edge_mnv2.compile import compile_model
    from edge_mnv2.errors import ArtifactError

    directory = build_dir / f"{model}-{board}"
    try:
        artifact = load_artifact(directory)
        artifact.verify()
        return artifact
    except ArtifactError:
        return compile_model(model, board, directory)


def measure(model: str, board: str, build_dir: Path, runs: int) -> dict:
    """One board and model: the counts of every runtime, keyed as the table's columns."""
    from edge_mnv2.data.evalset import EVAL_SEED
    from edge_mnv2.data.preprocessing import IMAGENET_PREPROCESSING
    from edge_mnv2.data.synthetic import synthetic_images
    from edge_mnv2.export import onnxruntime_outputs
    from edge_mnv2.remote.instructions.counting import CountSettings
    from edge_mnv2.remote.instructions.emulated_bench import count_instructions

    artifact = artifact_for(model, board, build_dir)
    x = IMAGENET_PREPROCESSING.normalize(synthetic_images(1, artifact.input_shape[2], EVAL_SEED))
    reference = onnxruntime_outputs(artifact.onnx_path, x)
    counts = count_instructions(artifact, x, reference, peers=True, settings=CountSettings(runs=runs))
    result = {"tvm": counts["instructions"], **{k: v["instructions"] for k, v in counts["peers"].items()}}
    errors = {"tvm": counts["instructions"]["accuracy"], **{k: v["accuracy"] for k, v in counts["peers"].items()}}
    for name, error in errors.items():
        if error["max_abs_error"] > TOLERANCE * max(1.0, error["reference_scale"]):
            raise SystemExit(
                f"{board} {model}: {name}'s output differs from ONNX Runtime on the host by "
                f"{error['max_abs_error']:.3g}"
            )
    return {"cpu": counts["instructions"]["cpu"], "counts": result}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boards", default="rpi4b,rpi5,rpi3b")
    parser.add_argument("--models", default="mobilenet_v2_1.0_224,mobilenet_v2_0.35_96")
    parser.add_argument("--build-dir", type=Path, default=Path("build/pi-instructions"))
    parser.add_argument("--runs", type=int, default=3, help="counted inferences per runtime (median reported)")
    parser.add_argument("-o", "--output", type=Path, help="also write the tables to this file")
    args = parser.parse_args()

    from edge_mnv2.errors import EdgeMnv2Error

    rows = []
    try:
        for board in args.boards.split(","):
            for model in args.models.split(","):
                rows.append((board, model, measure(model, board, args.build_dir, args.runs)))
    except EdgeMnv2Error as exc:
        print(f"pi_instructions: {exc}", file=sys.stderr)
        return 2
    head = " | ".join(COLUMNS.values())
    lines = [
        f"Instructions per inference on emulated Raspberry Pis (qemu-user, 1 thread, median of {args.runs}; "
        f"counts, not time), {date.today().isoformat()}",
        "",
        f"| board (emulated CPU) | model | {head} | TVM / XNNPACK | TVM / ONNX Runtime |",
        "|---|---|" + "---|" * (len(COLUMNS) + 2),
    ]
    for board, model, m in rows:
        c = m["counts"]
        cells = " | ".join(f"{c[k]['per_inference'] / 1e6:,.2f} M" if k in c else "-" for k in COLUMNS)
        lines.append(
            f"| {board} ({m['cpu']}) | {model} | {cells} | "
            f"{c['tvm']['per_inference'] / c['litert_xnnpack']['per_inference']:.2f}x | "
            f"{c['tvm']['per_inference'] / c['onnxruntime_emulated']['per_inference']:.2f}x |"
        )
    lines += [
        "",
        "Instructions per multiply-add (share of the MACs done by vector FMAs)",
        "",
        f"| board | model | MACs | {head} |",
        "|---|---|---|" + "---|" * len(COLUMNS),
    ]
    for board, model, m in rows:
        c = m["counts"]
        cells = " | ".join(
            f"{c[k]['per_mac']:.2f} ({100 * c[k]['vector_fma_share']:.0f} %)" if k in c else "-" for k in COLUMNS
        )
        lines.append(f"| {board} | {model} | {c['tvm']['macs']:,} | {cells} |")
    emit(lines, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
