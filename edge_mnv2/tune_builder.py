"""A MetaSchedule builder whose worker processes outlive a round of candidates.

MetaSchedule's ``LocalBuilder`` starts new worker processes for every round it builds. Before its
first build, each worker imports ``tvm.s_tir.tensor_intrin``, which parses several hundred TVMScript
intrinsics and calls ``inspect.stack()`` for each: 30-40 s of CPU on a 2-core machine, against 1-2 s
to compile one candidate. So most of a round's build time was that import, paid again every round.
These workers import it once, when they start, and are recycled after ``BUILDS_PER_WORKER`` builds
(``LocalBuilder`` restarts its workers because they leak memory over many builds).
"""

from __future__ import annotations

import os
from typing import Callable

BUILDS_PER_WORKER = 64


def warm_up() -> None:
    """Import what every candidate build needs, once per worker process (no timeout applies)."""
    import tvm.s_tir.tensor_intrin  # noqa: F401  (the default build imports it on first use)


def persistent_builder(timeout_sec: float, f_export: Callable[..., str] | None = None,
                       max_workers: int | None = None):
    """A ``PyBuilder`` building candidates like ``LocalBuilder`` (same build and export functions, same
    per-candidate timeout) in a pool of long-lived, warmed-up worker processes."""
    from tvm.ir.utils import derived_object
    from tvm.s_tir.meta_schedule.builder import BuilderResult, PyBuilder
    from tvm.s_tir.meta_schedule.builder.local_builder import _serialize_params, _worker_func
    from tvm.support.popen_pool import PopenPoolExecutor, StatusKind

    workers = max_workers or os.cpu_count() or 1

    @derived_object
    class PersistentBuilder(PyBuilder):
        def __init__(self):
            super().__init__()
            self.pool = PopenPoolExecutor(max_workers=workers, timeout=timeout_sec, initializer=warm_up,
                                          maximum_process_uses=BUILDS_PER_WORKER)

        def build(self, build_inputs):
            jobs = [("s_tir.meta_schedule.builder.default_build", f_export or
                     "s_tir.meta_schedule.builder.default_export", item.mod, item.target,
                     _serialize_params(item.params)) for item in build_inputs]
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
