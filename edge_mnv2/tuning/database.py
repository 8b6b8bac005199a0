"""A tuning log's MetaSchedule database and the model's tuning tasks: opening it, extracting the tasks
as the build will see them, and what the database holds for them (best records, coverage, trials spent,
the estimated latency, each task's share of it)."""

from __future__ import annotations

from pathlib import Path

from edge_mnv2.tuning.logs import repair
from edge_mnv2.tuning.prune import pruned_count


def open_database(path: Path):
    """MetaSchedule's JSON database in ``path`` (created if missing, repaired if torn)."""
    from tvm.s_tir import meta_schedule as ms

    from edge_mnv2.quantize.x86_intrinsics import register

    # An int8 log's records name the VNNI tensor intrinsic; loading them needs it registered, whatever
    # this CPU has (a CPU without VNNI then finds no record that fits, not a crash).
    register()
    path.mkdir(parents=True, exist_ok=True)
    repair(path)
    return ms.database.JSONDatabase(work_dir=str(path), module_equality="structural")


def fused_module(mod, weight_prepack: bool = False):
    """The Relax module lowered and fused as the build will see it, so extracted tasks match.

    With ``weight_prepack`` every kernel marks its weights (constants) as layout-free: MetaSchedule may
    then store them in whatever blocked layout its schedule reads best, and the build repacks the
    constants once, at compile time (see ``compile.relax_build.cpu_pipeline``).
    """
    from tvm import relax

    fused = relax.get_pipeline("zero")(mod)
    return relax.transform.AttachAttrLayoutFreeBuffers()(fused) if weight_prepack else fused


def extract_tasks(mod, target, weight_prepack: bool = False):
    from tvm.s_tir import meta_schedule as ms

    return ms.relax_integration.extract_tasks(fused_module(mod, weight_prepack), target)


def top_records(database, mod, k: int = 1) -> list:
    """The ``k`` best measured records of the task ``mod`` in ``database`` ([] when it has none)."""
    return list(database.get_top_k(database.commit_workload(mod), k)) if database.has_workload(mod) else []


def mean_run_secs(record) -> float | None:
    """A record's mean measured run time in seconds (None for a record without measurements)."""
    secs = [float(s) for s in record.run_secs or []]
    return sum(secs) / len(secs) if secs else None


def coverage(database, tasks) -> tuple[int, int]:
    """How many of ``tasks`` have a tuning record in ``database``."""
    return sum(1 for t in tasks if top_records(database, t.dispatched[0])), len(tasks)


def trials_spent(path: Path, database, tasks) -> int:
    """Trials the log at ``path`` has spent on ``tasks``: its records, and those pruning dropped."""
    return records_for(database, tasks) + pruned_count(path)


def records_for(database, tasks) -> int:
    """Measured candidates the database holds for these tasks."""
    return sum(trials_spent_on(database, t) for t in tasks)


def trials_spent_on(database, task) -> int:
    """Measured candidates the database holds for one task."""
    return len(top_records(database, task.dispatched[0], 1 << 30))


def estimated_latency_ms(database, tasks) -> float | None:
    """Sum over tasks of best measured latency x occurrences: MetaSchedule's estimate of the model."""
    total = 0.0
    for t in tasks:
        top = top_records(database, t.dispatched[0])
        best = mean_run_secs(top[0]) if top else None
        if best is None:
            return None
        total += best * t.weight
    return total * 1e3


def best_ms(database, task) -> float | None:
    """The task's best measured latency in ms (one call, not times its weight); None when it has none."""
    top = top_records(database, task.dispatched[0])
    secs = mean_run_secs(top[0]) if top else None
    return None if secs is None else secs * 1e3


def focus_tasks(database, tasks, count: int | None = None) -> list[int]:
    """The ``count`` tasks (all by default) with the largest share of the estimated latency (best latency
    x occurrences), largest first, tasks with no record first: where more trials can save the most."""

    def share(i: int) -> float:
        best = best_ms(database, tasks[i])
        return float("inf") if best is None else best * tasks[i].weight

    return sorted(range(len(tasks)), key=share, reverse=True)[:count]
