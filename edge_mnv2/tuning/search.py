"""Spending a tuning run's trials: MetaSchedule's evolutionary search over the whole model (largest share
first), or over a few tasks one after another (``--tasks``)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from edge_mnv2 import progress
from edge_mnv2.tuning.database import best_ms, fused_module, trials_spent_on
from edge_mnv2.tuning.scheduler import largest_first_scheduler, progress_callback

# Candidates per task per round: MetaSchedule gives every task one round before it follows the gradient,
# so small rounds reach all ~33 tasks of a MobileNetV2 sooner (64 would need ~2000 trials for that).
TRIALS_PER_ROUND = 16
# Schedules in each generation of MetaSchedule's evolutionary search (its own default). A smaller
# population makes each round cheaper and the search narrower: worth it for small models and quick runs.
POPULATION = 512


@dataclass(frozen=True)
class FocusResult:
    """One task of a ``--tasks`` run: its best latency (ms, one call) before and after, and trials spent."""

    task: str
    weight: int
    before_ms: float | None
    after_ms: float | None
    trials: int


def metaschedule_logging() -> None:
    """Ready MetaSchedule's logging for a run: its log files, not the console.

    MetaSchedule rebuilds its logging with dictConfig at every run, naming its logger's existing
    handlers; an unnamed one (left by an earlier run in the same process, or a test harness) breaks
    that with "'NoneType' object has no attribute 'format'", so those are dropped. Its console handler
    takes the logger's level at that moment, and left at DEBUG it prints every round's task table to
    stdout, between the progress bar and the result; set to WARNING, that goes only to its files in
    the work folder (the run before left the logger at DEBUG, so this is done before every run).
    """
    import logging

    ms_logger = logging.getLogger("tvm.s_tir.meta_schedule")
    for handler in list(ms_logger.handlers):
        if handler.get_name() is None:
            ms_logger.removeHandler(handler)
    ms_logger.setLevel(logging.WARNING)


def tune_all(
    mod,
    prepack: bool,
    tasks,
    left: int,
    held: int,
    trials: int,
    *,
    work: Path,
    database,
    builder,
    runner,
    target,
    seed: int,
    population: int,
) -> None:
    """Spend ``left`` trials over all of the model's tasks, largest share first (``largest_first_scheduler``)."""
    from tvm.s_tir import meta_schedule as ms

    callback, bar = progress_callback(trials, held, tasks)
    metaschedule_logging()
    with progress.stage(f"tuning {len(tasks)} tasks, {left} trials ({held} already in the log)"):
        try:
            ms.relax_integration.tune_relax(
                mod=fused_module(mod, prepack),
                params={},
                target=target,
                work_dir=str(work),
                max_trials_global=left,
                num_trials_per_iter=min(TRIALS_PER_ROUND, left),
                max_trials_per_task=max(64, 4 * trials // max(len(tasks), 1)),
                database=database,
                builder=builder,
                runner=runner,
                measure_callbacks=[*ms.measure_callback.MeasureCallback.create("default"), callback],
                task_scheduler=largest_first_scheduler(database),
                seed=seed,
                strategy=ms.search_strategy.EvolutionarySearch(population_size=population),
            )
        finally:
            bar.close()


def tune_focused(
    tasks,
    ranking: list[int],
    count: int,
    left: int,
    *,
    work: Path,
    database,
    builder,
    runner,
    target,
    seed: int,
    population: int,
) -> tuple[FocusResult, ...]:
    """Search the first ``count`` tasks of ``ranking`` each on its own, an equal part of ``left`` trials
    each, committing every round.

    A task with few possible schedules (a layout transpose has one or two) may take fewer: what it could
    not spend passes to the tasks after it, and past the ``count`` to the next-largest tasks, so the run
    spends the trials asked for while any task has schedules left to measure.

    Each search is MetaSchedule's evolutionary search with a cost model of its own: its first population
    is the log's best few schedules of the task and random samples, so it explores afresh around them.
    """
    from tvm.s_tir import meta_schedule as ms

    results = []
    chosen = len(ranking)
    for k, i in enumerate(ranking):
        task = tasks[i]
        unspent = left - sum(r.trials for r in results)
        if unspent < 1:
            break
        if k >= count and not progress.is_quiet():
            print(
                f"  {unspent} trials the {count} largest tasks could not spend go to the next largest, "
                f"{task.task_name}",
                file=sys.stderr,
                flush=True,
            )
        # an equal part of what is left among the chosen; past them, all of it
        budget = unspent // max(count - k, 1)
        if budget < 1:
            continue
        chosen = max(count, k + 1)
        before_ms = best_ms(database, task)
        spent = trials_spent_on(database, task)
        contexts, weights = ms.relax_integration.extracted_tasks_to_tune_contexts(
            extracted_tasks=[task],
            work_dir=str(work),
            seed=seed + k,
            strategy=ms.search_strategy.EvolutionarySearch(population_size=population),
        )
        callback, bar = progress_callback(budget, 0, [task], desc=f"  {k + 1}/{chosen} {task.task_name}")
        was = "untuned" if before_ms is None else f"{before_ms:.4f} ms x {task.weight}"
        metaschedule_logging()
        with progress.stage(f"task {k + 1}/{chosen} {task.task_name} ({was}), {budget} trials"):
            try:
                ms.tune.tune_tasks(
                    tasks=contexts,
                    task_weights=weights,
                    work_dir=str(work),
                    max_trials_global=budget,
                    max_trials_per_task=budget,
                    num_trials_per_iter=min(TRIALS_PER_ROUND, budget),
                    builder=builder,
                    runner=runner,
                    database=database,
                    measure_callbacks=[*ms.measure_callback.MeasureCallback.create("default"), callback],
                    task_scheduler=largest_first_scheduler(database),
                )
            finally:
                bar.close()
        result = FocusResult(
            task.task_name,
            int(task.weight),
            before_ms,
            best_ms(database, task),
            trials_spent_on(database, task) - spent,
        )
        if k >= count and result.trials == 0:
            continue  # past the chosen, a task with nothing left to measure is not part of the run
        results.append(result)
        if not progress.is_quiet() and results[-1].after_ms is not None:
            print(
                f"  {task.task_name}: {was.split(' x ')[0]} -> {results[-1].after_ms:.4f} ms",
                file=sys.stderr,
                flush=True,
            )
    return tuple(results)
