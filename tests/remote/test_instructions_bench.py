"""Instruction counts in a bench on the emulated Raspberry Pi 4: TVM beside LiteRT/XNNPACK and ONNX Runtime
on the same emulated Cortex-A72 (slow: several emulated Python processes)."""

import json
import subprocess
import sys

import pytest

from edge_mnv2.bench import BenchSettings, bench_artifact
from edge_mnv2.bench.report import format_table
from edge_mnv2.remote.instructions.plugin import CLASSES

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def counted_report(rpi4b_artifact):
    """The shipped mobilenet_v2_0.35_96.shapes built for rpi4b, benched on its emulator with the rivals."""
    return bench_artifact(
        rpi4b_artifact.directory, None, BenchSettings(images=4, warmup=0, repeat=1, rounds=1, timeout=300, count_runs=2)
    )


def test_tvm_is_counted_per_inference_with_its_instruction_mix(counted_report):
    ins = counted_report["instructions"]
    assert ins["cpu"] == "cortex-a72" and ins["threads"] == 1 and ins["runs"] == 2
    assert list(ins["mix"]) == list(CLASSES) and sum(ins["mix"].values()) == ins["per_inference"]
    # Counts are deterministic: the counted runs agree within a fraction of a percent.
    assert ins["max"] - ins["min"] <= 0.005 * ins["per_inference"]
    assert ins["macs"] == 10_666_928 and ins["per_mac"] == ins["per_inference"] / ins["macs"]
    # An untuned NEON build does part of its MACs as vector FMLA; none does more than all of them.
    assert 0 < ins["vector_fma_share"] <= 1.0 and ins["mix"]["vector_fma"] > 0
    assert ins["accuracy"]["max_abs_error"] <= 1e-4


def test_litert_and_onnx_runtime_are_counted_on_the_same_cpu_and_match_the_desktop(counted_report):
    peers, ratios = counted_report["peers"], counted_report["ratios"]
    tvm = counted_report["instructions"]["per_inference"]
    for key in ("litert_xnnpack", "litert_builtin", "onnxruntime_emulated"):
        peer = peers[key]
        assert peer["where"] == "emulated" and peer["cpu"] == "cortex-a72"
        assert peer["instructions"]["per_inference"] > 1e6
        # The .tflite edge-mnv2 wrote computes what the desktop PyTorch model computes.
        assert peer["accuracy"]["max_abs_error"] <= 1e-4, key
        assert ratios[f"instructions_tvm_over_{key}"] == pytest.approx(tvm / peer["instructions"]["per_inference"])
    # XNNPACK's hand-written NEON kernels: most MACs as vector FMAs, fewer instructions than the built-ins.
    assert peers["litert_xnnpack"]["instructions"]["vector_fma_share"] > 0.5
    xnnpack, builtin = peers["litert_xnnpack"]["instructions"], peers["litert_builtin"]["instructions"]
    assert xnnpack["per_inference"] < builtin["per_inference"]
    assert "tvm_over_onnxruntime" in ratios and "latency_ms" in peers["onnxruntime"]  # the host peers stay


def test_the_table_and_the_cli_say_counts_not_time(counted_report, rpi4b_artifact, tmp_path):
    assert "instruction counts on an emulated CPU, NOT time" in format_table(counted_report)
    out = tmp_path / "report.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge_mnv2.cli",
            "-q",
            "bench",
            str(rpi4b_artifact.directory),
            "--images",
            "2",
            "--warmup",
            "0",
            "--repeat",
            "1",
            "--rounds",
            "1",
            "--no-peers",
            "--count-runs",
            "1",
            "--timeout",
            "300",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["instructions"]["runs"] == 1 and report["peers"] == {}  # --no-peers: TVM alone
    assert report["instructions"]["per_inference"] == pytest.approx(
        counted_report["instructions"]["per_inference"], rel=0.005
    )
    assert "NOT time" in result.stdout
