"""Measure a compiled artifact on a device: accuracy against the desktop reference, and latency
interleaved with ONNX Runtime and PyTorch eager on the host."""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from edge_mnv2 import __version__, progress
from edge_mnv2.artifact import Artifact, load_artifact
from edge_mnv2.bench.metrics import latency_stats, output_agreement, topk_accuracy
from edge_mnv2.bench.peers import OnnxRuntimePeer, Peer, TorchCudaPeer, TorchPeer
from edge_mnv2.data.evalset import EVAL_SEED
from edge_mnv2.data.labelled import open_split
from edge_mnv2.data.preprocessing import IMAGENET_PREPROCESSING, Preprocessing
from edge_mnv2.data.synthetic import synthetic_images
from edge_mnv2.errors import ArtifactError, DeviceError, EdgeMnv2Error
from edge_mnv2.models import get_spec
from edge_mnv2.models.weights import build_from_record
from edge_mnv2.remote.address import DeviceAddress
from edge_mnv2.remote.harness import DeviceHarness
from edge_mnv2.remote.server import LocalRPCServer
from edge_mnv2.remote.session import Timeouts

SYNTHETIC_IMAGES = 32
LABELLED_IMAGES = 500


@dataclass(frozen=True)
class BenchSettings:
    """How much to measure."""

    images: int | None = None  # evaluation inputs (default: 500 labelled, or 32 synthetic)
    data: str | None = None  # 'shapes', an ImageFolder path, or 'synthetic'; default: the model's data set
    warmup: int = 5  # untimed runs before timing, per runtime
    repeat: int = 50  # timed runs per runtime, in total
    rounds: int = 5  # the timed runs are split into this many interleaved rounds
    peers: bool = True  # also time ONNX Runtime and PyTorch on the host
    timeout: float = 120.0  # seconds allowed for one remote run (other steps scale from it)
    instructions: bool = True  # on an emulated board, count instructions per inference (TVM and rivals)
    count_runs: int = 3  # counted inferences per runtime (after one untimed run)

    def __post_init__(self):
        from edge_mnv2.errors import EdgeMnv2Error

        for name in ("images", "repeat", "rounds", "count_runs"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise EdgeMnv2Error(f"--{name} must be at least 1, got {getattr(self, name)}")
        if self.warmup < 0:
            raise EdgeMnv2Error(f"--warmup must be 0 or more, got {self.warmup}")
        if self.timeout <= 0:
            raise EdgeMnv2Error(f"--timeout must be positive, got {self.timeout}")


def reference_model(artifact: Artifact):
    """The desktop reference for this artifact: the PyTorch model it was exported from, if known."""
    meta = artifact.model_metadata
    if meta.get("model") and meta.get("weights"):
        spec = get_spec(meta["model"])
        return "pytorch", build_from_record(spec, meta["weights"])
    return "onnxruntime", None


def evaluation_images(
    artifact: Artifact, settings: BenchSettings, default_count: int | None = None
) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """``(N, H, W, 3)`` uint8 evaluation images, their labels (None for unlabelled synthetic images) and
    a description of the set.

    By default a model trained on a labelled set is evaluated on that set's validation split; other
    models on seeded synthetic images, where only agreement with the reference can be measured.
    """
    meta = artifact.model_metadata
    resolution = artifact.input_shape[2]
    task = artifact.task
    if task in TASK_SETS and (settings.data or meta.get("dataset")) != "synthetic":
        return _task_images(task, meta, resolution, settings.images or default_count or TASK_IMAGES)
    data = settings.data or meta.get("dataset") or "synthetic"
    if data == "synthetic":
        count = settings.images or default_count or SYNTHETIC_IMAGES
        return (
            synthetic_images(count, resolution, EVAL_SEED),
            None,
            {"name": "synthetic", "size": count, "seed": EVAL_SEED, "labelled": False},
        )
    count = settings.images or default_count or LABELLED_IMAGES
    classes = tuple(meta["classes"]) if meta.get("classes") else None
    pre = artifact.metadata.get("preprocessing")
    preprocessing = Preprocessing.from_dict(pre) if pre else IMAGENET_PREPROCESSING
    dataset = open_split(data, "val", resolution, count, preprocessing=preprocessing, classes=classes)
    num_outputs = int(np.prod(artifact.output.per_item))
    if len(dataset.classes) > num_outputs:
        raise EdgeMnv2Error(
            f"data {data!r} has {len(dataset.classes)} classes but the model outputs "
            f"{num_outputs}; evaluate on data the model was trained for"
        )
    return dataset.batch(np.arange(len(dataset))), dataset.labels, dict(dataset.describe(), labelled=True)


TASK_SETS = {"detection": "shapes-detection", "segmentation": "shapes-segmentation"}
TASK_IMAGES = 200


def _task_images(task: str, meta: dict, resolution: int, count: int):
    """Validation images of the generated detection/segmentation set, with boxes or masks as labels."""
    if task == "detection":
        from edge_mnv2.data.shapes_detection import validation_arrays
    else:
        from edge_mnv2.data.shapes_segmentation import validation_arrays
    images, targets = validation_arrays(count, resolution, int(meta["num_classes"]))
    return images, targets, {"name": TASK_SETS[task], "size": count, "labelled": True, "task": task}


def task_metrics(task: str, meta: dict, device: np.ndarray, reference: np.ndarray, targets) -> dict:
    """mAP (detection) or mIoU (segmentation) of the device and of the desktop reference, through the same
    postprocessing code."""
    if task == "detection":
        from edge_mnv2.bench.detection_metrics import evaluate_raw

        keys = ("map50", "map50_95")
        dev, ref = evaluate_raw(device, targets, meta), evaluate_raw(reference, targets, meta)
    else:
        from edge_mnv2.bench.segmentation_metrics import evaluate_logits

        keys = ("miou",)
        dev, ref = evaluate_logits(device, targets), evaluate_logits(reference, targets)
    return {
        "task": task,
        **{f"device_{k}": dev[k] for k in keys},
        **{f"reference_{k}": ref[k] for k in keys},
        "device": dev,
        "reference": ref,
    }


def evaluation_set(
    artifact: Artifact, settings: BenchSettings, preprocessing: Preprocessing
) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """Model inputs (float32 NCHW) for :func:`evaluation_images`, with labels and description."""
    images, labels, description = evaluation_images(artifact, settings)
    return preprocessing.normalize(images), labels, description


def host_cpu() -> str:
    """LLVM's name for this machine's CPU (znver4, skylake-avx512, ...)."""
    from tvm.target import codegen

    return codegen.llvm_get_system_cpu()


def _split(total: int, parts: int) -> list[int]:
    parts = min(parts, total)
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


# Pause before each runtime's turn: thread pools spin for a while after a run (ONNX Runtime's, PyTorch's
# OpenMP, TVM's), and the next runtime would pay for it. Without it the demo measured ONNX Runtime at a
# 13.8 ms median (min 5.9) beside TVM's 2 threads and PyTorch.
SETTLE_S = 0.25


@dataclass
class DeviceRun:
    """What one session on the device produced."""

    outputs: np.ndarray  # device outputs for every evaluation input
    samples: dict[str, list[float]]  # timing samples (s): "tvm", "baseline" and each host peer, interleaved
    device_info: dict
    baseline_outputs: np.ndarray | None = None  # the baseline build's outputs on the device


def _run_on_device(
    device: DeviceHarness,
    artifact: Artifact,
    settings: BenchSettings,
    inputs: np.ndarray,
    peers: dict[str, Peer],
    baseline: Artifact | None = None,
) -> DeviceRun:
    """Upload, evaluate every input, then time the device (and a baseline build on it) and the host
    peers in interleaved rounds."""
    on_device = {"tvm": artifact, **({"baseline": baseline} if baseline else {})}
    names = {"tvm": "model", "baseline": "baseline"}
    samples: dict[str, list[float]] = {**{key: [] for key in on_device}, **{name: [] for name in peers}}
    outputs: dict[str, list[np.ndarray]] = {key: [] for key in on_device}
    with device:
        for key, built in on_device.items():
            with progress.stage(f"uploading {built.library_path.name} ({built.directory.name}) to the device"):
                device.load(built.library_path, built.target.device, names[key])
        info = device.device_info()
        for key in on_device:
            what = "the baseline" if key == "baseline" else "the device"
            with progress.stage(f"evaluating {len(inputs)} images on {what}"):
                for i in progress.bar(range(len(inputs)), "images", total=len(inputs)):
                    # step calls the function at once, so the loop variables are bound when it runs
                    run = lambda: device.models[names[key]].run(inputs[i : i + 1])  # noqa: B023, E731
                    outputs[key].append(device.step(f"run image {i}", run))

        def timed(key: str, count: int) -> list[float]:
            model = device.models[names[key]]
            model.set_input(inputs[:1])
            return model.time(count)

        with progress.stage(f"timing {settings.repeat} runs each, interleaved in {settings.rounds} rounds"):
            x = inputs[:1]
            if settings.warmup:
                for key in on_device:
                    device.step("warm up", lambda: timed(key, settings.warmup))  # noqa: B023 (called at once)
                for peer in peers.values():
                    peer.time(x, settings.warmup)
            for count in progress.bar(_split(settings.repeat, settings.rounds), "rounds"):
                for key in on_device:
                    time.sleep(SETTLE_S)
                    samples[key] += device.step("time the model", lambda: timed(key, count))  # noqa: B023
                for name, peer in peers.items():
                    time.sleep(SETTLE_S)
                    samples[name] += peer.time(x, count)
    return DeviceRun(
        np.concatenate(outputs["tvm"]), samples, info, np.concatenate(outputs["baseline"]) if baseline else None
    )


def load_baseline(path, artifact: Artifact) -> Artifact:
    """A second build of the same model for the same target (say fp32 beside int8) to measure beside it."""
    baseline = load_artifact(path)
    baseline.verify()
    if baseline.is_micro or baseline.target_name != artifact.target_name:
        raise ArtifactError(
            f"baseline {str(path)!r} is built for {baseline.target_name}, the artifact for "
            f"{artifact.target_name}; compile the baseline with --target {artifact.target_name}"
        )
    if baseline.input.shape != artifact.input.shape or baseline.output.shape != artifact.output.shape:
        raise ArtifactError(
            f"baseline {str(path)!r} takes {list(baseline.input.shape)} -> "
            f"{list(baseline.output.shape)}, the artifact "
            f"{list(artifact.input.shape)} -> {list(artifact.output.shape)}; "
            "give a build of the same model"
        )
    return baseline


def _outputs_accuracy(outputs: np.ndarray, reference: np.ndarray, labels, task: str, model_meta: dict) -> dict:
    """How one device's outputs compare with the desktop reference and the labels."""
    accuracy = output_agreement(outputs, reference)
    if task in TASK_SETS and labels is not None:
        accuracy["task_metrics"] = task_metrics(task, model_meta, outputs, reference, labels)
    elif labels is not None:
        accuracy.update(
            device_top1=topk_accuracy(outputs, labels, 1),
            reference_top1=topk_accuracy(reference, labels, 1),
            device_top5=topk_accuracy(outputs, labels, 5),
            reference_top5=topk_accuracy(reference, labels, 5),
        )
    return accuracy


def default_device(artifact: Artifact) -> tuple[DeviceAddress, LocalRPCServer]:
    """The embedded device for an artifact: a local server for host builds, an emulator for boards."""
    target = artifact.target
    if target.emulate:
        from edge_mnv2.remote.emulator import EmulatedRPCServer, EmulatorRecipe, prepare

        image = prepare(EmulatorRecipe.from_table(target.name, target.emulate))
        return DeviceAddress("emulated", key=target.rpc_key or ""), EmulatedRPCServer(image)
    if target.cross_compiler or target.device not in ("cpu", "cuda"):
        raise ArtifactError(
            f"artifact {str(artifact.directory)!r} is built for {target.name}, which cannot "
            "run on this machine and has no emulator; give --rpc HOST:PORT or --tracker "
            "HOST:PORT --key KEY for a real device"
        )
    return DeviceAddress("local"), LocalRPCServer()


def bench_artifact(
    artifact_path, address: DeviceAddress | None = None, settings: BenchSettings = BenchSettings(), baseline_path=None
) -> dict:
    """Run the whole measurement and return the report (see README for its keys). ``baseline_path``:
    another build of the model for the same target, measured beside it on the same device."""
    address = address or DeviceAddress("local")
    artifact = load_artifact(artifact_path)
    artifact.verify()
    if artifact.is_micro:
        raise ArtifactError(
            f"artifact {str(artifact.directory)!r} is firmware for {artifact.target_name}: "
            "bench it over its serial link (`edge-mnv2 bench ARTIFACT --target BOARD "
            "[--port PORT]`)"
        )
    baseline = load_baseline(baseline_path, artifact) if baseline_path else None
    if artifact.input_dtype != "float32":
        raise ArtifactError(f"artifact input dtype {artifact.input_dtype} is not supported by bench yet")
    pre_dict = artifact.metadata.get("preprocessing")
    preprocessing = Preprocessing.from_dict(pre_dict) if pre_dict else IMAGENET_PREPROCESSING
    inputs, labels, eval_data = evaluation_set(artifact, settings, preprocessing)

    with progress.stage("computing the desktop reference"):
        reference_kind, torch_model = reference_model(artifact)
        ort_peer = OnnxRuntimePeer(artifact.onnx_path)
        ref_runner: Peer = TorchPeer(torch_model) if torch_model is not None else ort_peer
        reference = np.concatenate([ref_runner(inputs[i : i + 1]) for i in range(len(inputs))])

    peers: dict[str, Peer] = {}
    if settings.peers:
        peers["onnxruntime"] = ort_peer
        if torch_model is not None:
            peers["torch"] = TorchPeer(torch_model)
        if torch_model is not None and artifact.target.device == "cuda" and address.kind == "local":
            import copy

            import torch

            if torch.cuda.is_available():  # the GPU the artifact runs on: PyTorch CUDA eager beside it
                peers["torch-cuda"] = TorchCudaPeer(copy.deepcopy(torch_model))

    timeouts = Timeouts.scaled(settings.timeout)
    server = None
    if address.kind == "local":
        address, server = default_device(artifact)
    device = DeviceHarness(address, timeouts, server)
    try:
        run = _run_on_device(device, artifact, settings, inputs, peers, baseline)
    except DeviceError as exc:
        exc.details = {"device": device.address.to_dict(), "incidents": device.incidents}
        raise
    task = artifact.task
    accuracy = _outputs_accuracy(run.outputs, reference, labels, task, artifact.model_metadata)
    accuracy["reference"] = reference_kind
    accuracy["data"] = eval_data

    from edge_mnv2.quantize import integer_reference, reference_accuracy

    int8 = integer_reference(artifact.metadata, inputs)
    if int8 is not None:
        accuracy["int8_reference"] = reference_accuracy(run.outputs, int8, labels)
    latency = latency_stats(run.samples["tvm"])
    report = {
        "model": artifact.model_name,
        "artifact": str(artifact.directory),
        "target": artifact.metadata["target"],
        "status": "ok",
        "device": dict(device.address.to_dict(), **run.device_info),
        "incidents": device.incidents,
        "input": artifact.metadata["input"],
        "latency_ms": latency,
        "accuracy": accuracy,
        "peers": {
            name: dict(peer.describe(), where="host", latency_ms=latency_stats(run.samples[name]))
            for name, peer in peers.items()
        },
        "settings": settings.__dict__,
        "environment": {
            "host": platform.node(),
            "machine": platform.machine(),
            "host_cpu": host_cpu(),
            "edge_mnv2": __version__,
            "tvm": artifact.metadata["versions"]["tvm"],
        },
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    report["ratios"] = {
        f"tvm_over_{name}": latency["median"] / peer["latency_ms"]["median"] for name, peer in report["peers"].items()
    }
    if settings.instructions and run.device_info.get("emulated") and artifact.target.emulate:
        # Timings under emulation mean nothing; instruction counts are deterministic, and the rivals a
        # board's user would pick are counted on the same emulated CPU.
        from edge_mnv2.remote.instructions.counting import CountSettings
        from edge_mnv2.remote.instructions.emulated_bench import count_instructions

        counts = count_instructions(
            artifact,
            inputs[:1],
            reference[:1],
            settings.peers,
            CountSettings(runs=settings.count_runs, timeout=max(900.0, settings.timeout * 10)),
        )
        report["instructions"] = counts["instructions"]
        report["peers"].update(counts["peers"])
        report["ratios"].update(counts["ratios"])
    if baseline is not None:
        quant = baseline.quantization
        report["baseline"] = {
            "artifact": str(baseline.directory),
            "quantization": quant.kernels if quant else None,
            "tuning": baseline.metadata.get("tuning"),
            "latency_ms": latency_stats(run.samples["baseline"]),
            "accuracy": _outputs_accuracy(run.baseline_outputs, reference, labels, task, artifact.model_metadata),
        }
        report["ratios"]["tvm_over_baseline"] = latency["median"] / report["baseline"]["latency_ms"]["median"]
    return report
