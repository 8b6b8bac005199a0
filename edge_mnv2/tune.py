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
import json
import os
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from edge_mnv2 import progress, relax_layout, runtime_threads
from edge_mnv2.errors import EdgeMnv2Error
from edge_mnv2.remote.address import DeviceAddress
from edge_mnv2.targets import TargetSpec
from edge_mnv2.tune_builder import persistent_builder, warm_up
from edge_mnv2.tune_library import LIBRARY_KEY, measure_library, pending
from edge_mnv2.tune_library import versions as library_versions
from edge_mnv2.tune_seed import DEFAULT_TOP_K, check_source, seed_log

LOGS_ENV = "EDGE_MNV2_TUNING_LOGS"
_REPO_LOGS = Path(__file__).resolve().parent.parent / "tuning_logs"
DB_FILES = ("database_workload.json", "database_tuning_record.json")
META_FILE = "tuning.json"
PREPACK_KEY = "weight_prepack"   # tuning.json and the target's [tuning] table
THREADS_KEY = "runtime_threads"  # tuning.json: the threads local measurements ran on
FLUSH_KEY = "cache_flush"        # tuning.json and the target's [tuning] table: measured with cold caches
LAYOUT_KEY = "layout"            # tuning.json and the target's [tuning] table: the layout kernels compute in
FOCUS_KEY = "focused"            # a tuning.json run entry: the --tasks run's tasks, before and after
SEEDED_KEY = "seeded_from"       # a tuning.json run entry: the --seed-from log, --seed-top, schedules measured
# Runs per candidate measured with flushed caches: one run per repeat (the flush comes before each
# repeat), so a repeat is one cold run; their mean is the record's latency.
COLD_REPEATS = 10
# MetaSchedule's 30 s defaults time out on a busy 2-core machine.
BUILD_TIMEOUT_S = 120.0
# Candidates per task per round: MetaSchedule gives every task one round before it follows the gradient,
# so small rounds reach all ~33 tasks of a MobileNetV2 sooner (64 would need ~2000 trials for that).
TRIALS_PER_ROUND = 16
RUN_TIMEOUT_S = 60.0


def logs_root() -> Path:
    return Path(os.environ.get(LOGS_ENV, _REPO_LOGS))


CPU_SEP = "@"   # tuning_logs/host@znver5/: the host's logs for a CPU other than the one host/ was tuned on


def log_dir(target: str, model: str, root: Path | None = None) -> Path:
    return (root or logs_root()) / target / model


def is_log(path: Path) -> bool:
    """Whether ``path`` holds a MetaSchedule database (workloads and records)."""
    return all((path / name).is_file() for name in DB_FILES)


def detected_cpu(target: TargetSpec) -> str | None:
    """The CPU a target's logs are kept for, where its file leaves the CPU to detection (``mcpu =
    "native"``, the host): this machine's. None where the file names the CPU: the target is the CPU."""
    if target.tvm.get("mcpu") != "native":
        return None
    return target.resolved_tvm().get("mcpu") or None


def log_targets(target: str, cpu: str | None = None) -> list[str]:
    """The folders of ``tuning_logs/`` that may hold ``target``'s logs, best fit first: this CPU's own
    (``host@znver5``), then the target's (``host``, tuned on whichever CPU its ``tuning.json`` names)."""
    return [f"{target}{CPU_SEP}{cpu}", target] if cpu else [target]


def find_log(target: str, model: str | None, root: Path | None = None, cpu: str | None = None) -> Path | None:
    """The log for (target, model): the model's own, else its architecture's (``<arch>.<tag>`` -> ``<arch>``),
    in this CPU's folder (``<target>@<cpu>``) before the target's.

    Weights do not change the tuned workloads, so a tagged model uses its architecture's log; a log of
    another architecture or target is never looked at.
    """
    if not model:
        return None
    for folder in log_targets(target, cpu):
        for name in (model, architecture_of(model)):
            path = log_dir(folder, name, root)
            if is_log(path):
                return path
    return None


