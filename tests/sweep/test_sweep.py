"""``edge-mnv2 sweep`` end to end on this machine: two variants compiled and benched, the CSV, JSON and
PNG written, a rerun reusing every artifact and result; and a board where nothing fits."""

import csv
import json

import pytest

from edge_mnv2.cli import main


@pytest.mark.slow
def test_a_two_variant_sweep_writes_its_files_and_a_rerun_reuses_everything(tmp_path, capsys):
    out = tmp_path / "sweep"
    args = ["sweep", "--target", "host", "--widths", "0.35", "--resolutions", "96,128", "--repeat", "4", "-o", str(out)]
    assert main(args) == 0
    rows = list(csv.DictReader(open(out / "sweep.csv")))
    assert [r["variant"] for r in rows] == ["mobilenet_v2_0.35_96", "mobilenet_v2_0.35_128"]
    assert all(r["status"] == "ok" and float(r["latency_ms"]) > 0 for r in rows)
    assert [r["published_top1"] for r in rows] == ["45.5", "50.8"]  # the TF-slim table's figures
    data = json.loads((out / "sweep.json").read_text())
    assert (
        data["metric"] == "latency_ms"
        and data["target"] == "host"
        and "tensorflow/models" in data["published_source"]["title"]
    )
    assert set(data["pareto"]) <= {r["variant"] for r in rows} and data["pareto"]
    from PIL import Image

    with Image.open(out / "sweep.png") as png:  # a real picture
        png.load()
        assert png.size[0] > 1000 and png.size[1] > 500
    stamps = {p: p.stat().st_mtime_ns for p in (out / "artifacts").glob("*/artifact.json")}
    capsys.readouterr()
    assert main(args) == 0
    assert "measured before, reused" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in (out / "artifacts").glob("*/artifact.json")} == stamps


@pytest.mark.slow
def test_a_board_sweep_marks_the_variants_that_do_not_fit_with_their_figures(tmp_path, capsys):
    out = tmp_path / "stm32"
    assert (
        main(["sweep", "--target", "stm32f746g-disco", "--widths", "0.35", "--resolutions", "96", "-o", str(out)]) == 0
    )
    row = json.loads((out / "sweep.json").read_text())["variants"][0]
    assert row["status"] == "does not fit" and row["flash_bytes"] > 1024 * 1024 and "flash" in row["detail"]
    assert "does not fit" in capsys.readouterr().out
