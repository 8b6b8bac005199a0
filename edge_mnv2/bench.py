"""Measure a compiled artifact on a device: accuracy against the desktop reference, and latency
interleaved with ONNX Runtime and PyTorch eager on the host."""

from __future__ import annotations

import contextlib
import platform
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from edge_mnv2 import __version__, progress
from edge_mnv2.artifact import Artifact, load_artifact
from edge_mnv2.data.evalset import EVAL_SEED, evaluation_inputs
from edge_mnv2.data.preprocessing import IMAGENET_PREPROCESSING, Preprocessing
from edge_mnv2.data.labelled import open_split
from edge_mnv2.errors import ArtifactError, EdgeMnv2Error
from edge_mnv2.metrics import latency_stats, output_agreement, topk_accuracy
from edge_mnv2.models import get_spec
from edge_mnv2.models.weights import build_from_record
from edge_mnv2.peers import OnnxRuntimePeer, Peer, TorchPeer
from edge_mnv2.remote.address import DeviceAddress
from edge_mnv2.remote.server import LocalRPCServer
from edge_mnv2.remote.session import DeviceSession, Timeouts


SYNTHETIC_IMAGES = 32
LABELLED_IMAGES = 500


@dataclass(frozen=True)
class BenchSettings:
    """How much to measure."""

    images: int | None = None  # evaluation inputs (default: 500 labelled, or 32 synthetic)
    data: str | None = None    # 'shapes', an ImageFolder path, or 'synthetic'; default: the model's data set
    warmup: int = 5      # untimed runs before timing, per runtime
    repeat: int = 50     # timed runs per runtime, in total
    rounds: int = 5      # the timed runs are split into this many interleaved rounds
    peers: bool = True   # also time ONNX Runtime and PyTorch on the host
    timeout: float = 120.0  # seconds allowed for one remote run (other steps scale from it)

    def __post_init__(self):
        from edge_mnv2.errors import EdgeMnv2Error

        for name in ("images", "repeat", "rounds"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise EdgeMnv2Error(f"--{name} must be at least 1, got {getattr(self, name)}")
        if self.warmup < 0:
            raise EdgeMnv2Error(f"--warmup must be 0 or more, got {self.warmup}")
        if self.timeout <= 0:
            raise EdgeMnv2Error(f"--timeout must be positive, got {self.timeout}")


def _reference(artifact: Artifact):
    """The desktop reference for this artifact: the PyTorch model it was exported from, if known."""
    meta = artifact.metadata.get("model", {})
    if meta.get("model") and meta.get("weights"):
        spec = get_spec(meta["model"])
        return "pytorch", build_from_record(spec, meta["weights"])
    return "onnxruntime", None


def evaluation_set(artifact: Artifact, settings: BenchSettings,
                   preprocessing: Preprocessing) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """Model inputs, their labels (None for unlabelled synthetic images) and a description of the set.

    By default a model trained on a labelled set is evaluated on that set's validation split; other
    models on seeded synthetic images, where only agreement with the reference can be measured.
    """
    meta = artifact.metadata.get("model", {})
    data = settings.data or meta.get("dataset") or "synthetic"
    resolution = artifact.input_shape[2]
    if data == "synthetic":
        count = settings.images or SYNTHETIC_IMAGES
        return (evaluation_inputs(count, resolution, preprocessing), None,
                {"name": "synthetic", "size": count, "seed": EVAL_SEED, "labelled": False})
    count = settings.images or LABELLED_IMAGES
    classes = tuple(meta["classes"]) if meta.get("classes") else None
    dataset = open_split(data, "val", resolution, count, preprocessing=preprocessing, classes=classes)
    num_outputs = int(np.prod(artifact.metadata["output"]["shape"][1:]))
    if len(dataset.classes) > num_outputs:
        raise EdgeMnv2Error(f"data {data!r} has {len(dataset.classes)} classes but the model outputs "
                            f"{num_outputs}; evaluate on data the model was trained for")
    images = dataset.batch(np.arange(len(dataset)))
    return preprocessing.normalize(images), dataset.labels, dict(dataset.describe(), labelled=True)


def _split(total: int, parts: int) -> list[int]:
    parts = min(parts, total)
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


@contextlib.contextmanager
def open_device(address: DeviceAddress, timeouts: Timeouts):
    """A connected :class:`DeviceSession`; for ``local`` it starts and later stops its own server."""
    server = None
    try:
        if address.kind == "local":
            with progress.stage("starting the local TVM RPC server"):
                server = LocalRPCServer().start()
            address = DeviceAddress("local", server.host, server.port)
        with progress.stage(f"connecting to {address.describe()}"):
            session = DeviceSession(address, timeouts).connect()
        try:
            yield session
        finally:
            session.close()
    finally:
        if server is not None:
            server.stop()


def bench_artifact(artifact_path, address: DeviceAddress | None = None,
                   settings: BenchSettings = BenchSettings()) -> dict:
    """Run the whole measurement and return the report (see README for its keys)."""
    address = address or DeviceAddress("local")
    artifact = load_artifact(artifact_path)
    artifact.verify()
    if artifact.metadata["target"]["device"] != "cpu" and address.kind == "local":
        raise ArtifactError(f"artifact {str(artifact.directory)!r} is built for a "
                            f"{artifact.metadata['target']['device']} device; give --rpc or --tracker for one")
    if artifact.input_dtype != "float32":
        raise ArtifactError(f"artifact input dtype {artifact.input_dtype} is not supported by bench yet")
    pre_dict = artifact.metadata.get("preprocessing")
    preprocessing = Preprocessing.from_dict(pre_dict) if pre_dict else IMAGENET_PREPROCESSING
    inputs, labels, eval_data = evaluation_set(artifact, settings, preprocessing)

    with progress.stage("computing the desktop reference"):
        reference_kind, torch_model = _reference(artifact)
        ort_peer = OnnxRuntimePeer(artifact.onnx_path)
        ref_runner: Peer = TorchPeer(torch_model) if torch_model is not None else ort_peer
        reference = np.concatenate([ref_runner(inputs[i:i + 1]) for i in range(len(inputs))])

    peers: dict[str, Peer] = {}
    if settings.peers:
        peers["onnxruntime"] = ort_peer
        if torch_model is not None:
            peers["torch"] = TorchPeer(torch_model)

    timeouts = Timeouts.scaled(settings.timeout)
    with open_device(address, timeouts) as session:
        address = session.address
        with progress.stage(f"uploading {artifact.library_path.name} to the device"):
            model = session.load_model(artifact.library_path, artifact.metadata["target"]["device"])
        outputs = []
        with progress.stage(f"evaluating {len(inputs)} {eval_data['name']} images on the device"):
            for i in progress.bar(range(len(inputs)), "images", total=len(inputs)):
                outputs.append(model.run(inputs[i:i + 1]))
        device_outputs = np.concatenate(outputs)
        accuracy = output_agreement(device_outputs, reference)
        accuracy["reference"] = reference_kind
        accuracy["data"] = eval_data
        if labels is not None:
            accuracy.update(device_top1=topk_accuracy(device_outputs, labels, 1),
                            reference_top1=topk_accuracy(reference, labels, 1),
                            device_top5=topk_accuracy(device_outputs, labels, 5),
                            reference_top5=topk_accuracy(reference, labels, 5))

        samples: dict[str, list[float]] = {"tvm": [], **{name: [] for name in peers}}
        with progress.stage(f"timing {settings.repeat} runs each, interleaved in {settings.rounds} rounds"):
            x = inputs[:1]
            model.set_input(x)
            if settings.warmup:
                model.time(settings.warmup)
                for peer in peers.values():
                    peer.time(x, settings.warmup)
            for count in progress.bar(_split(settings.repeat, settings.rounds), "rounds"):
                samples["tvm"] += model.time(count)
                for name, peer in peers.items():
                    samples[name] += peer.time(x, count)

    latency = latency_stats(samples["tvm"])
    report = {
        "model": artifact.model_name,
        "artifact": str(artifact.directory),
        "target": artifact.metadata["target"],
        "device": address.to_dict(),
        "input": artifact.metadata["input"],
        "latency_ms": latency,
        "accuracy": accuracy,
        "peers": {name: dict(peer.describe(), where="host", latency_ms=latency_stats(samples[name]))
                  for name, peer in peers.items()},
        "settings": settings.__dict__,
        "environment": {"host": platform.node(), "machine": platform.machine(),
                        "processor": artifact.metadata["target"]["tvm"].get("mcpu"),
                        "edge_mnv2": __version__, "tvm": artifact.metadata["versions"]["tvm"]},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    report["ratios"] = {f"tvm_over_{name}": latency["median"] / peer["latency_ms"]["median"]
                        for name, peer in report["peers"].items()}
    return report