def tuning_log_path(target: TargetSpec, model: str, root: Path | None = None) -> tuple[Path, Path | None]:
    """Where ``tune`` keeps (target, model)'s log, and the log of another CPU to seed it from, if any.

    The target's own folder holds the first log tuned; a detected CPU other than the one that log names
    gets a log of its own in ``<target>@<cpu>``, so records timed on two CPUs never mix in one log. The
    other CPU's log stays its seed on every run (seeding skips tasks with records), so a first run
    killed while seeding goes on seeding when rerun.
    """
    shared = log_dir(target.name, model, root)
    cpu = detected_cpu(target)
    if cpu is None:
        return shared, None
    own = log_dir(f"{target.name}{CPU_SEP}{cpu}", model, root)
    tuned_for = read_meta(shared).get("tvm_target", {}).get("mcpu")
    other = shared if tuned_for not in (None, cpu) and is_log(shared) else None
    if own.is_dir() or other is not None:
        return own, other
    return shared, None


def quantized_log_name(model: str, scheme: str) -> str:
    """``mobilenet_v2_0.35_96.int8`` for an int8 build of ``mobilenet_v2_0.35_96[.shapes]``: the integer
    kernels depend on the architecture, not on the weights' values."""
    return f"{architecture_of(model)}.{scheme}"


def architecture_of(model: str) -> str:
    """``mobilenet_v2_0.35_96`` for ``mobilenet_v2_0.35_96.shapes`` (the registry knows the tag)."""
    from edge_mnv2.models import get_spec

    try:
        spec = get_spec(model)
    except EdgeMnv2Error:
        return model
    tag = getattr(spec.pretrained, "tag", None)
    return model[: -len(tag) - 1] if tag and model.endswith(f".{tag}") else model


def repair(path: Path) -> int:
    """Drop a torn last line (a run killed mid-write) from the database files; returns lines dropped."""
    dropped = 0
    for name in DB_FILES:
        file = path / name
        if not file.is_file():
            continue
        lines = file.read_text().splitlines()
        good = []
        for line in lines:
            try:
                json.loads(line)
                good.append(line)
            except json.JSONDecodeError:
                dropped += 1
        if len(good) != len(lines):
            file.write_text("".join(f"{line}\n" for line in good))
    return dropped


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
    constants once, at compile time (see ``compile.cpu_pipeline``).
    """
    from tvm import relax

    fused = relax.get_pipeline("zero")(mod)
    return relax.transform.AttachAttrLayoutFreeBuffers()(fused) if weight_prepack else fused


def extract_tasks(mod, target, weight_prepack: bool = False):
    from tvm.s_tir import meta_schedule as ms

    return ms.relax_integration.extract_tasks(fused_module(mod, weight_prepack), target)


def read_meta(path: Path) -> dict:
    """The log's ``tuning.json`` ({} when it has none)."""
    meta_path = path / META_FILE
    return json.loads(meta_path.read_text()) if meta_path.is_file() else {}


def _log_setting(path: Path, key: str, legacy):
    """A setting a log was started with: ``legacy`` for logs from before the setting existed, None for a
    log not started yet."""
    meta = read_meta(path)
    if key in meta:
        return meta[key]
    records = path / DB_FILES[1]
    return legacy if meta or (records.is_file() and records.stat().st_size) else None


def log_weight_prepack(path: Path) -> bool | None:
    """Whether the log at ``path`` was tuned with prepacked weights; None for a log not started yet."""
    setting = _log_setting(path, PREPACK_KEY, False)   # older logs hold plain-layout kernels
    return None if setting is None else bool(setting)


def log_cache_flush(path: Path) -> bool | None:
    """Whether the log at ``path`` was measured with flushed caches; None for a log not started yet."""
    setting = _log_setting(path, FLUSH_KEY, False)     # older logs were measured warm
    return None if setting is None else bool(setting)


def log_layout(path: Path) -> str | None:
    """The data layout the log at ``path`` was tuned in; None for a log not started yet."""
    return _log_setting(path, LAYOUT_KEY, relax_layout.DEFAULT)   # older logs: NCHW as imported


