"""``edge-mnv2 demo``: the whole pipeline on one model (export, compile for the host, bench), then on a trained one."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

from edge_mnv2 import progress

if TYPE_CHECKING:
    from edge_mnv2.bench.measure import BenchSettings

DEMO_MODEL = "mobilenet_v2_1.0_224"
DEMO_TRAINED = "mobilenet_v2_0.35_96.shapes"  # shipped weights (edge_mnv2/pretrained/)


def _show(text: str) -> None:
    print(text, flush=True)  # each model's table appears before the next model's export starts


def demo_one(model: str, out: Path, settings: BenchSettings, show: Callable[[str], None] = _show) -> dict:
    """Export ``model`` into ``out``, compile it for the host and bench it on the local RPC device; its report."""
    # Imported here, not above: the CLI imports this module for DEMO_MODEL, and --help should not load TVM.
    from edge_mnv2.bench.measure import bench_artifact
    from edge_mnv2.bench.report import format_table, write_json
    from edge_mnv2.compile.pipeline import compile_model
    from edge_mnv2.export import export_onnx

    onnx_path = out / f"{model}.onnx"
    with progress.stage(f"exporting {model} to {onnx_path}"):
        export_onnx(model, onnx_path)
    artifact = compile_model(onnx_path, "host", out / "artifact")
    report = bench_artifact(artifact.directory, None, settings)
    report_path = write_json(report, out / "report.json")
    show(format_table(report))
    show(f"\nwrote {onnx_path}, {artifact.directory}/, {report_path}\n")
    return report


def run_demo(
    model: str, trained: str | None, output: Path, settings: BenchSettings, show: Callable[[str], None] = _show
) -> list[dict]:
    """The demo of ``model`` in ``output``, then of ``trained`` (if any) in ``output/trained``; their reports."""
    from edge_mnv2.models import get_spec

    get_spec(model)  # both names are checked before the first (minutes-long) export
    if trained:
        get_spec(trained)
    reports = [demo_one(model, output, settings, show)]
    if trained:
        reports.append(demo_one(trained, output / "trained", settings, show))
    return reports
