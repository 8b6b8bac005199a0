"""compile -> firmware -> bench for microcontroller boards: the shipped trained model on emulated
Cortex-M55 and Cortex-M4F boards over a real serial link, and the does-not-fit error."""

import json

import pytest

from edge_mnv2.compile import compile_model
from edge_mnv2.errors import FirmwareTooLargeError

TRAINED = "mobilenet_v2_0.35_96.shapes"


def test_a_model_that_does_not_fit_fails_at_compile_time_with_both_figures(tmp_path):
    out = tmp_path / "stm32"
    with pytest.raises(FirmwareTooLargeError) as err:
        compile_model(TRAINED, "stm32f746g-disco", out)
    message = str(err.value)
    assert "stm32f746g-disco" in message
    assert "1,607,624 B of weights" in message and "1,048,576 B" in message  # flash: needed and available
    assert "327,680 B" in message and "arena 552,960" in message  # RAM: needed and available
    assert not out.exists()  # nothing half-written


@pytest.mark.slow
@pytest.mark.parametrize("board", ["mps3-an547", "mps2-an386"])
def test_trained_model_on_an_emulated_board_matches_the_desktop(board, tmp_path):
    from edge_mnv2.bench import BenchSettings
    from edge_mnv2.micro.bench import bench_micro

    artifact = compile_model(TRAINED, board, tmp_path / board)
    assert artifact.is_micro and artifact.firmware_path.is_file()
    memory = artifact.metadata["micro"]["memory"]
    assert memory["flash_weights"] == artifact.metadata["micro"]["weight_bytes"] > 1_000_000
    assert memory["ram_arena"] < artifact.metadata["micro"]["unshared_arena_bytes"] / 3
    assert memory["flash_total"] <= memory["flash_available"] and memory["ram_total"] <= memory["ram_available"]

    report = bench_micro(artifact.directory, board, settings=BenchSettings(images=16, peers=False))
    acc = report["accuracy"]
    assert report["status"] == "ok" and report["device"]["emulated"]
    assert acc["max_abs_error_vs_host"] <= 1e-4  # the same C on the host ("TVM on the host")
    assert acc["max_abs_error"] <= 1e-4  # the desktop PyTorch reference
    assert acc["device_top1"] == acc["reference_top1"] and acc["top1_agreement"] == 100.0
    assert report["instructions"]["median"] > 1e6
    assert report["instructions"]["per_inference"] == report["instructions"]["median"]  # the Pi's key too
    assert report["instructions"]["min"] == report["instructions"]["max"]  # -icount: deterministic
    json.dumps(report)  # the report is JSON-ready
