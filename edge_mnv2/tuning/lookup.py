"""Tuning records found by what they compute: for a model without a log of its own name (a user's ONNX
export of a registered architecture, another weights file, a detector sharing a backbone), every log of
the target (and of this CPU) is asked for the model's kernels by workload, and the one holding most of
them is applied. MetaSchedule keys records by the kernel's structure, so the names in the graph, the
exporter and the weights do not matter; the layout and weight prepacking the log was tuned in do, so
the tasks are extracted once per (layout, prepacking) the logs use."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from edge_mnv2 import progress
from edge_mnv2.tuning.database import coverage, extract_tasks, open_database
from edge_mnv2.tuning.logs import is_log, log_dir, log_targets, search_roots
from edge_mnv2.tuning.settings import log_layout, log_weight_prepack


@dataclass(frozen=True)
class LogMatch:
    """The log whose records cover the most of a module's kernels, in the layout it was tuned in."""

    path: Path
    covered: int
    tasks: int
    layout: str
    weight_prepack: bool
    module: object  # the Relax module converted to ``layout``


def candidate_logs(target_name: str, cpu: str | None, root: Path | None = None) -> list[Path]:
    """Every float log of the target, this CPU's folder first, the user's logs before the shipped ones (int8
    logs hold other kernels)."""
    out = []
    for top in search_roots(root):
        for folder in log_targets(target_name, cpu):
            base = log_dir(folder, "x", top).parent
            if base.is_dir():
                out += [p for p in sorted(base.iterdir()) if is_log(p) and not p.name.endswith(".int8")]
    return out


def best_log(mod, target, logs: list[Path]) -> LogMatch | None:
    """The log among ``logs`` with records for the most of ``mod``'s kernels (None if no log has any)."""
    from edge_mnv2.compile import relax_layout

    if not logs:
        return None
    groups: dict[tuple[str, bool], list[Path]] = defaultdict(list)
    for path in logs:
        groups[(log_layout(path) or relax_layout.DEFAULT, bool(log_weight_prepack(path)))].append(path)
    best: LogMatch | None = None
    with progress.stage(f"looking up this model's kernels in {len(logs)} tuning logs by workload"):
        for (layout, prepack), paths in groups.items():
            converted = relax_layout.convert(mod, layout)
            tasks = extract_tasks(converted, target.tvm_target(), prepack)
            for path in paths:
                covered, total = coverage(open_database(path), tasks)
                if covered and (best is None or covered > best.covered):
                    best = LogMatch(path, covered, total, layout, prepack, converted)
    return best
