"""Benchmark (run by hand): int8 MobileNetV2 on the microcontroller boards, instructions and memory.

    .venv/bin/python benchmarks/micro_int8.py [--model mobilenet_v2_0.35_96.shapes]
        [--boards mps3-an547,mps2-an386,mps2-an385,stm32f746g-disco] [--images 4] [--fp32]
        [--build-dir build/micro-int8] [-o table.md]

For each board: compiles the model with --quantize int8 (and in fp32 with --fp32), and on the emulated
boards benches it over the emulated UART: instructions per inference (qemu -icount, deterministic: the
same on any host), per multiply-accumulate, outputs against the integer reference (bit for bit), flash
and RAM from the firmware's ELF. Real boards (stm32f746g-disco) get the memory columns only. Prints a
Markdown table, then the per-layer profile of the first emulated board.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from table_output import emit  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobilenet_v2_0.35_96.shapes")
    parser.add_argument("--boards", default="mps3-an547,mps2-an386,mps2-an385,stm32f746g-disco")
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--fp32", action="store_true", help="also build and count the fp32 (TVM C) firmware")
    parser.add_argument("--build-dir", type=Path, default=Path("build/micro-int8"))
    parser.add_argument("-o", "--output", type=Path, help="also write the table to this file")
    args = parser.parse_args()

    from edge_mnv2.bench import BenchSettings
    from edge_mnv2.bench.report import per_layer_lines
    from edge_mnv2.compile import compile_model
    from edge_mnv2.errors import FirmwareTooLargeError
    from edge_mnv2.micro.bench import bench_micro
    from edge_mnv2.micro.board import board_config
    from edge_mnv2.targets import load_target

    lines = [
        f"`{args.model}`, {date.today().isoformat()}, qemu-system-arm -icount (counts do not depend on the "
        "host machine)",
        "",
        "| board | build | kernels | instructions / inference | per MAC | int8 reference | flash B | RAM B |",
        "|---|---|---|---|---|---|---|---|",
    ]
    profile = None
    for board in args.boards.split(","):
        emulated = board_config(load_target(board)).emulated
        for quantize in ("int8", None) if args.fp32 else ("int8",):
            name = quantize or "fp32"
            try:
                artifact = compile_model(args.model, board, args.build_dir / f"{board}-{name}", quantize=quantize)
            except FirmwareTooLargeError:
                lines.append(f"| {board} | {name} | - | does not fit | | | | |")
                continue
            micro = artifact.metadata["micro"]
            count, per_mac, exact = "-", "-", "-"
            if emulated:
                report = bench_micro(artifact.directory, board, settings=BenchSettings(images=args.images, peers=False))
                count = f"{report['instructions']['median'] / 1e6:.2f} M"
                per_mac = f"{report['instructions'].get('per_mac', 0):.2f}" if quantize else "-"
                if "int8_reference" in report["accuracy"]:
                    exact = (
                        "bit-exact"
                        if report["accuracy"]["int8_reference"]["max_abs_error"] == 0
                        else f"max error {report['accuracy']['int8_reference']['max_abs_error']:.2e}"
                    )
                if profile is None and report.get("per_layer") and quantize:
                    profile = (board, report["per_layer"])
            memory = micro["memory"]
            lines.append(
                f"| {board} | {name} | {micro.get('implementation', 'TVM C')} | {count} | {per_mac} | {exact} "
                f"| {memory['flash_total']:,} | {memory['ram_total']:,} |"
            )
    if profile:
        lines += ["", f"per layer on {profile[0]}:", "", "```", *per_layer_lines(profile[1]), "```"]
    emit(lines, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
