"""Start a tuning log from another log's best schedules, replayed on this log's tasks and measured here.

A log holds MetaSchedule traces: the sampled schedule of each measured candidate. The same kernel in
another log (tuned without prepacked weights, or for another CPU of the same kind) has traces that
apply unchanged to this log's task, and MetaSchedule's postprocessors then redo what depends on this
log's setting (for example the weights' layout rewrite). Each replayed candidate is built and measured
by this run's builder and runner, so its latency is a real measurement here; the evolutionary search
then starts from these records instead of from random schedules.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable

from edge_mnv2 import progress
from edge_mnv2.errors import EdgeMnv2Error
from edge_mnv2.tuning.database import open_database, top_records
from edge_mnv2.tuning.logs import DB_FILES, is_log

DEFAULT_TOP_K = 4
LAYOUT_FREE_ATTR = "layout_free_buffers"


def check_source(source_path: Path, top_k: int) -> None:
    """Refuse a ``--seed-from`` that is not a tuning log, or a ``--seed-top`` below 1."""
    if not is_log(source_path):
        raise EdgeMnv2Error(
            f"--seed-from {source_path} is not a tuning log (it needs {' and '.join(DB_FILES)}); "
            "name a folder under tuning_logs/TARGET/"
        )
    if top_k < 1:
        raise EdgeMnv2Error(f"--seed-top must be at least 1, got {top_k}")


def plain_workload(mod):
    """The task's module without the layout-free mark that prepacked logs attach to its function."""
    import tvm

    func = mod["main"]
    if LAYOUT_FREE_ATTR not in (func.attrs or {}):
        return mod
    return tvm.IRModule({"main": func.without_attr(LAYOUT_FREE_ATTR)})


def source_records(source, mod, top_k: int) -> list:
    """The ``top_k`` best records of the task ``mod`` in the ``source`` database (as is, or unmarked)."""
    return top_records(source, mod, top_k) or top_records(source, plain_workload(mod), top_k)


def replay(record, mod, postprocs):
    """The record's schedule replayed on ``mod`` with this run's postprocessors; None if it does not fit."""
    from tvm import s_tir

    sch = s_tir.Schedule(mod)
    try:
        record.trace.apply_to_schedule(sch, remove_postproc=True)
        sch.enter_postproc()
        if not all(p.apply(sch) for p in postprocs):
            return None
    except (RuntimeError, ValueError):  # TVM's errors (ScheduleError included) are RuntimeErrors
        return None
    return sch


def seed_log(
    source_path: Path, database, tasks, tvm_target, device: str, builder, runner, top_k: int = DEFAULT_TOP_K
) -> int:
    """Measure the source log's ``top_k`` schedules of every task that ``database`` has no record of, and
    commit them to ``database`` (each task's as soon as they are measured). Returns candidates committed."""
    check_source(source_path, top_k)
    source = open_database(source_path)
    todo = [t for t in tasks if not top_records(database, t.dispatched[0])]
    plans = [(t, records) for t in todo if (records := source_records(source, t.dispatched[0], top_k))]
    return measure_tasks(
        database,
        plans,
        "  seeding",
        lambda mod, postprocs, records: [s for s in (replay(r, mod, postprocs) for r in records) if s],
        tvm_target,
        device,
        builder,
        runner,
    )


def measure_tasks(
    database, plans: list, desc: str, schedules_of: Callable, tvm_target, device: str, builder, runner
) -> int:
    """For each ``(task, what)`` of ``plans``, measure the schedules ``schedules_of(mod, postprocs, what)``
    makes of the task with this run's postprocessors, and commit them to ``database``, a task's as soon
    as they are measured (a progress bar counts tasks). Returns records committed."""
    from tqdm.auto import tqdm
    from tvm.s_tir import meta_schedule as ms

    committed = 0
    bar = tqdm(plans, desc=desc, unit="task", dynamic_ncols=True, disable=True if progress.is_quiet() else None)
    for task, what in bar:
        mod = task.dispatched[0]
        context = ms.TuneContext(
            mod=mod,
            target=tvm_target,
            space_generator="post-order-apply",
            search_strategy="evolutionary",
            task_name=task.task_name,
        )
        schedules = schedules_of(mod, context.space_generator.postprocs, what)
        if not schedules:
            continue
        committed += measure_into(database, mod, schedules, tvm_target, device, builder, runner)
        bar.set_postfix_str(f"{committed} measured")
    bar.close()
    return committed


def measure_into(database, mod, schedules: list, tvm_target, device: str, builder, runner) -> int:
    """Build and run ``schedules`` of the task ``mod`` with this run's builder and runner, and commit each
    that ran to ``database`` as a record with its measured times. Returns records committed."""
    from tvm.s_tir import meta_schedule as ms

    # the arguments as the scheduled kernel takes them (a rewritten layout changes the weights' shape)
    args = [ms.arg_info.ArgInfo.from_entry_func(s.mod, remove_preproc=True) for s in schedules]
    built = builder.build([ms.builder.BuilderInput(s.mod, tvm_target) for s in schedules])
    ok = [i for i, b in enumerate(built) if b.error_msg is None]
    runs = runner.run([ms.runner.RunnerInput(built[i].artifact_path, device, args[i]) for i in ok])
    workload = database.commit_workload(mod)
    committed = 0
    for i, future in zip(ok, runs):
        result = future.result()
        if result.error_msg is None and result.run_secs:
            database.commit_tuning_record(
                ms.database.TuningRecord(schedules[i].trace, workload, result.run_secs, tvm_target, args[i])
            )
            committed += 1
    for b in built:  # as MetaSchedule's RemoveBuildArtifact does after each round
        if b.artifact_path:
            shutil.rmtree(os.path.dirname(b.artifact_path), ignore_errors=True)
    return committed
