"""Seeding a tuning log from another log's best schedules, replayed and measured here."""

import json

import pytest

from edge_mnv2.errors import EdgeMnv2Error
from edge_mnv2.targets import load_target
from edge_mnv2.tuning.seed import LAYOUT_FREE_ATTR, check_source, plain_workload, replay

from tuning_helpers import quick_tune

MODEL = "mobilenet_v2_0.35_96"


def records(log):
    return [json.loads(line) for line in (log / "database_tuning_record.json").read_text().splitlines()]


def decisions(record):
    """A record's sampling decisions (its trace's second half): which schedule it is, whatever the
    postprocessors added after them."""
    return json.dumps(record[1][0][1])


@pytest.mark.slow
def test_a_prepacked_log_starts_from_a_plain_logs_schedules(tmp_path):
    host = load_target("host")
    # without the hand-written depthwise schedules: they would cover ten tasks before any search
    plain = quick_tune(
        MODEL, host, trials=16, log_root=tmp_path / "plain", weight_prepack=False, schedule_library=False
    )
    assert plain.covered >= 1
    seeded = quick_tune(
        MODEL, host, trials=3, log_root=tmp_path / "seeded", seed_from=plain.log, seed_top=3, schedule_library=False
    )
    # every seeded candidate was measured here; trials == seeded leaves nothing for the search
    assert seeded.seeded == 3 and seeded.trials_before == 0 and seeded.trials_after == 3
    assert seeded.covered == plain.covered
    assert all(r[1][1][0] < 1e9 for r in records(seeded.log))  # real run times, no failed builds
    meta = json.loads((seeded.log / "tuning.json").read_text())
    assert meta["weight_prepack"] is True
    # the run's entry says where its first schedules came from
    assert meta["runs"][-1]["seeded_from"] == {"log": str(plain.log), "top": 3, "seeded": 3}
    # they are the plain log's best three schedules (not samples of a search of its own) ...
    # as MetaSchedule ranks: mean run time
    best = sorted(records(plain.log), key=lambda r: sum(r[1][1]) / len(r[1][1]))[:3]
    assert sorted(map(decisions, records(seeded.log))) == sorted(map(decisions, best))
    # ... replayed with this log's postprocessors: their weights' layout is rewritten
    assert not any("TransformLayout" in json.dumps(r) for r in records(plain.log))
    assert all("TransformLayout" in json.dumps(r) for r in records(seeded.log))
    # a re-run finds every task it could seed already tuned and measures nothing again
    again = quick_tune(
        MODEL, host, trials=3, log_root=tmp_path / "seeded", seed_from=plain.log, seed_top=3, schedule_library=False
    )
    assert again.seeded == 0 and again.trials_after == 3
    assert json.loads((seeded.log / "tuning.json").read_text())["runs"][-1]["seeded_from"]["seeded"] == 0


def vector_add(n: int, layout_free: bool = False, block: str = "b"):
    import tvm
    from tvm import te

    a = te.placeholder((n,), "float32", name="a")
    b = te.compute((n,), lambda i: a[i] + 1.0, name=block)
    func = te.create_prim_func([a, b])
    if layout_free:
        func = func.with_attr(LAYOUT_FREE_ATTR, [0])
    return tvm.IRModule({"main": func})


def test_plain_workload_drops_only_the_layout_free_mark():
    from tvm_ffi import structural_equal

    plain = vector_add(16)
    assert plain_workload(plain) is plain
    assert not structural_equal(vector_add(16, layout_free=True), plain)
    assert structural_equal(plain_workload(vector_add(16, layout_free=True)), plain)


def test_a_schedule_that_does_not_fit_the_task_is_skipped():
    from types import SimpleNamespace

    from tvm import s_tir

    sch = s_tir.Schedule(vector_add(16))
    outer, inner = sch.split(sch.get_loops(sch.get_sblock("b"))[0], factors=[None, 4])
    sch.vectorize(inner)
    record = SimpleNamespace(trace=sch.trace)
    replayed = replay(record, vector_add(32), [])
    assert replayed is not None and "T.vectorized(4)" in replayed.mod.script()
    assert replay(record, vector_add(16, block="c"), []) is None  # another kernel: no block "b" to schedule


def test_a_seed_that_is_not_a_log_is_refused(tmp_path):
    with pytest.raises(EdgeMnv2Error, match="is not a tuning log"):
        check_source(tmp_path, 4)
    (tmp_path / "database_workload.json").write_text("")
    (tmp_path / "database_tuning_record.json").write_text("")
    with pytest.raises(EdgeMnv2Error, match="--seed-top must be at least 1"):
        check_source(tmp_path, 0)
    check_source(tmp_path, 1)
