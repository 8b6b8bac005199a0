"""Detection and segmentation through export -> compile -> bench: the shipped trained SSDLite and
Mobile DeepLabv3 on the local RPC device and the emulated Raspberry Pi 4, with device mAP / mIoU equal
to the desktop reference's (the same postprocessing code for both)."""

import pytest

from edge_mnv2.bench import BenchSettings, bench_artifact
from edge_mnv2.compile import compile_model

MODELS = {
    "ssdlite_mobilenet_v2_0.35_128.shapes": ("map50", "map50_95"),
    "deeplabv3_mobilenet_v2_0.35_128.shapes": ("miou",),
}


def check(report, keys):
    metrics = report["accuracy"]["task_metrics"]
    for key in keys:
        assert abs(metrics[f"device_{key}"] - metrics[f"reference_{key}"]) <= 0.1, (key, metrics)
    assert report["accuracy"]["max_abs_error"] <= 1e-3


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_on_the_local_device(model, tmp_path):
    artifact = compile_model(model, "host", tmp_path / "host")
    report = bench_artifact(artifact.directory, settings=BenchSettings(images=60, repeat=4, rounds=2, peers=False))
    check(report, MODELS[model])
    first = MODELS[model][0]
    assert report["accuracy"]["task_metrics"][f"reference_{first}"] > 50  # trained to useful accuracy


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_on_the_emulated_rpi4b(model, tmp_path, rpi4b_image):
    artifact = compile_model(model, "rpi4b", tmp_path / "rpi4b")
    report = bench_artifact(
        artifact.directory, settings=BenchSettings(images=12, repeat=2, rounds=1, warmup=0, peers=False, timeout=600)
    )
    assert report["device"]["kind"] == "emulated"
    check(report, MODELS[model])
    # Counted by default on an emulated board; the counted run's output is the desktop's too.
    assert report["instructions"]["macs"] > 0 and 0.1 < report["instructions"]["per_mac"] < 5
    counted = report["instructions"]["accuracy"]
    assert counted["max_abs_error"] <= 1e-3 * max(1.0, counted["reference_scale"])
