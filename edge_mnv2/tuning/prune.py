"""Keep only a tuning log's best records of each task, so a committed log stays small.

``compile`` applies each task's best record, and a continued search starts from a task's best few; the
rest of a long run's records only make the file large (a prepacked trace is about 14 KB, so a
1500-trial log of mobilenet_v2_0.35_96 is 22 MB). Pruning keeps the ``keep`` fastest records of each
workload in their original order, drops failed candidates, and counts what it dropped in ``tuning.json``
so that ``tune --trials N`` still counts them as trials spent.
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from pathlib import Path

from edge_mnv2.errors import EdgeMnv2Error
from edge_mnv2.tuning.logs import DB_FILES, is_log, read_meta, repair, write_meta

PRUNED_KEY = "pruned_records"  # tuning.json: records dropped by pruning, still counted as trials
DEFAULT_KEEP = 16
FAILED_SECS = 1e9  # MetaSchedule records a candidate that failed to build or run at 1e10 s


def record_latency(line: str) -> tuple[int, float]:
    """(workload index, mean run seconds) of a record line; infinite for a failed candidate."""
    workload, (_trace, run_secs, *_rest) = json.loads(line)
    secs = [float(s) for s in run_secs]
    if not secs or any(s >= FAILED_SECS for s in secs):
        return workload, math.inf
    return workload, sum(secs) / len(secs)


def pruned_count(path: Path) -> int:
    """Records pruning has dropped from the log at ``path`` (trials spent that it no longer holds)."""
    return int(read_meta(path).get(PRUNED_KEY, 0))


def prune_log(path: Path, keep: int = DEFAULT_KEEP) -> tuple[int, int]:
    """Rewrite the log at ``path`` with the ``keep`` best working records of each workload; returns the
    number of records before and after. A kill midway leaves the old file or the new one, never half."""
    if keep < 1:
        raise EdgeMnv2Error(f"--keep must be at least 1, got {keep}")
    if not is_log(path):
        raise EdgeMnv2Error(
            f"{path} is not a tuning log (it needs {' and '.join(DB_FILES)}); name a folder under tuning_logs/TARGET/"
        )
    repair(path)
    records = path / DB_FILES[1]
    lines = records.read_text().splitlines()
    ranked = defaultdict(list)
    for index, line in enumerate(lines):
        workload, secs = record_latency(line)
        ranked[workload].append((secs, index))
    kept = sorted(index for entries in ranked.values() for secs, index in sorted(entries)[:keep] if math.isfinite(secs))
    dropped = len(lines) - len(kept)
    if dropped == 0:
        return len(lines), len(lines)
    tmp = records.with_suffix(".pruning")
    tmp.write_text("".join(f"{lines[i]}\n" for i in kept))
    # the count goes on record first: killed in between, the log still holds every record and counts
    # the dropped ones twice (a rerun spends fewer trials), never the other way round
    write_meta(path, **{PRUNED_KEY: pruned_count(path) + dropped})
    os.replace(tmp, records)
    return len(lines), len(kept)
