"""How a tuning run spends its trials: a MetaSchedule task scheduler that commits every round and goes
where the model's time goes, and a measure callback that drives the progress bar."""

from __future__ import annotations

import time

from edge_mnv2 import progress
from edge_mnv2.tuning.database import mean_run_secs, top_records


def progress_callback(total: int, done_before: int, tasks, desc: str = "  trials"):
    """A MetaSchedule measure callback that drives a progress bar."""
    from tqdm.auto import tqdm
    from tvm.ir.utils import derived_object
    from tvm.s_tir import meta_schedule as ms

    bar = tqdm(
        total=total,
        initial=done_before,
        desc=desc,
        unit="trial",
        dynamic_ncols=True,
        disable=True if progress.is_quiet() else None,
    )
    best: dict[int, float] = {}
    started = time.perf_counter()

    @derived_object
    class Progress(ms.measure_callback.PyMeasureCallback):
        def apply(self, task_scheduler, task_id, measure_candidates, builder_results, runner_results):
            for result in runner_results:
                if result.run_secs:
                    secs = sum(float(s) for s in result.run_secs) / len(result.run_secs)
                    best[task_id] = min(best.get(task_id, secs), secs)
            bar.update(len(runner_results))
            done = bar.n - done_before
            left = (total - bar.n) * (time.perf_counter() - started) / max(done, 1)
            estimate = sum(best[i] * tasks[i].weight for i in best) * 1e3
            bar.set_postfix_str(
                f"{len(best)}/{len(tasks)} tasks, tuned part {estimate:.2f} ms, ~{left / 60:.0f} min left"
            )

    return Progress(), bar


def largest_first_scheduler(database=None):
    """A MetaSchedule task scheduler that commits every round and spends trials where the time goes.

    MetaSchedule's own schedulers collect a task's measurements only when they return to that task:
    the gradient scheduler first gives each of ~33 tasks a round, so the first ~500 measured trials
    sit in memory and a run killed then loses them all. This one joins the last round before choosing
    the next (so the database always holds everything measured but the round in flight), tries every
    task the database has no record of, largest share of the model's FLOPs first, then picks the task
    with the largest share of the estimated latency, discounted by how many of its recent rounds brought
    no improvement. Best latencies start from the database, so a re-run goes on where the last one
    stopped instead of spending a round on every task again.
    """
    from tvm.ir.utils import derived_object
    from tvm.s_tir import meta_schedule as ms

    @derived_object
    class LargestFirst(ms.task_scheduler.PyTaskScheduler):
        def __init__(self):
            super().__init__()
            self.pending: int | None = None
            self.best: dict[int, float] = {}  # task -> best mean run seconds
            self.stale: dict[int, int] = {}  # task -> rounds in a row without improvement
            self.seeded = False

        @property
        def tasks(self):
            return self._outer().tasks_  # the C++ scheduler's task records

        def _seed(self) -> None:
            """Best measured latency of every task the database already holds records for."""
            self.seeded = True
            if database is None:
                return
            for i, task in enumerate(self.tasks):
                top = top_records(database, task.ctx.mod)
                if top and mean_run_secs(top[0]) is not None:
                    self.best[i] = mean_run_secs(top[0])

        def _join(self) -> None:
            task_id, self.pending = self.pending, None
            if task_id is None or self.tasks[task_id].is_terminated:
                return  # terminated tasks have nothing in flight (MetaSchedule joined or never sent)
            secs = [
                sum(float(s) for s in r.run_secs) / len(r.run_secs)
                for r in self.join_running_task(task_id)
                if r.run_secs and r.error_msg is None
            ]
            before = self.best.get(task_id)
            if secs and (before is None or min(secs) < before * 0.995):
                self.best[task_id] = min(secs + ([before] if before else []))
                self.stale[task_id] = 0
            else:
                self.stale[task_id] = self.stale.get(task_id, 0) + 1

        def next_task_id(self) -> int:
            if not self.seeded:
                self._seed()
            self._join()
            tasks = self.tasks
            live = [i for i, t in enumerate(tasks) if not t.is_terminated]
            if not live:
                return -1
            untried = [i for i in live if i not in self.best and i not in self.stale]
            if untried:
                choice = max(untried, key=lambda i: tasks[i].flop * tasks[i].task_weight)
            else:

                def share(i: int) -> float:
                    latency = self.best.get(i, 1.0) * tasks[i].task_weight  # never ran: try again
                    return latency * 0.5 ** self.stale.get(i, 0)

                choice = max(live, key=share)
            self.pending = choice
            return choice

    return LargestFirst()
