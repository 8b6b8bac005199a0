"""int8 MobileNetV2 0.35_96 on the boards, with edge-mnv2's kernels: bit for bit the integer reference on
every emulated core (Helium on the M55, the DSP extension on the M4F, portable C on the M3), within the
instruction budgets, with a per-layer profile; and inside 128 KB of RAM on the STM32F746G-DISCO."""

from __future__ import annotations

import pytest

from edge_mnv2.bench import BenchSettings
from edge_mnv2.compile import compile_model

TRAINED = "mobilenet_v2_0.35_96.shapes"
MACS = 10_666_928
# board: (kernels the board's CPU gets, the most instructions per inference allowed)
BOARDS = {
    "mps3-an547": ("mve", 0.8 * MACS),  # Cortex-M55 with Helium
    "mps2-an386": ("dsp", 2.0 * MACS),  # Cortex-M4F
    "mps2-an385": ("portable", None),  # Cortex-M3: no DSP extension
}


@pytest.mark.slow
@pytest.mark.parametrize("board", list(BOARDS))
def test_int8_on_the_emulated_board_equals_the_integer_reference_within_its_budget(board, tmp_path):
    from edge_mnv2.micro.bench import bench_micro

    implementation, budget = BOARDS[board]
    artifact = compile_model(TRAINED, board, tmp_path / board, quantize="int8")
    micro = artifact.metadata["micro"]
    assert micro["implementation"] == implementation and micro["runtime"] == "mnv2_nn"
    assert artifact.metadata["quantization"]["kernels"] == f"micro-{implementation}"
    report = bench_micro(artifact.directory, board, settings=BenchSettings(images=4, peers=False))
    q = report["accuracy"]["int8_reference"]
    assert q["max_abs_error"] == 0.0 and q["top1_agreement"] == 100.0  # bit for bit
    assert report["accuracy"]["max_abs_error_vs_host"] == 0.0  # = the portable kernels on the host
    instructions = report["instructions"]["median"]
    if budget is not None:
        assert instructions <= budget
    layers = report["per_layer"]
    assert layers[0]["name"].startswith("quantize input") and len(layers) == micro["calls"] + 1
    assert sum(r.get("macs", 0) for r in layers) == MACS
    # the steps add up to the whole inference (less what runs between them: a few ticks each)
    assert 0.97 * instructions <= sum(r["instructions"] for r in layers) <= instructions


@pytest.mark.slow
def test_int8_fits_in_128_kb_of_ram_on_the_stm32f746g_disco(tmp_path):
    artifact = compile_model(TRAINED, "stm32f746g-disco", tmp_path / "stm32", quantize="int8")
    micro = artifact.metadata["micro"]
    memory = micro["memory"]
    assert micro["implementation"] == "dsp"  # Cortex-M7
    assert memory["ram_total"] <= 128 * 1024  # arena, I/O, stack and the rest
    assert memory["flash_total"] <= memory["flash_available"] == 1024 * 1024
    savings = memory["savings"]
    assert savings["input_quantized_in_place"] == 96 * 96 * 3 * 5
    assert savings["row_streamed_expansions"] >= 48 * 48 * 48 / 2 and savings["in_place_depthwise_and_add"] > 0
    model_c = (artifact.directory / "model" / "model.c").read_text()
    assert "model_run_u8" in model_c and not (artifact.directory / "model" / "kernels.c").exists()
