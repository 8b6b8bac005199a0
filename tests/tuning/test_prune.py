"""Pruning a tuning log: each task's best records kept in order, failures dropped, trials still counted."""

import json

import pytest

from edge_mnv2.errors import EdgeMnv2Error
from edge_mnv2.tuning.logs import META_FILE
from edge_mnv2.tuning.prune import PRUNED_KEY, prune_log, pruned_count, record_latency


def record(workload, secs, tag):
    return json.dumps([workload, [[tag], secs, {"kind": "llvm"}, []]])


@pytest.fixture
def log(tmp_path):
    lines = [
        record(0, [3e-5, 5e-5], "a"),
        record(1, [9e-5], "b"),
        record(0, [1e-5], "c"),
        record(0, [1e10], "failed"),
        record(1, [2e-5], "d"),
        record(0, [2e-5, 2e-5], "e"),
        record(1, [1e-4], "f"),
    ]
    (tmp_path / "database_workload.json").write_text('["0x1", {}]\n["0x2", {}]\n')
    (tmp_path / "database_tuning_record.json").write_text("".join(f"{line}\n" for line in lines))
    (tmp_path / META_FILE).write_text(json.dumps({"runs": [], "records": len(lines)}))
    return tmp_path


def tags(path):
    return [json.loads(line)[1][0][0] for line in (path / "database_tuning_record.json").read_text().splitlines()]


def test_the_fastest_records_of_each_workload_stay_in_their_order(log):
    assert prune_log(log, keep=2) == (7, 4)
    assert tags(log) == ["b", "c", "d", "e"]  # workload 0: c (10 us), e (20 us); 1: d (20 us), b (90 us)
    assert pruned_count(log) == 3
    assert prune_log(log, keep=1) == (4, 2)
    assert tags(log) == ["c", "d"]
    meta = json.loads((log / META_FILE).read_text())
    assert meta[PRUNED_KEY] == 5 and meta["records"] == 7  # the trials spent are still on record


def test_failed_candidates_go_even_when_there_is_room(log):
    prune_log(log, keep=10)
    assert "failed" not in tags(log) and len(tags(log)) == 6
    assert prune_log(log, keep=10) == (6, 6) and pruned_count(log) == 1  # nothing more to drop


def test_a_record_is_ranked_by_its_mean_run_time():
    assert record_latency(record(3, [1e-5, 3e-5], "x")) == (3, pytest.approx(2e-5))
    assert record_latency(record(0, [1e-5, 1e10], "x"))[1] == float("inf")


def test_bad_arguments_are_refused(log, tmp_path):
    with pytest.raises(EdgeMnv2Error, match="--keep must be at least 1, got 0"):
        prune_log(log, keep=0)
    with pytest.raises(EdgeMnv2Error, match="is not a tuning log"):
        prune_log(tmp_path / "nowhere")
