"""The printed table and the JSON report file."""

from __future__ import annotations

import json

import pytest

from edge_mnv2.bench.report import format_table, write_json


def _lat(median, p90=None, mn=None, std=0.1):
    return {
        "median": median,
        "p90": p90 or median * 1.1,
        "min": mn or median * 0.9,
        "max": median * 1.5,
        "mean": median,
        "std": std,
        "samples": 50,
    }


@pytest.fixture
def report():
    return {
        "model": "mobilenet_v2_0.35_96",
        "artifact": "/tmp/art",
        "target": {"name": "host", "device": "cpu"},
        "device": {"kind": "rpc", "host": "10.0.0.7", "port": 9090, "key": None, "tvm_threads": 4},
        "latency_ms": _lat(4.0, 4.5, 3.9, 0.05),
        "accuracy": {
            "reference": "pytorch",
            "num_images": 32,
            "top1_agreement": 96.875,
            "top5_overlap": 99.375,
            "max_abs_error": 3.2e-5,
            "mean_cosine_similarity": 0.9999991,
        },
        "peers": {
            "onnxruntime": {"where": "host", "latency_ms": _lat(2.0)},
            "torch": {"where": "host", "latency_ms": _lat(8.0)},
        },
        "ratios": {"tvm_over_onnxruntime": 2.0},
    }


def _row(table, prefix):
    rows = [line for line in table.splitlines() if line.startswith(prefix)]
    assert len(rows) == 1, table
    return rows[0]


def test_table_contents(report):
    table = format_table(report)
    assert "mobilenet_v2_0.35_96" in table.splitlines()[0]
    assert "10.0.0.7:9090, TVM on 4 threads" in table.splitlines()[0]
    tvm = _row(table, "TVM (host, on device)")
    assert tvm.split()[-1] == "2.00x"
    assert "4.000" in tvm and "4.500" in tvm and "3.900" in tvm
    ort = _row(table, "onnxruntime (host)")
    assert ort.split()[-1] == "1.00x"
    assert "2.000" in ort
    assert _row(table, "torch (host)").split()[-1] == "4.00x"
    assert "96.9 %" in table
    assert "99.4 %" in table
    assert "3.20e-05" in table
    assert "pytorch reference (32 synthetic images)" in table
    assert "validation" not in table  # unlabelled: no accuracy block


def test_table_with_labelled_accuracy(report):
    report["accuracy"].update(
        data={"name": "shapes", "labelled": True},
        device_top1=93.4,
        reference_top1=93.6,
        device_top5=99.8,
        reference_top5=99.8,
    )
    table = format_table(report)
    assert "accuracy on shapes validation (32 labelled images)" in table
    top1 = _row(table, "  top-1 %")
    assert top1.split()[-2:] == ["93.40", "93.60"]
    assert _row(table, "  top-5 %").split()[-2:] == ["99.80", "99.80"]


def test_table_without_peers(report):
    report["peers"] = {}
    table = format_table(report)
    assert _row(table, "TVM (host, on device)").split()[-1] == "-"
    assert "onnxruntime" not in table


def test_table_falls_back_to_artifact_path(report):
    report["model"] = None
    assert format_table(report).splitlines()[0].startswith("/tmp/art")


@pytest.mark.parametrize(
    "device, where",
    [
        ({"kind": "tracker", "host": "tr", "port": 9190, "key": "rpi4"}, "key rpi4 via tr:9190"),
        ({"kind": "local", "host": "127.0.0.1", "port": 9091, "key": None}, "embedded server on 127.0.0.1"),
    ],
)
def test_table_device_description(report, device, where):
    report["device"] = device
    assert where in format_table(report).splitlines()[0]


def test_write_json(tmp_path, report):
    path = tmp_path / "sub" / "report.json"
    assert write_json(report, path) == path
    assert json.loads(path.read_text()) == report
    assert [p.name for p in path.parent.iterdir()] == ["report.json"]


def test_write_json_replaces_and_fails_cleanly(tmp_path, report):
    path = tmp_path / "report.json"
    write_json({"old": 1}, path)
    write_json(report, path)
    assert json.loads(path.read_text())["model"] == report["model"]
    with pytest.raises(TypeError):
        write_json({"bad": object()}, path)
    assert json.loads(path.read_text())["model"] == report["model"]  # the old file survives
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_table_with_a_baseline_build_beside_the_artifact(report):
    report["accuracy"].update(
        data={"name": "shapes", "labelled": True},
        device_top1=98.0,
        reference_top1=98.4,
        device_top5=100.0,
        reference_top5=100.0,
    )
    report["baseline"] = {
        "artifact": "/tmp/fp32",
        "quantization": None,
        "latency_ms": _lat(8.0),
        "accuracy": {"top1_agreement": 100.0, "max_abs_error": 3.4e-5, "device_top1": 98.4},
    }
    report["ratios"]["tvm_over_baseline"] = 0.5
    table = format_table(report)
    assert _row(table, "baseline: fp32 build (on device)").split()[-1] == "4.00x"  # vs ORT, like every row
    assert _row(table, "TVM / baseline (median)").split()[-1] == "0.500"
    assert "98.40  (this build 98.00)" in _row(table, "  top-1 %                98.40")
    assert "max abs error 3.40e-05" in table
