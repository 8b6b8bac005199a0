"""``edge-mnv2 sweep``'s one function: parse the grid, run it, write the files, print the table."""

from __future__ import annotations

from pathlib import Path

from edge_mnv2.errors import EdgeMnv2Error


def parse_list(text: str, kind: type, option: str) -> list:
    """``"0.35,0.5"`` -> ``[0.35, 0.5]``, with an error naming the option and the bad item."""
    items = []
    for item in (t.strip() for t in str(text).split(",")):
        try:
            items.append(kind(item))
        except ValueError:
            raise EdgeMnv2Error(
                f"{option}: {item!r} is not a {'number' if kind is float else 'whole number'}; "
                f"give a comma-separated list such as {option} 0.35,1.0"
            ) from None
    if not items:
        raise EdgeMnv2Error(f"{option} is empty; give at least one value")
    return items


def sweep(
    target: str,
    widths: str,
    resolutions: str,
    output: Path | None = None,
    *,
    rpc: str | None = None,
    tracker: str | None = None,
    key: str | None = None,
    port: str | None = None,
    quantize: str | None = None,
    images: int = 4,
    repeat: int = 20,
) -> Path:
    """Run the sweep and write ``sweep.csv``, ``sweep.json`` and ``sweep.png``; returns the folder."""
    from edge_mnv2.bench.measure import BenchSettings
    from edge_mnv2.remote.address import device_address
    from edge_mnv2.sweep.grid import run_sweep
    from edge_mnv2.sweep.plot import plot_sweep
    from edge_mnv2.sweep.results import summary_lines, write_results

    w = parse_list(widths, float, "--widths")
    r = parse_list(resolutions, int, "--resolutions")
    output = Path(output or f"sweep-{Path(target).stem}")
    device = device_address(rpc, tracker, key)
    settings = BenchSettings(images=images, warmup=3, repeat=repeat, rounds=min(4, repeat), peers=False, count_runs=1)
    result = run_sweep(target, w, r, output, device=device, quantize=quantize, port=port, settings=settings)
    csv_path, json_path = write_results(result, output)
    png = plot_sweep(result, output / "sweep.png")
    print("\n".join(summary_lines(result)))
    print(f"\nwrote {csv_path}, {json_path}, {png}")
    return output
