"""``sweep.csv`` and ``sweep.json``: one row per variant, published accuracy marked as published."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict
from pathlib import Path

from edge_mnv2.sweep.grid import SweepResult

CSV_FIELDS = [
    "variant",
    "width",
    "resolution",
    "quantize",
    "madds",
    "params",
    "status",
    "latency_ms",
    "instructions",
    "flash_bytes",
    "ram_bytes",
    "library_bytes",
    "published_top1",
    "published_top5",
    "pareto",
    "detail",
]


def write_results(result: SweepResult, directory: Path) -> tuple[Path, Path]:
    """Write ``sweep.csv`` and ``sweep.json`` into ``directory``; returns their paths."""
    directory = Path(directory)
    on_front = {v.variant for v in result.pareto()}
    csv_path, json_path = directory / "sweep.csv", directory / "sweep.json"
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for v in result.variants:
            writer.writerow({**asdict(v), "pareto": v.variant in on_front})
    json_path.write_text(json.dumps(result.to_dict(), indent=1) + "\n")
    return csv_path, json_path


def summary_lines(result: SweepResult) -> list[str]:
    """The sweep as a table for the terminal."""
    counted = result.metric == "instructions"
    on_front = {v.variant for v in result.pareto()}
    head = (
        f"{'variant':<24} {'MAdds':>8} {'params':>7} {'instructions' if counted else 'latency ms':>13} "
        f"{'top-1*':>7}  {'':<5}"
    )
    lines = [f"sweep on {result.target} ({result.device})", head, "-" * len(head)]
    for v in result.variants:
        if v.status == "ok" and v.measured is not None:
            figure = f"{v.measured / 1e6:>12.2f}M" if counted else f"{v.measured:>13.3f}"
        else:
            figure = f"{v.status:>13}"
        top1 = f"{v.published_top1:>7.1f}" if v.published_top1 is not None else f"{'-':>7}"
        lines.append(
            f"{v.variant + ('.' + v.quantize if v.quantize else ''):<24} {v.madds / 1e6:>7.1f}M "
            f"{v.params / 1e6:>6.2f}M {figure} {top1}  {'front' if v.variant in on_front else ''}"
        )
        if v.status != "ok" and v.detail:
            lines.append(f"    {v.detail[:150]}")
    lines.append("* published ImageNet top-1 of the reference TF-slim checkpoint, not measured here")
    return lines
