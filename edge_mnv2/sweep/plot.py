"""``sweep.png``: cost against multiply-adds, and published accuracy against measured cost with the
Pareto front drawn and labelled."""

from __future__ import annotations

from pathlib import Path

from edge_mnv2.sweep.grid import SweepResult


def plot_sweep(result: SweepResult, path: Path) -> Path:
    """Draw the two panels of the sweep into ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    counted = result.metric == "instructions"
    scale, unit = (1e6, "instructions per inference (millions, emulated)") if counted else (1.0, "latency (ms)")
    measured = [v for v in result.variants if v.status == "ok" and v.measured is not None]
    missing = [v for v in result.variants if v not in measured]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.5))
    fig.suptitle(f"MobileNetV2 sweep on {result.target}: {result.device}", fontsize=11)

    widths = sorted({v.width for v in measured})
    colors = {w: plt.cm.viridis(i / max(1, len(widths) - 1)) for i, w in enumerate(widths)}
    for w in widths:
        pts = sorted((v for v in measured if v.width == w), key=lambda v: v.madds)
        left.plot(
            [p.madds / 1e6 for p in pts], [p.measured / scale for p in pts], "o-", color=colors[w], label=f"width {w:g}"
        )
        for p in pts:
            left.annotate(
                str(p.resolution),
                (p.madds / 1e6, p.measured / scale),
                textcoords="offset points",
                xytext=(4, -10),
                fontsize=7,
                color=colors[w],
            )
    left.set_xlabel("multiply-adds (millions)")
    left.set_ylabel(unit)
    left.set_title("measured cost against multiply-adds (labels: resolution)", fontsize=10)
    left.grid(alpha=0.3)
    if widths:
        left.legend(fontsize=8)
    if missing:
        left.text(
            0.01,
            0.99,
            "not measured: " + ", ".join(f"{v.variant} ({v.status})" for v in missing)[:180],
            transform=left.transAxes,
            va="top",
            fontsize=7,
            wrap=True,
        )

    rated = [v for v in measured if v.published_top1 is not None]
    front = result.pareto()
    right.scatter(
        [v.measured / scale for v in rated], [v.published_top1 for v in rated], color="0.6", s=22, label="variant"
    )
    if front:
        right.step(
            [v.measured / scale for v in front],
            [v.published_top1 for v in front],
            where="post",
            color="crimson",
            lw=1.5,
            label="Pareto front",
        )
        right.scatter(
            [v.measured / scale for v in front], [v.published_top1 for v in front], color="crimson", s=30, zorder=3
        )
        for v in front:
            right.annotate(
                v.variant.removeprefix("mobilenet_v2_"),
                (v.measured / scale, v.published_top1),
                textcoords="offset points",
                xytext=(5, -3),
                fontsize=8,
                color="crimson",
            )
    right.set_xlabel(unit)
    right.set_ylabel("published ImageNet top-1 (%)")
    right.set_title("published top-1 (TF-slim checkpoints, not measured here) against measured cost", fontsize=10)
    right.grid(alpha=0.3)
    if rated:
        right.legend(fontsize=8, loc="lower right")
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
