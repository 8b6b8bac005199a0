"""bench --per-layer: a host build's kernels timed beside ONNX Runtime's nodes, the table and the chart;
refused (before measuring) where it cannot run."""

import pytest

from edge_mnv2.bench.layer_profile import plot_layers
from edge_mnv2.cli import main


def test_the_chart_of_a_boards_profile_and_of_a_host_profile_decode(tmp_path):
    from PIL import Image

    board = [
        {"name": "quantize input", "ticks": 10, "ms": 0.1, "instructions": 5000.0},
        {"name": "conv 3->16", "ticks": 99, "ms": 1.0, "instructions": 90000.0, "instructions_per_mac": 1.9},
    ]
    host = [
        {"name": "0 stem", "ms": 0.05, "onnxruntime_ms": 0.04},
        {"name": "1 depthwise", "ms": 0.02, "onnxruntime_ms": 0.03},
    ]
    for rows, name in ((board, "board.png"), (host, "host.png")):
        with Image.open(plot_layers(rows, tmp_path / name, "title")) as png:
            png.load()
            assert png.size[0] > 500


def test_a_compiled_vm_build_is_refused_before_anything_is_measured(small_artifact, capsys):
    assert main(["bench", str(small_artifact.directory), "--per-layer"]) != 0
    err = capsys.readouterr().err
    assert "--exec-mode bytecode" in err and "Traceback" not in err


@pytest.mark.slow
def test_bench_per_layer_times_each_layer_beside_onnx_runtime(tmp_path, capsys):
    from edge_mnv2.compile import compile_model

    artifact = compile_model("mobilenet_v2_0.35_96", "host", tmp_path / "bc", exec_mode="bytecode")
    png = tmp_path / "layers.png"
    assert (
        main(
            [
                "bench",
                str(artifact.directory),
                "--per-layer",
                str(png),
                "--images",
                "2",
                "--repeat",
                "4",
                "--no-peers",
                "--json",
                str(tmp_path / "r.json"),
            ]
        )
        == 0
    )
    import json

    rows = json.loads((tmp_path / "r.json").read_text())["per_layer"]
    assert len(rows) == 53 and rows[0]["kind"] == "stem" and rows[-1]["kind"] == "classifier"
    assert all(r["ms"] > 0 and r["onnxruntime_ms"] > 0 for r in rows)
    assert png.is_file() and "TVM/ORT" in capsys.readouterr().out


def test_per_layer_on_an_rpc_device_is_refused_before_anything_is_measured(tmp_path, capsys):
    from edge_mnv2.artifact import SCHEMA_VERSION, write_metadata

    write_metadata(tmp_path, {"schema": SCHEMA_VERSION, "files": {}, "target": {"name": "host", "device": "cpu"}})
    assert main(["bench", str(tmp_path), "--rpc", "127.0.0.1:9", "--per-layer"]) != 0
    err = capsys.readouterr().err
    assert "not on RPC server 127.0.0.1:9" in err and "Traceback" not in err


def test_per_layer_of_firmware_without_a_profile_is_one_clear_error(tmp_path, monkeypatch, capsys):
    import edge_mnv2.bench.device as bench_device

    report = {"device": {"key": "mps2-an386"}, "target": {"name": "mps2-an386"}}  # no per_layer: old firmware
    monkeypatch.setattr(bench_device, "choose_device", lambda *a, **k: None)
    monkeypatch.setattr(bench_device, "bench_on", lambda *a, **k: report)
    assert main(["bench", str(tmp_path), "--target", "mps2-an386", "--per-layer", str(tmp_path / "p.png")]) != 0
    err = capsys.readouterr().err
    assert "keeps no per-step profile" in err and "flash it" in err and "Traceback" not in err