def layout_for(path: Path, target: TargetSpec, quantize: str | None, asked: str | None) -> str:
    """The data layout of a tuning run into ``path``: the log's own, else ``asked``, else the target's
    ``[tuning] layout``, else NCHW (int8 builds choose their own layout, so always NCHW here)."""
    existing = log_layout(path)
    if asked is not None:
        relax_layout.check_layout(asked)
        if quantize and asked != relax_layout.DEFAULT:
            raise EdgeMnv2Error(f"--layout {asked} is for fp32 builds: the int8 kernels choose their own layout")
        if existing is not None and asked != existing:
            raise EdgeMnv2Error(f"the log {path} was tuned in {existing}, so --layout {asked} cannot continue "
                                "it; leave the flag out, or start a new log")
        return asked
    if existing is not None:
        return existing
    if quantize:
        return relax_layout.DEFAULT
    return relax_layout.check_layout(target.tuning.get(LAYOUT_KEY, relax_layout.DEFAULT))


def _kept_setting(path: Path, existing: bool | None, asked: bool | None, flag: str, what: str) -> bool | None:
    """The log's own setting, refusing a flag that asks for the other one (records would not compare)."""
    if existing is not None and asked is not None and asked != existing:
        raise EdgeMnv2Error(f"the log {path} was tuned {'with' if existing else 'without'} {what}, so "
                            f"{'--' if asked else '--no-'}{flag} cannot continue it; leave the flag out, or "
                            "start a new log (--seed-from can carry its best schedules over)")
    return existing


def weight_prepack_for(path: Path, target: TargetSpec, quantize: str | None, asked: bool | None) -> bool:
    """Prepacking for a tuning run into ``path``: the log's own setting, else ``asked``, else the target's
    ``[tuning] weight_prepack`` (int8 kernels pack their weights themselves, so never for them)."""
    existing = _kept_setting(path, log_weight_prepack(path), asked, "weight-prepack", "prepacked weights")
    if existing is not None:
        return existing
    if asked:
        if quantize:
            raise EdgeMnv2Error("--weight-prepack is for fp32 builds: the int8 kernels pack their own weights")
        if target.device != "cpu":
            raise EdgeMnv2Error(f"--weight-prepack is for CPU targets; {target.name!r} runs on {target.device}")
    if asked is not None:
        return asked
    return bool(target.tuning.get(PREPACK_KEY, False)) and not quantize and target.device == "cpu"


def cache_flush_for(path: Path, target: TargetSpec, asked: bool | None) -> bool:
    """Cold-cache measurement for a tuning run into ``path``: the log's own setting, else ``asked``, else
    the target's ``[tuning] cache_flush``. CPU targets only: it flushes the CPU's caches."""
    existing = _kept_setting(path, log_cache_flush(path), asked, "cache-flush", "flushed caches")
    if existing is not None:
        return existing
    if asked and target.device != "cpu":
        raise EdgeMnv2Error(f"--cache-flush is for CPU targets; {target.name!r} runs on {target.device}")
    if asked is not None:
        return asked
    return bool(target.tuning.get(FLUSH_KEY, False)) and target.device == "cpu"


def evaluator_config(cache_flush: bool, remote: bool):
    """How MetaSchedule's runner times a candidate.

    Warm: a few back-to-back runs (locally repeated for at least 50 ms), so the kernel's weights and
    activations stay in cache. Cold: each run after TVM's ``cache_flush_cpu_non_first_arg`` has flushed
    every argument but the input from the CPU's caches, as in a whole model, where each kernel's
    weights were last read a whole inference ago and its output buffer is not in cache either.
    """
    from tvm.s_tir import meta_schedule as ms

    if cache_flush:
        return ms.runner.EvaluatorConfig(number=1, repeat=COLD_REPEATS, min_repeat_ms=0,
                                         enable_cpu_cache_flush=True)
    if remote:
        return ms.runner.EvaluatorConfig(number=3, repeat=1, min_repeat_ms=0)
    return ms.runner.EvaluatorConfig(number=3, repeat=1, min_repeat_ms=50, enable_cpu_cache_flush=False)


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
    from edge_mnv2.tune_prune import pruned_count

    return records_for(database, tasks) + pruned_count(path)


