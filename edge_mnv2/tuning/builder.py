"""A MetaSchedule builder whose worker processes outlive a round of candidates.

MetaSchedule's ``LocalBuilder`` starts new worker processes for every round it builds. Before its
first build, each worker imports TVM's tensor intrinsics (:mod:`edge_mnv2.compile.tensor_intrin`): over
a minute, against well under a second to compile one candidate, so most of a round's build time was
that import, paid again every round. These workers import them once, when they start, the cheap way,
and are recycled after ``BUILDS_PER_WORKER`` builds (``LocalBuilder`` restarts its workers because
they leak memory over many builds).

The pool is shared by the tuning runs of one process (tuning several models from Python, or a log
topped up run after run), so each run does not pay the workers' start again."""

from __future__ import annotations

import atexit
import os
from typing import Callable

from edge_mnv2.compile.tensor_intrin import import_tensor_intrinsics as warm_up

BUILDS_PER_WORKER = 256

# (timeout, workers, cross compiler the workers inherited from the environment) -> PopenPoolExecutor
_POOLS: dict[tuple, object] = {}


def _shared_pool(timeout_sec: float, workers: int):
    """The process's pool of warmed-up build workers for this timeout and size, started on first use."""
    from tvm.support.popen_pool import PopenPoolExecutor

    # workers inherit the environment they start in, the cross compiler's name included
    key = (timeout_sec, workers, os.environ.get("EDGE_MNV2_CROSS_CXX"))
    if key not in _POOLS:
        _POOLS[key] = PopenPoolExecutor(
            max_workers=workers, timeout=timeout_sec, initializer=warm_up, maximum_process_uses=BUILDS_PER_WORKER
        )
    return _POOLS[key]


@atexit.register
def shutdown_pools() -> None:
    """Stop every shared build worker (at exit; a run killed by a signal kills its children itself)."""
    while _POOLS:
        _POOLS.popitem()[1].shutdown(wait=False)


def persistent_builder(timeout_sec: float, f_export: Callable[..., str] | None = None, max_workers: int | None = None):
    """A ``PyBuilder`` building candidates like ``LocalBuilder`` (same build and export functions, same
    per-candidate timeout) in a pool of long-lived, warmed-up worker processes, shared by the process's
    tuning runs."""
    from tvm.ir.utils import derived_object
    from tvm.s_tir.meta_schedule.builder import BuilderResult, PyBuilder
    from tvm.s_tir.meta_schedule.builder.local_builder import _serialize_params, _worker_func
    from tvm.support.popen_pool import StatusKind

    workers = max_workers or os.cpu_count() or 1

    @derived_object
    class PersistentBuilder(PyBuilder):
        def __init__(self):
            super().__init__()
            self.pool = _shared_pool(timeout_sec, workers)

        def build(self, build_inputs):
            jobs = [
                (
                    "s_tir.meta_schedule.builder.default_build",
                    f_export or "s_tir.meta_schedule.builder.default_export",
                    item.mod,
                    item.target,
                    _serialize_params(item.params),
                )
                for item in build_inputs
            ]
            results = []
            for outcome in self.pool.map_with_error_catching(lambda job: _worker_func(*job), jobs):
                if outcome.status == StatusKind.COMPLETE:
                    results.append(BuilderResult(outcome.value, None))
                elif outcome.status == StatusKind.TIMEOUT:
                    results.append(BuilderResult(None, f"build timed out after {timeout_sec:.0f} s"))
                else:
                    results.append(BuilderResult(None, f"build failed:\n{outcome.value}"))
            return results

    return PersistentBuilder()
