"""The settings a tuning log keeps for its whole life, and the flags and target tables that choose them
for a new log: the data layout its kernels compute in, prepacked weights, cold-cache measurement (and
how MetaSchedule's runner times a candidate with it), and the runtime threads it was measured on.

Records measured under other settings would not compare, so a flag asking for another setting than the
log's is refused.
"""

from __future__ import annotations

from pathlib import Path

from edge_mnv2.compile import relax_layout
from edge_mnv2.errors import EdgeMnv2Error
from edge_mnv2.remote import runtime_threads
from edge_mnv2.targets import TargetSpec
from edge_mnv2.tuning.logs import DB_FILES, FLUSH_KEY, LAYOUT_KEY, PREPACK_KEY, THREADS_KEY, read_meta

# Runs per candidate measured with flushed caches: one run per repeat (the flush comes before each
# repeat), so a repeat is one cold run; their mean is the record's latency.
COLD_REPEATS = 10


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
    setting = _log_setting(path, PREPACK_KEY, False)  # older logs hold plain-layout kernels
    return None if setting is None else bool(setting)


def log_cache_flush(path: Path) -> bool | None:
    """Whether the log at ``path`` was measured with flushed caches; None for a log not started yet."""
    setting = _log_setting(path, FLUSH_KEY, False)  # older logs were measured warm
    return None if setting is None else bool(setting)


def log_layout(path: Path) -> str | None:
    """The data layout the log at ``path`` was tuned in; None for a log not started yet."""
    return _log_setting(path, LAYOUT_KEY, relax_layout.DEFAULT)  # older logs: NCHW as imported


def layout_for(path: Path, target: TargetSpec, quantize: str | None, asked: str | None) -> str:
    """The data layout of a tuning run into ``path``: the log's own, else ``asked``, else the target's
    ``[tuning] layout``, else NCHW (int8 builds choose their own layout, so always NCHW here)."""
    existing = log_layout(path)
    if asked is not None:
        relax_layout.check_layout(asked)
        if quantize and asked != relax_layout.DEFAULT:
            raise EdgeMnv2Error(f"--layout {asked} is for fp32 builds: the int8 kernels choose their own layout")
        if existing is not None and asked != existing:
            raise EdgeMnv2Error(
                f"the log {path} was tuned in {existing}, so --layout {asked} cannot continue "
                "it; leave the flag out, or start a new log"
            )
        return asked
    if existing is not None:
        return existing
    if quantize:
        return relax_layout.DEFAULT
    return relax_layout.check_layout(target.tuning.get(LAYOUT_KEY, relax_layout.DEFAULT))


def _kept_setting(path: Path, existing: bool | None, asked: bool | None, flag: str, what: str) -> bool | None:
    """The log's own setting, refusing a flag that asks for the other one (records would not compare)."""
    if existing is not None and asked is not None and asked != existing:
        raise EdgeMnv2Error(
            f"the log {path} was tuned {'with' if existing else 'without'} {what}, so "
            f"{'--' if asked else '--no-'}{flag} cannot continue it; leave the flag out, or "
            "start a new log (--seed-from can carry its best schedules over)"
        )
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


def measuring_threads(path: Path) -> int:
    """The runtime threads this machine's measurements run on, configured for MetaSchedule's runner
    workers; refused when the log at ``path`` was measured on another count (latencies would not
    compare)."""
    threads = runtime_threads.configure()
    logged = read_meta(path).get(THREADS_KEY)
    if logged is not None and logged != threads:
        raise EdgeMnv2Error(
            f"the log {path} was measured with {logged} runtime threads and this run would "
            f"measure with {threads}: set TVM_NUM_THREADS={logged} to continue it, or start a "
            f"new log from it with --seed-from"
        )
    return threads


def evaluator_config(cache_flush: bool, remote: bool):
    """How MetaSchedule's runner times a candidate.

    Warm: a few back-to-back runs (locally repeated for at least 50 ms), so the kernel's weights and
    activations stay in cache. Cold: each run after TVM's ``cache_flush_cpu_non_first_arg`` has flushed
    every argument but the input from the CPU's caches, as in a whole model, where each kernel's
    weights were last read a whole inference ago and its output buffer is not in cache either.
    """
    from tvm.s_tir import meta_schedule as ms

    if cache_flush:
        return ms.runner.EvaluatorConfig(number=1, repeat=COLD_REPEATS, min_repeat_ms=0, enable_cpu_cache_flush=True)
    if remote:
        return ms.runner.EvaluatorConfig(number=3, repeat=1, min_repeat_ms=0)
    return ms.runner.EvaluatorConfig(number=3, repeat=1, min_repeat_ms=50, enable_cpu_cache_flush=False)