def records_for(database, tasks) -> int:
    """Measured candidates the database holds for these tasks."""
    return sum(trials_spent_on(database, t) for t in tasks)


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


@dataclass(frozen=True)
class FocusResult:
    """One task of a ``--tasks`` run: its best latency (ms, one call) before and after, and trials spent."""
    task: str
    weight: int
    before_ms: float | None
    after_ms: float | None
    trials: int


def cross_export(library) -> str:
    """Export a candidate for an aarch64 device (picklable by reference for MetaSchedule's workers)."""
    import tempfile

    from tvm.support import cc

    path = os.path.join(tempfile.mkdtemp(prefix="edge-mnv2-ms-"), "candidate.so")
    library.export_library(path, fcompile=cc.cross_compiler(os.environ["EDGE_MNV2_CROSS_CXX"]))
    return path


def _progress_callback(total: int, done_before: int, tasks, desc: str = "  trials"):
    """A MetaSchedule measure callback that drives a progress bar."""
    from tqdm.auto import tqdm
    from tvm.s_tir import meta_schedule as ms
    from tvm.ir.utils import derived_object

    bar = tqdm(total=total, initial=done_before, desc=desc, unit="trial", dynamic_ncols=True,
               disable=True if progress.is_quiet() else None)
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
            bar.set_postfix_str(f"{len(best)}/{len(tasks)} tasks, tuned part {estimate:.2f} ms, "
                                f"~{left / 60:.0f} min left")

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
            self.best: dict[int, float] = {}       # task -> best mean run seconds
            self.stale: dict[int, int] = {}        # task -> rounds in a row without improvement
            self.seeded = False

        @property
        def tasks(self):
            return self._outer().tasks_   # the C++ scheduler's task records

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
                return   # terminated tasks have nothing in flight (MetaSchedule joined or never sent)
            secs = [sum(float(s) for s in r.run_secs) / len(r.run_secs)
                    for r in self.join_running_task(task_id) if r.run_secs and r.error_msg is None]
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
                    latency = self.best.get(i, 1.0) * tasks[i].task_weight   # never ran: try again
                    return latency * 0.5 ** self.stale.get(i, 0)
                choice = max(live, key=share)
            self.pending = choice
            return choice

    return LargestFirst()


def _metaschedule_logging() -> None:
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


INTERRUPTED_MESSAGE = ("edge-mnv2: interrupted; every measured trial is kept in the log, rerun the same command "
                       "to continue")


@contextlib.contextmanager
def _ctrl_c_exits():
    """Ctrl-C while MetaSchedule runs ends the process at once, cleanly.

    A KeyboardInterrupt raised inside MetaSchedule's C++ loop (e.g. while its cost model trains)
    cannot unwind through it: the process dies in std::terminate. Python signal handlers run only
    between Python steps, never inside the database's C++ writes, and every measured candidate is
    already on disk, so exiting from the handler loses nothing.
    """
    def handler(signum, frame):
        print(f"\n{INTERRUPTED_MESSAGE}", file=sys.stderr, flush=True)
        os._exit(130)

    if threading.current_thread() is not threading.main_thread():   # only the main thread gets signals
        yield
        return
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@dataclass(frozen=True)
class TuneResult:
    log: Path
    trials_before: int
    trials_after: int
    tasks: int
    covered: int
    estimated_ms: float | None
    seconds: float
    seeded: int = 0   # of the new trials, schedules measured from --seed-from
    library: int = 0  # of the new trials, hand-written schedules measured (tune_library)
    focused: tuple[FocusResult, ...] = ()   # with --tasks: each task searched, before and after
    seeded_from: Path | None = None   # the log seeded from: --seed-from, or another CPU's log


