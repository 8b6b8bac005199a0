"""Seeding a tuning log from another log's best schedules, replayed and measured here."""

import json

import pytest

from edge_mnv2 import tune
from edge_mnv2.errors import EdgeMnv2Error
from edge_mnv2.targets import load_target
from edge_mnv2.tune_seed import check_source

MODEL = "mobilenet_v2_0.35_96"


def records(log):
    return [json.loads(line) for line in (log / "database_tuning_record.json").read_text().splitlines()]


@pytest.mark.slow
def test_a_prepacked_log_starts_from_a_plain_logs_schedules(tmp_path):
    host = load_target("host")
    plain = tune.tune_model(MODEL, host, trials=16, log_root=tmp_path / "plain", weight_prepack=False)
    assert plain.covered >= 1
    seeded = tune.tune_model(MODEL, host, trials=3, log_root=tmp_path / "seeded", seed_from=plain.log, seed_top=3)
    # every seeded candidate was measured here; trials == seeded leaves nothing for the search
    assert seeded.trials_before == 0 and seeded.trials_after == 3 and seeded.covered == plain.covered
    assert all(r[1][1][0] < 1e9 for r in records(seeded.log))   # real run times, no failed builds
    assert json.loads((seeded.log / "tuning.json").read_text())["weight_prepack"] is True
    # the schedules were replayed with this log's postprocessors: their weights' layout is rewritten
    assert not any("TransformLayout" in json.dumps(r) for r in records(plain.log))
    assert all("TransformLayout" in json.dumps(r) for r in records(seeded.log))
    # a re-run finds every task it could seed already tuned and measures nothing again
    again = tune.tune_model(MODEL, host, trials=3, log_root=tmp_path / "seeded", seed_from=plain.log, seed_top=3)
    assert again.trials_after == 3


def test_a_seed_that_is_not_a_log_is_refused(tmp_path):
    with pytest.raises(EdgeMnv2Error, match="is not a tuning log"):
        check_source(tmp_path, 4)
    (tmp_path / "database_workload.json").write_text("")
    (tmp_path / "database_tuning_record.json").write_text("")
    with pytest.raises(EdgeMnv2Error, match="--seed-top must be at least 1"):
        check_source(tmp_path, 0)
    check_source(tmp_path, 1)
