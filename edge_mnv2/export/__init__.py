"""PyTorch -> ONNX export with recorded metadata and a numerical check against ONNX Runtime."""

from __future__ import annotations

import io
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch

from edge_mnv2 import __version__
from edge_mnv2.data.evalset import evaluation_inputs
from edge_mnv2.errors import ExportCheckError, ModelFileError
from edge_mnv2.models import get_spec
from edge_mnv2.models.registry import ModelSpec
from edge_mnv2.models.weights import DEFAULT_SEED, build_model, checkpoint_metadata, describe

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
OPSET = 17
METADATA_KEY = "edge_mnv2"
CHECK_TOLERANCE = 1e-4
CHECK_IMAGES = 4


@dataclass(frozen=True)
class ExportResult:
    path: Path
    opset: int
    max_abs_error: float
    metadata: dict


def _onnx_bytes(model: torch.nn.Module, spec: ModelSpec, opset: int) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of the dynamo one, but it gives a clean,
        # static, constant-folded graph for a CNN, which is what TVM imports best.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (torch.zeros(spec.input_shape),),
            buf,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    return buf.getvalue()


def onnxruntime_outputs(model_bytes_or_path, inputs: np.ndarray) -> np.ndarray:
    """Run a batch through ONNX Runtime one image at a time (the graph has a static batch of 1)."""
    import onnxruntime as ort

    src = str(model_bytes_or_path) if isinstance(model_bytes_or_path, Path) else model_bytes_or_path
    session = ort.InferenceSession(src, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: inputs[i : i + 1]})[0] for i in range(len(inputs))])


def export_onnx(
    model_name: str,
    output: str | Path,
    checkpoint: str | Path | None = None,
    seed: int = DEFAULT_SEED,
    opset: int = OPSET,
) -> ExportResult:
    """Export a registered model to ONNX at ``output``; raise if ONNX Runtime disagrees with PyTorch.

    The file is written atomically: on any failure nothing is left at ``output``.
    """
    spec = get_spec(model_name)
    model = build_model(spec, checkpoint, seed)
    proto = onnx.load_from_string(_onnx_bytes(model, spec, opset))
    metadata = dict(spec.metadata(), **checkpoint_metadata(spec, checkpoint))
    metadata = dict(
        metadata,
        weights=describe(checkpoint, seed, spec),
        opset=opset,
        input_name=INPUT_NAME,
        output_name=OUTPUT_NAME,
        exporter=f"edge-mnv2 {__version__}",
        torch=torch.__version__,
    )
    proto.producer_name, proto.producer_version = "edge-mnv2", __version__
    proto.doc_string = f"{spec.name} exported by edge-mnv2 {__version__}"
    flat = {
        "model_name": spec.name,
        "width": str(spec.width),
        "resolution": str(spec.resolution),
        "num_classes": str(metadata["num_classes"]),
        "mean": json.dumps(list(spec.preprocessing.mean)),
        "std": json.dumps(list(spec.preprocessing.std)),
        METADATA_KEY: json.dumps(metadata),
    }
    onnx.helper.set_model_props(proto, flat)
    onnx.checker.check_model(proto, full_check=True)
    data = proto.SerializeToString()

    inputs = evaluation_inputs(CHECK_IMAGES, spec.resolution, spec.preprocessing)
    with torch.inference_mode():
        expected = model(torch.from_numpy(inputs)).numpy()
    got = onnxruntime_outputs(data, inputs)
    max_abs_error = float(np.max(np.abs(got - expected)))
    if not max_abs_error <= CHECK_TOLERANCE:
        raise ExportCheckError(
            f"ONNX Runtime output differs from PyTorch by {max_abs_error:.3g} (limit "
            f"{CHECK_TOLERANCE:g}) for {spec.name}; the export is wrong, nothing written"
        )

    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.{os.getpid()}.partial")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
    return ExportResult(path=output, opset=opset, max_abs_error=max_abs_error, metadata=metadata)


def load_onnx(path: str | Path) -> onnx.ModelProto:
    """Read and check an ONNX file, with a clear error for a missing, unreadable or invalid one."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file {str(path)!r} does not exist; give an .onnx file or a model name")
    try:
        proto = onnx.load(str(path))
    except Exception as exc:
        raise ModelFileError(
            f"{str(path)!r} is not an ONNX model ({type(exc).__name__}); export one with `edge-mnv2 export MODEL`"
        ) from exc
    if not proto.graph.node:
        raise ModelFileError(
            f"{str(path)!r} is not an ONNX model (it has no graph); export one with `edge-mnv2 export MODEL`"
        )
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ModelFileError(f"ONNX file {str(path)!r} fails onnx.checker: {first}") from exc
    return proto


def read_metadata(proto: onnx.ModelProto) -> dict:
    """The edge-mnv2 metadata recorded at export, or {} for a foreign ONNX file."""
    for prop in proto.metadata_props:
        if prop.key == METADATA_KEY:
            return json.loads(prop.value)
    return {}