def tune_model(model_or_onnx: str, target: TargetSpec, trials: int, tracker: DeviceAddress | None = None,
               log_root: Path | None = None, checkpoint=None, quantize: str | None = None,
               calibration: str | None = None, weight_prepack: bool | None = None,
               seed_from: Path | None = None, seed_top: int = DEFAULT_TOP_K,
               cache_flush: bool | None = None, layout: str | None = None,
               focus: int | None = None, schedule_library: bool = True) -> TuneResult:
    """Tune the model's tasks for ``target`` until the log holds ``trials`` measured candidates.

    With ``quantize``, the int8 model's kernels are tuned, into the ``<architecture>.int8`` log.
    ``weight_prepack`` (None: the log's setting, else the target's) lets schedules choose the weights'
    layout; a log keeps the setting it was started with. ``seed_from`` (another log) first measures
    that log's ``seed_top`` best schedules of each task this log has no record of (see ``tune_seed``).
    ``cache_flush`` (None: the log's setting, else the target's) times candidates with cold caches (see
    ``evaluator_config``); ``layout`` (None: the log's, else the target's) is the data layout the model
    computes in (see ``relax_layout``). A log keeps the settings it was started with.

    ``focus`` (``--tasks N``) spends the trials on the N tasks with the largest share of the estimated
    latency, one after another, an equal part each, instead of letting the whole-model scheduler spread
    them: that scheduler gives up on a task after a few rounds without gain, and a task's own search,
    run to the end, finds what those rounds missed.

    ``schedule_library``: before searching, measure the hand-written schedules of ``tune_library`` that
    fit the tasks, once per version of each (``tuning.json`` keeps which); they count as trials.
    """
    from tvm.s_tir import meta_schedule as ms

    from edge_mnv2.compile import load_source, relax_module

    if trials < 1:
        raise EdgeMnv2Error(f"--trials must be at least 1, got {trials}")
    if focus is not None and focus < 1:
        raise EdgeMnv2Error(f"--tasks must be at least 1, got {focus}")
    if seed_from is not None:
        check_source(Path(seed_from), seed_top)
    proto, model_name = load_source(model_or_onnx, checkpoint)
    tvm_target = target.tvm_target()
    warm_up()   # MetaSchedule's search imports TVM's tensor intrinsics too: the cheap way, first
    if "num-cores" not in target.resolved_tvm():
        raise EdgeMnv2Error(f"target {target.name!r} needs 'num-cores' in its [tvm] table for tuning")
    if target.cross_compiler and tracker is None:
        raise EdgeMnv2Error(f"target {target.name!r} runs on another machine: tune it through a device with "
                            "--tracker HOST:PORT --key KEY")
    if quantize:
        from edge_mnv2.compile import tensor_info
        from edge_mnv2.export import read_metadata
        from edge_mnv2.quantize import kernels_for, quantized_module

        shape = tuple(tensor_info(proto.graph.input[0], Path(str(model_or_onnx)))["shape"])
        mod, _, _ = quantized_module(read_metadata(proto), quantize, calibration, shape, kernels_for(tvm_target))
        model_name = quantized_log_name(model_name, quantize)
    path, other_cpu = tuning_log_path(target, model_name, log_root)
    if other_cpu is not None and seed_from is None:
        # this CPU's log starts from the schedules the other CPU's log found best, measured here
        if not is_log(path):
            progress.note(f"{other_cpu} was tuned on {read_meta(other_cpu)['tvm_target']['mcpu']}; this "
                          f"CPU ({detected_cpu(target)}) gets a log of its own, {path}, started from that "
                          f"log's best {seed_top} schedules per task")
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
            config = ms.runner.RPCConfig(tracker_host=tracker.host, tracker_port=tracker.port,
                                         tracker_key=tracker.key, session_timeout_sec=600)
            runner = ms.runner.RPCRunner(config, evaluator_config(flush, remote=True))
        else:
            runner = ms.runner.LocalRunner(timeout_sec=RUN_TIMEOUT_S,
                                           evaluator_config=evaluator_config(flush, remote=False))
        export = None
        if target.cross_compiler:
            os.environ["EDGE_MNV2_CROSS_CXX"] = target.cross_compiler
            export = cross_export
        builder = persistent_builder(BUILD_TIMEOUT_S, export)
        # MetaSchedule's own per-task logs (why a candidate failed) go beside the cache, not into the log.
        from edge_mnv2.remote.emulator import cache_dir

        work = cache_dir() / "tuning-work" / target.name / model_name
        shutil.rmtree(work, ignore_errors=True)
        _metaschedule_logging()
        # the CPU and target go on record before the first trial: an interrupted run keeps them too
        write_meta(path, model=model_name, target=target.name, tvm_target=target.resolved_tvm(),
                   tasks=len(tasks), **{PREPACK_KEY: prepack, FLUSH_KEY: flush, LAYOUT_KEY: data_layout},
                   **({THREADS_KEY: threads} if threads else {}))
        with _ctrl_c_exits():
            if seed_from is not None:
                with progress.stage(f"seeding {path} from {seed_from} (best {seed_top} schedules per task)"):
                    seeded = seed_log(Path(seed_from), database, tasks, tvm_target, target.device, builder,
                                      runner, seed_top)
            todo = pending(read_meta(path).get(LIBRARY_KEY)) if schedule_library else ()
            if todo:
                names = ", ".join(hand.name for hand in todo)
                with progress.stage(f"measuring hand-written schedules (tune_library: {names})"):
                    library = measure_library(database, tasks, tvm_target, target.device, builder, runner, todo)
                write_meta(path, **{LIBRARY_KEY: library_versions()})
            held = trials_spent(path, database, tasks)
            left = trials - held
            search = dict(work=work, database=database, builder=builder, runner=runner, target=tvm_target,
                          seed=held)   # a re-run samples afresh instead of repeating the last run's draws
            if left > 0 and focus:
                focused = _tune_focused(tasks, focus_tasks(database, tasks), focus, left, **search)
            elif left > 0:
                _tune_all(mod, prepack, tasks, left, held, trials, **search)
    after = trials_spent(path, database, tasks)
    if remaining > 0 and after == before:
        raise EdgeMnv2Error(f"no candidate of {remaining} built and ran successfully on "
                            f"{tracker.describe() if tracker else 'this machine'}; MetaSchedule's logs are in "
                            f"{work / 'logs'}")
    covered, total = coverage(database, tasks)
    estimate = estimated_latency_ms(database, tasks)
    _record_run(path, model_name, target, trials, before, after, covered, total, estimate,
                time.perf_counter() - started, prepack, flush, data_layout,
                seeded_from={"log": str(seed_from), "top": seed_top, "seeded": seeded} if seed_from else None,
                focused=focused, library=library)
    return TuneResult(path, before, after, total, covered, estimate, time.perf_counter() - started, seeded,
                      library, focused, Path(seed_from) if seed_from else None)


