"""Bench end to end: a compiled model measured through real TVM RPC servers (slow)."""

import json
import os
import shutil

import pytest

from edge_mnv2.artifact import write_metadata
from edge_mnv2.bench import BenchSettings, bench_artifact
from edge_mnv2.compile import compile_model
from edge_mnv2.errors import ArtifactError, EdgeMnv2Error
from edge_mnv2.models.weights import file_sha256
from edge_mnv2.remote import runtime_threads
from edge_mnv2.remote.address import DeviceAddress

pytestmark = pytest.mark.slow

QUICK = BenchSettings(images=16, warmup=1, repeat=6, rounds=2)


def check_matches_reference(report):
    acc = report["accuracy"]
    assert acc["reference"] == "pytorch"
    assert acc["num_images"] == QUICK.images
    assert acc["top1_agreement"] == 100.0
    assert acc["top5_overlap"] == 100.0
    assert acc["max_abs_error"] <= 1e-4
    assert acc["mean_cosine_similarity"] > 0.99999


def test_embedded_local_device(small_artifact):
    """The acceptance test: 0.35_96 through a real local RPC server matches PyTorch within 1e-4."""
    report = bench_artifact(small_artifact.directory, None, QUICK)
    check_matches_reference(report)
    assert report["device"]["kind"] == "local" and report["device"]["port"] > 0
    lat = report["latency_ms"]
    assert lat["samples"] == QUICK.repeat
    assert 0 < lat["min"] <= lat["median"] <= lat["p90"]
    for peer in ("onnxruntime", "torch"):
        assert report["peers"][peer]["latency_ms"]["samples"] == QUICK.repeat
        assert report["peers"][peer]["latency_ms"]["median"] > 0
    assert report["ratios"]["tvm_over_onnxruntime"] == pytest.approx(
        lat["median"] / report["peers"]["onnxruntime"]["latency_ms"]["median"]
    )
    json.dumps(report)  # serialisable as is


def test_direct_rpc_address(small_artifact, rpc_server):
    address = DeviceAddress("rpc", rpc_server.host, rpc_server.port)
    report = bench_artifact(
        small_artifact.directory, address, BenchSettings(images=QUICK.images, warmup=1, repeat=4, rounds=2, peers=False)
    )
    check_matches_reference(report)
    assert report["device"] == {
        "kind": "rpc",
        "host": rpc_server.host,
        "port": rpc_server.port,
        "key": None,
        "emulated": False,
        "tvm_threads": runtime_threads.configure(dict(os.environ)),
    }
    assert report["peers"] == {}


def test_through_tracker(small_artifact, rpc_tracker):
    host, port = rpc_tracker
    report = bench_artifact(
        small_artifact.directory,
        DeviceAddress("tracker", host, port, "host"),
        BenchSettings(images=QUICK.images, warmup=1, repeat=4, rounds=1, peers=False),
    )
    check_matches_reference(report)
    assert report["device"]["key"] == "host"


def test_tracker_with_unknown_key_fails_cleanly(small_artifact, rpc_tracker):
    host, port = rpc_tracker
    with pytest.raises(EdgeMnv2Error, match="no-such-device"):
        bench_artifact(
            small_artifact.directory,
            DeviceAddress("tracker", host, port, "no-such-device"),
            BenchSettings(images=1, repeat=1, rounds=1, peers=False, timeout=5),
        )


def test_altered_library_is_refused(small_artifact, tmp_path):
    copy = tmp_path / "altered"
    shutil.copytree(small_artifact.directory, copy)
    with open(copy / "model.so", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ArtifactError, match="sha256"):
        bench_artifact(copy, None, QUICK)


def test_a_wrong_library_is_caught_by_the_accuracy_check(small_artifact, tmp_path):
    """The comparison is not trivially perfect: a build of other weights disagrees with the reference."""
    other = compile_model("mobilenet_v2_0.35_96", "host", tmp_path / "other", seed=1)
    mixed = tmp_path / "mixed"
    shutil.copytree(small_artifact.directory, mixed)
    shutil.copyfile(other.library_path, mixed / "model.so")
    meta = json.loads((mixed / "artifact.json").read_text())
    meta["files"]["library"]["sha256"] = file_sha256(mixed / "model.so")
    write_metadata(mixed, meta)
    report = bench_artifact(mixed, None, BenchSettings(images=16, warmup=0, repeat=1, rounds=1, peers=False))
    assert report["accuracy"]["top1_agreement"] < 50
    assert report["accuracy"]["max_abs_error"] > 0.05


def test_trained_model_on_its_labelled_validation_set(trained_artifact):
    """Acceptance: the shipped model's device top-1 equals the desktop top-1 on 500 validation images."""
    report = bench_artifact(trained_artifact.directory, None, BenchSettings(warmup=1, repeat=4, rounds=2, peers=False))
    acc = report["accuracy"]
    assert acc["data"]["name"] == "shapes" and acc["data"]["labelled"] and acc["num_images"] == 500
    assert acc["reference_top1"] > 90.0
    assert abs(acc["device_top1"] - acc["reference_top1"]) <= 0.1
    assert abs(acc["device_top5"] - acc["reference_top5"]) <= 0.1
    assert acc["max_abs_error"] <= 1e-4 and acc["top1_agreement"] >= 99.8
    meta = trained_artifact.metadata["model"]
    assert meta["num_classes"] == 10 and meta["dataset"] == "shapes" and meta["weights"]["kind"] == "pretrained"


def test_labelled_image_folder(trained_artifact, tmp_path):
    """Real image files in ImageNet layout, class folders mapped through the model's class list."""
    from PIL import Image

    from edge_mnv2.data.shapes import CLASSES, ShapesSplit

    images, labels = ShapesSplit("test", 96, 20).arrays()
    for i, (img, label) in enumerate(zip(images, labels)):
        folder = tmp_path / "val" / CLASSES[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / f"{i}.png")
    report = bench_artifact(
        trained_artifact.directory, None, BenchSettings(data=str(tmp_path), warmup=0, repeat=1, rounds=1, peers=False)
    )
    acc = report["accuracy"]
    assert acc["data"]["name"] == "imagefolder" and acc["num_images"] == 20
    assert acc["device_top1"] == acc["reference_top1"] >= 80.0


def test_synthetic_data_can_be_forced(trained_artifact):
    report = bench_artifact(
        trained_artifact.directory,
        None,
        BenchSettings(data="synthetic", images=4, warmup=0, repeat=1, rounds=1, peers=False),
    )
    assert report["accuracy"]["data"]["name"] == "synthetic" and "device_top1" not in report["accuracy"]
