"""Benchmark (run by hand): how fast `edge-mnv2 train` reaches 90% on the shapes set on this machine.

    .venv/bin/python benchmarks/train_shapes.py [--model mobilenet_v2_0.35_96] [--epochs 10]

Runs the real command with the paper's defaults into a temporary folder and prints a Markdown table
of validation top-1 against elapsed wall time (data generation included). Not a test: timings on a
shared machine are noisy; run it on a quiet one.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobilenet_v2_0.35_96")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--target", type=float, default=90.0, help="validation top-1 to reach (%)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "model.pt"
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "edge_mnv2",
                "train",
                args.model,
                "--data",
                "shapes",
                "--epochs",
                str(args.epochs),
                "-o",
                str(out),
            ],
            check=True,
        )
        total = time.perf_counter() - started
        log = [json.loads(line) for line in (Path(str(out) + ".metrics.jsonl")).read_text().splitlines()]
    setup = total - sum(r["seconds"] for r in log)
    print("\n| epoch | val top-1 % | val top-5 % | elapsed (min) |\n|---|---|---|---|")
    elapsed, reached = setup, None
    for r in log:
        elapsed += r["seconds"]
        print(f"| {r['epoch']} | {r['val_top1']:.2f} | {r['val_top5']:.2f} | {elapsed / 60:.1f} |")
        if reached is None and r["val_top1"] >= args.target:
            reached = (r["epoch"], elapsed)
    print(
        f"\n{args.model}, {args.epochs} epochs: {total / 60:.1f} min in all (data {setup:.0f} s); "
        + (
            f"{args.target:g}% reached after epoch {reached[0]} at {reached[1] / 60:.1f} min"
            if reached
            else f"{args.target:g}% not reached"
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
