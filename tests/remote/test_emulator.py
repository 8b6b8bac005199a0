"""The emulated Raspberry Pi: TVM's RPC server under qemu-user, reached through a tracker (slow)."""

import time

import numpy as np
import pytest

from edge_mnv2.bench import BenchSettings, bench_artifact
from edge_mnv2.bench.report import format_table
from edge_mnv2.compile import compile_model
from edge_mnv2.errors import DeviceError
from edge_mnv2.remote.address import DeviceAddress
from edge_mnv2.remote.emulator import EmulatedRPCServer, EmulatorRecipe, prepare
from edge_mnv2.remote.tracker import LocalTracker
from edge_mnv2.targets import load_target

pytestmark = pytest.mark.slow


def test_image_holds_a_foreign_python_with_tvm_runtime_only(rpi4b_image):
    assert (rpi4b_image.sysroot / "usr" / "bin" / "python3.11").is_file()
    assert (rpi4b_image.site / "tvm" / "lib" / "libtvm_runtime.so").is_file()
    assert not list(rpi4b_image.site.rglob("libtvm_compiler.so"))
    assert (rpi4b_image.root / "READY").is_file()
    with open(rpi4b_image.sysroot / "usr" / "bin" / "python3.11", "rb") as f:
        assert int.from_bytes(f.read(20)[18:20], "little") == 0xB7  # AArch64


def test_prepare_is_cached(rpi4b_image):
    start = time.monotonic()
    again = prepare(EmulatorRecipe.from_target(load_target("rpi4b")))
    assert again.root == rpi4b_image.root and time.monotonic() - start < 1


def test_through_the_tracker_matches_the_desktop(rpi4b_artifact, rpi4b_image):
    """Acceptance: the trained model, built for rpi4b, on the emulated rpi4b found through the tracker."""
    with LocalTracker() as tracker, EmulatedRPCServer(rpi4b_image, tracker=tracker.address, key="rpi4b"):
        tracker.wait_for_key("rpi4b", timeout=180)
        report = bench_artifact(
            rpi4b_artifact.directory,
            DeviceAddress("tracker", *tracker.address, "rpi4b"),
            BenchSettings(images=40, warmup=0, repeat=2, rounds=1, peers=False, timeout=300, instructions=False),
        )
    acc = report["accuracy"]
    assert acc["max_abs_error"] <= 1e-4
    assert acc["device_top1"] == acc["reference_top1"] and acc["top1_agreement"] == 100.0
    assert report["device"]["emulated"] is True and report["device"]["machine"] == "aarch64"
    assert report["device"]["cpu"] == "cortex-a72"
    assert "timings under emulation are NOT device timings" in format_table(report)


def test_default_device_of_a_board_artifact_is_its_emulator(rpi4b_artifact):
    report = bench_artifact(
        rpi4b_artifact.directory,
        None,
        BenchSettings(images=5, warmup=0, repeat=1, rounds=1, peers=False, timeout=300, instructions=False),
    )
    assert report["device"]["kind"] == "emulated" and report["device"]["emulated"] is True
    assert report["accuracy"]["max_abs_error"] <= 1e-4
    assert "instructions" not in report  # counting turned off (--no-instructions)


def test_wrong_isa_build_fails_clearly_and_in_bounded_time(tmp_path):
    """A build for SVE (which the Cortex-A72 lacks) dies with SIGILL on the emulated rpi4b, as on a Pi."""
    text = (load_target("rpi4b").path).read_text()
    (tmp_path / "rpi4b-sve.toml").write_text(
        text.replace('name = "rpi4b"', 'name = "rpi4b-sve"').replace('mattr = ["+neon"]', 'mattr = ["+neon", "+sve"]')
    )
    artifact = compile_model("mobilenet_v2_0.35_96.shapes", tmp_path / "rpi4b-sve.toml", tmp_path / "sve")
    start = time.monotonic()
    with pytest.raises(DeviceError) as info:
        bench_artifact(
            artifact.directory, None, BenchSettings(images=2, warmup=0, repeat=1, rounds=1, peers=False, timeout=120)
        )
    message = str(info.value)
    assert "emulated cortex-a72" in message and "run image 0" in message and "twice" in message
    assert "SIGILL" in message and "compiled for this board" in message
    assert time.monotonic() - start < 400


def test_emulated_server_reports_what_it_is(rpi4b_image, rpi4b_artifact):
    from edge_mnv2.remote.harness import DeviceHarness

    with DeviceHarness(DeviceAddress("emulated", key="rpi4b"), server=EmulatedRPCServer(rpi4b_image)) as device:
        info = device.device_info()
        device.load(rpi4b_artifact.library_path)
        out = device.step("run", lambda: device.model.run(np.zeros((1, 3, 96, 96), np.float32)))
    assert info["emulated"] is True and info["cpu"] == "cortex-a72" and info["tvm_threads"] >= 1
    assert out.shape == (1, 10)


def test_a_second_process_waits_for_an_image_being_built_instead_of_replacing_it(tmp_path):
    """Two test workers (or two commands) preparing the same image: the second blocks on the build lock."""
    import subprocess
    import sys

    from edge_mnv2.remote.emulator import build_lock

    image = tmp_path / "image"
    probe = (
        "import fcntl, sys; f = open(sys.argv[1], 'w')\n"
        "try:\n    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)\nexcept BlockingIOError:\n    sys.exit(3)"
    )
    lock = str(tmp_path / "image.lock")
    with build_lock(image):
        assert subprocess.run([sys.executable, "-c", probe, lock]).returncode == 3  # held: it would wait
    assert subprocess.run([sys.executable, "-c", probe, lock]).returncode == 0  # released
