"""The report's instruction entries, built from counted runs (no emulator needed)."""

import numpy as np
import pytest

from edge_mnv2.bench.report import format_table
from edge_mnv2.errors import DeviceError
from edge_mnv2.remote.instructions.counting import CountedRuntime, CountSettings
from edge_mnv2.remote.instructions.emulated_bench import instruction_report
from edge_mnv2.remote.instructions.plugin import CLASSES, Region


def _region(total: int, fma_lanes: int) -> Region:
    mix = dict.fromkeys(CLASSES, 0)
    mix["vector_fma"], mix["integer"] = fma_lanes // 4, total - fma_lanes // 4
    return Region(total=total, mix=mix, vector_fma_lanes=fma_lanes)


def _counted(runtime: str, totals: list[int], output: np.ndarray) -> CountedRuntime:
    return CountedRuntime(runtime, [_region(t, 400) for t in totals], output, CountSettings(runs=len(totals)))


def test_median_run_its_mix_and_the_ratios_to_the_rivals():
    reference = np.array([[1.0, -2.0, 3.0]])
    counted = {
        "tvm": _counted("tvm", [3000, 1000, 2000], reference + 1e-6),
        "litert_xnnpack": _counted("litert_xnnpack", [500, 500, 501], reference),
        "onnxruntime": _counted("onnxruntime", [800, 800, 800], reference - 0.5),
    }
    out = instruction_report(counted, macs=1000, cpu="cortex-a72", reference=reference)
    ins = out["instructions"]
    assert (ins["per_inference"], ins["min"], ins["max"], ins["runs"]) == (2000, 1000, 3000, 3)
    assert sum(ins["mix"].values()) == 2000 and list(ins["mix"]) == list(CLASSES)
    assert ins["per_mac"] == 2.0 and ins["vector_fma_share"] == 0.4 and ins["cpu"] == "cortex-a72"
    assert ins["accuracy"]["max_abs_error"] == pytest.approx(1e-6)
    assert out["ratios"] == {
        "instructions_tvm_over_litert_xnnpack": 4.0,
        "instructions_tvm_over_onnxruntime_emulated": 2.5,
    }
    assert out["peers"]["onnxruntime_emulated"]["accuracy"]["max_abs_error"] == pytest.approx(0.5)
    assert out["peers"]["litert_xnnpack"]["instructions"]["per_inference"] == 500
    assert out["peers"]["litert_xnnpack"]["where"] == "emulated"


def test_a_rival_without_a_tflite_is_reported_as_skipped_not_counted():
    reference = np.zeros((1, 2))
    out = instruction_report(
        {"tvm": _counted("tvm", [10], reference)},
        5,
        "cortex-a53",
        reference,
        {"litert_xnnpack": "no .tflite of this model: Sigmoid"},
    )
    assert out["peers"] == {
        "litert_xnnpack": {
            "runtime": out["peers"]["litert_xnnpack"]["runtime"],
            "where": "emulated",
            "skipped": "no .tflite of this model: Sigmoid",
        }
    }
    assert out["ratios"] == {}


def test_the_table_says_these_are_counts_not_time():
    reference = np.zeros((1, 2))
    counts = instruction_report(
        {"tvm": _counted("tvm", [2000], reference), "litert_xnnpack": _counted("litert_xnnpack", [1000], reference)},
        1000,
        "cortex-a72",
        reference,
    )
    latency = {"median": 1.0, "p90": 1.0, "min": 1.0, "std": 0.0}
    report = {
        "model": "m",
        "target": {"name": "rpi4b"},
        "latency_ms": latency,
        "device": {"kind": "emulated", "emulated": True, "cpu": "cortex-a72"},
        "accuracy": {
            "reference": "pytorch",
            "num_images": 1,
            "top1_agreement": 100.0,
            "top5_overlap": 100.0,
            "max_abs_error": 0.0,
            "mean_cosine_similarity": 1.0,
        },
        "instructions": counts["instructions"],
        "peers": counts["peers"],
        "ratios": counts["ratios"],
    }
    table = format_table(report)
    assert "instruction counts on an emulated CPU, NOT time" in table
    assert "2,000" in table and "1,000" in table and "2.00x" in table


@pytest.mark.parametrize("warmup, runs", [(-1, 3), (1, 0)])
def test_bad_count_settings(warmup, runs):
    with pytest.raises(DeviceError, match="instruction counting needs"):
        CountSettings(warmup=warmup, runs=runs)