def _tune_all(mod, prepack: bool, tasks, left: int, held: int, trials: int, *, work: Path, database, builder,
              runner, target, seed: int) -> None:
    """Spend ``left`` trials over all of the model's tasks, largest share first (``largest_first_scheduler``)."""
    from tvm.s_tir import meta_schedule as ms

    callback, bar = _progress_callback(trials, held, tasks)
    _metaschedule_logging()
    with progress.stage(f"tuning {len(tasks)} tasks, {left} trials ({held} already in the log)"):
        try:
            ms.relax_integration.tune_relax(
                mod=fused_module(mod, prepack), params={}, target=target, work_dir=str(work),
                max_trials_global=left, num_trials_per_iter=min(TRIALS_PER_ROUND, left),
                max_trials_per_task=max(64, 4 * trials // max(len(tasks), 1)), database=database,
                builder=builder, runner=runner,
                measure_callbacks=[*ms.measure_callback.MeasureCallback.create("default"), callback],
                task_scheduler=largest_first_scheduler(database), seed=seed)
        finally:
            bar.close()


def _tune_focused(tasks, ranking: list[int], count: int, left: int, *, work: Path, database, builder,
                  runner, target, seed: int) -> tuple[FocusResult, ...]:
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
            print(f"  {unspent} trials the {count} largest tasks could not spend go to the next largest, "
                  f"{task.task_name}", file=sys.stderr, flush=True)
        # an equal part of what is left among the chosen; past them, all of it
        budget = unspent // max(count - k, 1)
        if budget < 1:
            continue
        chosen = max(count, k + 1)
        before_ms = best_ms(database, task)
        spent = trials_spent_on(database, task)
        contexts, weights = ms.relax_integration.extracted_tasks_to_tune_contexts(
            extracted_tasks=[task], work_dir=str(work), seed=seed + k)
        callback, bar = _progress_callback(budget, 0, [task], desc=f"  {k + 1}/{chosen} {task.task_name}")
        was = "untuned" if before_ms is None else f"{before_ms:.4f} ms x {task.weight}"
        _metaschedule_logging()
        with progress.stage(f"task {k + 1}/{chosen} {task.task_name} ({was}), {budget} trials"):
            try:
                ms.tune.tune_tasks(tasks=contexts, task_weights=weights, work_dir=str(work),
                                   max_trials_global=budget, max_trials_per_task=budget,
                                   num_trials_per_iter=min(TRIALS_PER_ROUND, budget), builder=builder,
                                   runner=runner, database=database,
                                   measure_callbacks=[*ms.measure_callback.MeasureCallback.create("default"),
                                                      callback],
                                   task_scheduler=largest_first_scheduler(database))
            finally:
                bar.close()
        result = FocusResult(task.task_name, int(task.weight), before_ms, best_ms(database, task),
                             trials_spent_on(database, task) - spent)
        if k >= count and result.trials == 0:
            continue   # past the chosen, a task with nothing left to measure is not part of the run
        results.append(result)
        if not progress.is_quiet() and results[-1].after_ms is not None:
            print(f"  {task.task_name}: {was.split(' x ')[0]} -> {results[-1].after_ms:.4f} ms",
                  file=sys.stderr, flush=True)
    return tuple(results)


def trials_spent_on(database, task) -> int:
    """Measured candidates the database holds for one task."""
    return len(top_records(database, task.dispatched[0], 1 << 30))


def measuring_threads(path: Path) -> int:
    """The runtime threads this machine's measurements run on, configured for MetaSchedule's runner
    workers; refused when the log at ``path`` was measured on another count (latencies would not
    compare)."""
    threads = runtime_threads.configure()
    logged = read_meta(path).get(THREADS_KEY)
    if logged is not None and logged != threads:
        raise EdgeMnv2Error(f"the log {path} was measured with {logged} runtime threads and this run would "
                            f"measure with {threads}: set TVM_NUM_THREADS={logged} to continue it, or start a "
                            f"new log from it with --seed-from")
    return threads


def write_meta(path: Path, run: dict | None = None, **fields) -> None:
    """Update ``tuning.json`` atomically with ``fields`` (and append ``run`` to its runs)."""
    import tvm

    meta_path = path / META_FILE
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {"runs": []}
    meta.update(fields, tvm=tvm.__version__)
    if run is not None:
        meta["runs"].append(run)
    tmp = meta_path.with_suffix(".partial")
    tmp.write_text(json.dumps(meta, indent=2) + "\n")
    os.replace(tmp, meta_path)


def _record_run(path: Path, model: str, target: TargetSpec, trials: int, before: int, after: int,
                covered: int, tasks: int, estimate: float | None, seconds: float, prepack: bool,
                flush: bool, layout: str, seeded_from: dict | None = None,
                focused: tuple[FocusResult, ...] = (), library: int = 0) -> None:
    run = {"finished": datetime.now(timezone.utc).isoformat(timespec="seconds"), "trials_requested": trials,
           "records_before": before, "records_after": after, "estimated_ms": estimate,
           "seconds": round(seconds, 1)}
    if seeded_from:   # provenance: which log the run's first schedules came from
        run[SEEDED_KEY] = seeded_from
    if library:       # hand-written schedules measured in this run
        run[LIBRARY_KEY] = library
    if focused:       # with --tasks: what each task's own search found
        run[FOCUS_KEY] = [dataclasses.asdict(f) for f in focused]
    write_meta(path, run=run, model=model, target=target.name, tvm_target=target.resolved_tvm(), tasks=tasks,
               covered=covered, records=after, estimated_ms=estimate,
               **{PREPACK_KEY: prepack, FLUSH_KEY: flush, LAYOUT_KEY: layout})
