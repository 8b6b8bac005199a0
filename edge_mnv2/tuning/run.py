"""MetaSchedule auto-tuning into ``tuning_logs/<target>/<model>/``, resumable after any interruption.

The database is MetaSchedule's JSON pair (``database_workload.json``, ``database_tuning_record.json``),
appended to as each batch of candidates is measured, so a killed run loses nothing already measured.
A re-run counts what the log already holds and spends only the remaining trials, starting its
search from the best records so far. ``tuning.json`` beside them records what was tuned, for which
CPU, and every run's figures.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from edge_mnv2 import progress
from edge_mnv2.compile import relax_layout
from edge_mnv2.errors import EdgeMnv2Error
from edge_mnv2.remote.address import DeviceAddress
from edge_mnv2.signals import SIGNALS as TERMINATING
from edge_mnv2.signals import handled
from edge_mnv2.targets import TargetSpec
from edge_mnv2.tuning.builder import persistent_builder, warm_up
from edge_mnv2.tuning.database import (
    coverage,
    estimated_latency_ms,
    extract_tasks,
    focus_tasks,
    open_database,
    trials_spent,
)
from edge_mnv2.tuning.library import LIBRARY_KEY, measure_library, pending
from edge_mnv2.tuning.library import versions as library_versions
from edge_mnv2.tuning.logs import (
    FLUSH_KEY,
    FOCUS_KEY,
    LAYOUT_KEY,
    PREPACK_KEY,
    SEEDED_KEY,
    THREADS_KEY,
    detected_cpu,
    is_log,
    quantized_log_name,
    read_meta,
    tuning_log_path,
    write_meta,
)
from edge_mnv2.tuning.search import (
    POPULATION,
    TRIALS_PER_ROUND,
    FocusResult,
    metaschedule_logging,
    tune_all,
    tune_focused,
)
from edge_mnv2.tuning.seed import DEFAULT_TOP_K, check_source, seed_log
from edge_mnv2.tuning.settings import (
    cache_flush_for,
    evaluator_config,
    layout_for,
    measuring_threads,
    weight_prepack_for,
)

# MetaSchedule's 30 s defaults time out on a busy 2-core machine.
BUILD_TIMEOUT_S = 120.0
RUN_TIMEOUT_S = 60.0


def cross_export(library) -> str:
    """Export a candidate for an aarch64 device (picklable by reference for MetaSchedule's workers)."""
    import tempfile

    from tvm.support import cc

    path = os.path.join(tempfile.mkdtemp(prefix="edge-mnv2-ms-"), "candidate.so")
    library.export_library(path, fcompile=cc.cross_compiler(os.environ["EDGE_MNV2_CROSS_CXX"]))
    return path


INTERRUPTED_MESSAGE = (
    "edge-mnv2: interrupted; every measured trial is kept in the log, rerun the same command to continue"
)


@contextlib.contextmanager
def _ctrl_c_exits():
    """Ctrl-C (or SIGTERM, SIGHUP) while MetaSchedule runs ends the process at once, cleanly.

    A KeyboardInterrupt raised inside MetaSchedule's C++ loop (e.g. while its cost model trains)
    cannot unwind through it: the process dies in std::terminate. Python signal handlers run only
    between Python steps, never inside the database's C++ writes, and every measured candidate is
    already on disk, so exiting from the handler loses nothing. The builder's and runner's workers are
    killed first: a terminal's Ctrl-C reaches them too, a SIGTERM sent to this process alone does not.
    """

    def handler(signum, frame):
        from tvm.support.popen_pool import kill_child_processes

        print(f"\n{INTERRUPTED_MESSAGE}", file=sys.stderr, flush=True)
        kill_child_processes(os.getpid())
        os._exit(130)

    with handled(handler, (signal.SIGINT, *TERMINATING)):
        yield


@dataclass(frozen=True)
class TuneResult:
    log: Path
    trials_before: int
    trials_after: int
    tasks: int
    covered: int
    estimated_ms: float | None
    seconds: float
    seeded: int = 0  # of the new trials, schedules measured from --seed-from
    library: int = 0  # of the new trials, hand-written schedules measured (tuning.library)
    focused: tuple[FocusResult, ...] = ()  # with --tasks: each task searched, before and after
    seeded_from: Path | None = None  # the log seeded from: --seed-from, or another CPU's log


def tune_model(
    model_or_onnx: str,
    target: TargetSpec,
    trials: int,
    tracker: DeviceAddress | None = None,
    log_root: Path | None = None,
    checkpoint=None,
    quantize: str | None = None,
    calibration: str | None = None,
    weight_prepack: bool | None = None,
    seed_from: Path | None = None,
    seed_top: int = DEFAULT_TOP_K,
    cache_flush: bool | None = None,
    layout: str | None = None,
    focus: int | None = None,
    schedule_library: bool = True,
    population: int = POPULATION,
) -> TuneResult:
    """Tune the model's tasks for ``target`` until the log holds ``trials`` measured candidates.

    With ``quantize``, the int8 model's kernels are tuned, into the ``<architecture>.int8`` log.
    ``weight_prepack`` (None: the log's setting, else the target's) lets schedules choose the weights'
    layout; a log keeps the setting it was started with. ``seed_from`` (another log) first measures
    that log's ``seed_top`` best schedules of each task this log has no record of (see :mod:`edge_mnv2.tuning.seed`).
    ``cache_flush`` (None: the log's setting, else the target's) times candidates with cold caches (see
    ``evaluator_config``); ``layout`` (None: the log's, else the target's) is the data layout the model
    computes in (see ``relax_layout``). A log keeps the settings it was started with.

    ``focus`` (``--tasks N``) spends the trials on the N tasks with the largest share of the estimated
    latency, one after another, an equal part each, instead of letting the whole-model scheduler spread
    them: that scheduler gives up on a task after a few rounds without gain, and a task's own search,
    run to the end, finds what those rounds missed.

    ``schedule_library``: before searching, measure the hand-written schedules of :mod:`edge_mnv2.tuning.library` that
    fit the tasks, once per version of each (``tuning.json`` keeps which); they count as trials.

    ``population``: schedules per generation of the evolutionary search (``--population``).
    """
    from tvm.s_tir import meta_schedule as ms

    from edge_mnv2.compile.frontend import load_source, relax_module

    if trials < 1:
        raise EdgeMnv2Error(f"--trials must be at least 1, got {trials}")
    if focus is not None and focus < 1:
        raise EdgeMnv2Error(f"--tasks must be at least 1, got {focus}")
    if population < TRIALS_PER_ROUND:
        raise EdgeMnv2Error(
            f"--population must be at least {TRIALS_PER_ROUND}, got {population} (the candidates "
            "measured per round are drawn from it)"
        )
    if seed_from is not None:
        check_source(Path(seed_from), seed_top)
    proto, model_name = load_source(model_or_onnx, checkpoint)
    tvm_target = target.tvm_target()
    warm_up()  # MetaSchedule's search imports TVM's tensor intrinsics too: the cheap way, first
    if "num-cores" not in target.resolved_tvm():
        raise EdgeMnv2Error(f"target {target.name!r} needs 'num-cores' in its [tvm] table for tuning")
    if target.cross_compiler and tracker is None:
        raise EdgeMnv2Error(
            f"target {target.name!r} runs on another machine: tune it through a device with "
            "--tracker HOST:PORT --key KEY"
        )
    if quantize:
        from edge_mnv2.compile.frontend import tensor_info
        from edge_mnv2.export import read_metadata
        from edge_mnv2.quantize import kernels_for, quantized_module

        shape = tuple(tensor_info(proto.graph.input[0], Path(str(model_or_onnx)))["shape"])
        mod, _, _ = quantized_module(read_metadata(proto), quantize, calibration, shape, kernels_for(tvm_target))
        model_name = quantized_log_name(model_name, quantize)
    path, other_cpu = tuning_log_path(target, model_name, log_root)
    if other_cpu is not None and seed_from is None:
        # this CPU's log starts from the schedules the other CPU's log found best, measured here
        if not is_log(path):
            progress.note(
                f"{other_cpu} was tuned on {read_meta(other_cpu)['tvm_target']['mcpu']}; this "
                f"CPU ({detected_cpu(target)}) gets a log of its own, {path}, started from that "
                f"log's best {seed_top} schedules per task"
            )
        seed_from = other_cpu
        check_source(Path(seed_from), seed_top)
    data_layout = layout_for(path, target, quantize, layout)
    if not quantize:
        mod = relax_layout.convert(relax_module(proto), data_layout)
    prepack = weight_prepack_for(path, target, quantize, weight_prepack)
    flush = cache_flush_for(path, target, cache_flush)
    threads = None if tracker is not None else measuring_threads(path)
    database = open_database(path)
    with progress.stage("extracting tuning tasks"):
        tasks = extract_tasks(mod, tvm_target, prepack)
    before = trials_spent(path, database, tasks)
    remaining = trials - before
    started = time.perf_counter()
    seeded = library = 0
    focused: tuple[FocusResult, ...] = ()
    if remaining > 0:
        if tracker is not None:
            config = ms.runner.RPCConfig(
                tracker_host=tracker.host, tracker_port=tracker.port, tracker_key=tracker.key, session_timeout_sec=600
            )
            runner = ms.runner.RPCRunner(config, evaluator_config(flush, remote=True))
        else:
            runner = ms.runner.LocalRunner(
                timeout_sec=RUN_TIMEOUT_S, evaluator_config=evaluator_config(flush, remote=False)
            )
        export = None
        if target.cross_compiler:
            os.environ["EDGE_MNV2_CROSS_CXX"] = target.cross_compiler
            export = cross_export
        builder = persistent_builder(BUILD_TIMEOUT_S, export)
        # MetaSchedule's own per-task logs (why a candidate failed) go beside the cache, not into the log.
        from edge_mnv2.remote.emulator import cache_dir

        work = cache_dir() / "tuning-work" / target.name / model_name
        shutil.rmtree(work, ignore_errors=True)
        metaschedule_logging()
        # the CPU and target go on record before the first trial: an interrupted run keeps them too
        write_meta(
            path,
            model=model_name,
            target=target.name,
            tvm_target=target.resolved_tvm(),
            tasks=len(tasks),
            **{PREPACK_KEY: prepack, FLUSH_KEY: flush, LAYOUT_KEY: data_layout},
            **({THREADS_KEY: threads} if threads else {}),
        )
        with _ctrl_c_exits():
            if seed_from is not None:
                with progress.stage(f"seeding {path} from {seed_from} (best {seed_top} schedules per task)"):
                    seeded = seed_log(
                        Path(seed_from), database, tasks, tvm_target, target.device, builder, runner, seed_top
                    )
            todo = pending(read_meta(path).get(LIBRARY_KEY)) if schedule_library else ()
            if todo:
                names = ", ".join(hand.name for hand in todo)
                with progress.stage(f"measuring hand-written schedules (tuning.library: {names})"):
                    library = measure_library(database, tasks, tvm_target, target.device, builder, runner, todo)
                write_meta(path, **{LIBRARY_KEY: library_versions()})
            held = trials_spent(path, database, tasks)
            left = trials - held
            # seed: a re-run samples afresh instead of repeating the last run's draws
            search = dict(
                work=work,
                database=database,
                builder=builder,
                runner=runner,
                target=tvm_target,
                seed=held,
                population=population,
            )
            if left > 0 and focus:
                focused = tune_focused(tasks, focus_tasks(database, tasks), focus, left, **search)
            elif left > 0:
                tune_all(mod, prepack, tasks, left, held, trials, **search)
    after = trials_spent(path, database, tasks)
    if remaining > 0 and after == before:
        raise EdgeMnv2Error(
            f"no candidate of {remaining} built and ran successfully on "
            f"{tracker.describe() if tracker else 'this machine'}; MetaSchedule's logs are in "
            f"{work / 'logs'}"
        )
    covered, total = coverage(database, tasks)
    estimate = estimated_latency_ms(database, tasks)
    _record_run(
        path,
        model_name,
        target,
        trials,
        before,
        after,
        covered,
        total,
        estimate,
        time.perf_counter() - started,
        prepack,
        flush,
        data_layout,
        seeded_from={"log": str(seed_from), "top": seed_top, "seeded": seeded} if seed_from else None,
        focused=focused,
        library=library,
        population=population,
    )
    return TuneResult(
        path,
        before,
        after,
        total,
        covered,
        estimate,
        time.perf_counter() - started,
        seeded,
        library,
        focused,
        Path(seed_from) if seed_from else None,
    )


def _record_run(
    path: Path,
    model: str,
    target: TargetSpec,
    trials: int,
    before: int,
    after: int,
    covered: int,
    tasks: int,
    estimate: float | None,
    seconds: float,
    prepack: bool,
    flush: bool,
    layout: str,
    seeded_from: dict | None = None,
    focused: tuple[FocusResult, ...] = (),
    library: int = 0,
    population: int = POPULATION,
) -> None:
    run = {
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "trials_requested": trials,
        "records_before": before,
        "records_after": after,
        "estimated_ms": estimate,
        "seconds": round(seconds, 1),
        "population": population,
    }
    if seeded_from:  # provenance: which log the run's first schedules came from
        run[SEEDED_KEY] = seeded_from
    if library:  # hand-written schedules measured in this run
        run[LIBRARY_KEY] = library
    if focused:  # with --tasks: what each task's own search found
        run[FOCUS_KEY] = [dataclasses.asdict(f) for f in focused]
    write_meta(
        path,
        run=run,
        model=model,
        target=target.name,
        tvm_target=target.resolved_tvm(),
        tasks=tasks,
        covered=covered,
        records=after,
        estimated_ms=estimate,
        **{PREPACK_KEY: prepack, FLUSH_KEY: flush, LAYOUT_KEY: layout},
    )
