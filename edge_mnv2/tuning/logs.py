"""Where tuning logs live and what their ``tuning.json`` says.

A log is a folder ``tuning_logs/<target>/<model>/`` holding MetaSchedule's JSON database
(``database_workload.json``, ``database_tuning_record.json``) and ``tuning.json``, which records what was
tuned, for which CPU, with which settings, and every run's figures. A model's log is found by its name or
its architecture's, in this CPU's folder (``<target>@<cpu>``) before the target's.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from edge_mnv2.errors import EdgeMnv2Error
from edge_mnv2.resources import LOGS_ENV, logs_read_roots, logs_write_root  # noqa: F401 (LOGS_ENV: imported from here too)
from edge_mnv2.targets import TargetSpec

DB_FILES = ("database_workload.json", "database_tuning_record.json")
META_FILE = "tuning.json"
PREPACK_KEY = "weight_prepack"  # tuning.json and the target's [tuning] table
THREADS_KEY = "runtime_threads"  # tuning.json: the threads local measurements ran on
FLUSH_KEY = "cache_flush"  # tuning.json and the target's [tuning] table: measured with cold caches
LAYOUT_KEY = "layout"  # tuning.json and the target's [tuning] table: the layout kernels compute in
FOCUS_KEY = "focused"  # a tuning.json run entry: the --tasks run's tasks, before and after
SEEDED_KEY = "seeded_from"  # a tuning.json run entry: the --seed-from log, --seed-top, schedules measured


def logs_root() -> Path:
    """Where ``tune`` keeps logs: ``$EDGE_MNV2_TUNING_LOGS``, else the project's ``tuning_logs/``, except for
    an installed tool: the user's folder (see :mod:`edge_mnv2.resources`)."""
    return logs_write_root()


def search_roots(root: Path | None = None) -> list[Path]:
    """The folders logs are looked up in, best first: ``root`` alone if given, else where ``tune`` keeps
    logs and then (an installed tool) the logs shipped in the package."""
    return [root] if root is not None else logs_read_roots()


CPU_SEP = "@"  # tuning_logs/host@znver5/: the host's logs for a CPU other than the one host/ was tuned on


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
    in this CPU's folder (``<target>@<cpu>``) before the target's; the user's logs before the shipped ones
    (:func:`search_roots`).

    Weights do not change the tuned workloads, so a tagged model uses its architecture's log; a log of
    another architecture or target is never looked at.
    """
    if not model:
        return None
    for base in search_roots(root):
        for folder in log_targets(target, cpu):
            for name in (model, architecture_of(model)):
                path = log_dir(folder, name, base)
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


def read_meta(path: Path) -> dict:
    """The log's ``tuning.json`` ({} when it has none)."""
    meta_path = path / META_FILE
    return json.loads(meta_path.read_text()) if meta_path.is_file() else {}


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
