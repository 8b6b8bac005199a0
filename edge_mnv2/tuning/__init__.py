"""MetaSchedule auto-tuning of a model's kernels into resumable logs under ``tuning_logs/``, and the
lookup of those logs for a build.

``logs``: where logs live and their ``tuning.json``; ``settings``: what a log keeps for life (layout,
prepacked weights, cache flushing, threads); ``database``: a log's records and the model's tasks;
``run``: ``tune_model`` (``edge-mnv2 tune``); ``search``: the evolutionary search over the model or
a few tasks; ``scheduler``: which task a round goes to; ``builder``:
MetaSchedule's builder with long-lived workers; ``library``: hand-written schedules measured as
candidates; ``seed``: starting a log from another's best schedules; ``prune``: keeping a log small;
``lookup``: finding a log by the workloads it holds.
"""

from edge_mnv2.tuning.database import coverage, extract_tasks, open_database, top_records
from edge_mnv2.tuning.logs import find_log, is_log, quantized_log_name, read_meta
from edge_mnv2.tuning.lookup import LogMatch, best_log, candidate_logs
from edge_mnv2.tuning.prune import prune_log
from edge_mnv2.tuning.run import INTERRUPTED_MESSAGE, TuneResult, tune_model
from edge_mnv2.tuning.search import FocusResult
from edge_mnv2.tuning.seed import seed_log

__all__ = [
    "INTERRUPTED_MESSAGE",
    "FocusResult",
    "LogMatch",
    "TuneResult",
    "best_log",
    "candidate_logs",
    "coverage",
    "extract_tasks",
    "find_log",
    "is_log",
    "open_database",
    "prune_log",
    "quantized_log_name",
    "read_meta",
    "seed_log",
    "top_records",
    "tune_model",
]
