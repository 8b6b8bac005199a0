"""Post-training int8 quantization of the classifier family into a Relax module that computes in int8."""

from __future__ import annotations

import numpy as np

from edge_mnv2 import progress
from edge_mnv2.errors import EdgeMnv2Error

SCHEMES = ("int8",)
CALIBRATION_IMAGES = 256
# How the integer graph is laid out for the kernels: module that builds it, and what it is for.
KERNELS = {
    "generic": "edge_mnv2.quantize.relax_int8",  # NCHW int8: any CPU, microcontrollers
    "x86-vnni": "edge_mnv2.quantize.relax_int8_vnni",  # NHWC uint8 x packed int8: AVX-512 VNNI
}


def kernels_for(tvm_target) -> str:
    """The int8 kernel layout for a TVM target: VNNI's where the CPU has AVX-512 VNNI, else generic."""
    from edge_mnv2.quantize.x86_intrinsics import has_vnni

    return "x86-vnni" if has_vnni(tvm_target) else "generic"


def parameter_bytes(mod) -> int:
    """Bytes of the constant arrays (weights, biases, multipliers) a Relax module's ``main`` stores."""
    from tvm.ir.expr import Constant

    total = 0

    def walk(expr) -> None:
        nonlocal total
        if isinstance(expr, Constant):  # scalars are immediates in the kernels' code, not stored
            value = expr.value
            array = value.numpy() if hasattr(value, "numpy") else np.asarray(value)
            total += int(array.nbytes) if array.ndim else 0
        for field in getattr(expr, "fields", None) or ():
            walk(field)

    for block in mod["main"].body.blocks:
        for binding in block.bindings:
            for arg in getattr(binding.value, "args", None) or ():
                walk(arg)
    return total


def calibration_images(data: str, resolution: int, preprocessing, count: int = CALIBRATION_IMAGES) -> np.ndarray:
    """Float NCHW calibration inputs: the train split of ``data`` ('shapes' or a folder) or 'synthetic'."""
    if data == "synthetic":
        from edge_mnv2.data.synthetic import synthetic_images

        return preprocessing.normalize(synthetic_images(count, resolution, seed=7))
    from edge_mnv2.data.labelled import open_split

    split = open_split(data, "train", resolution, count, preprocessing=preprocessing)
    return preprocessing.normalize(split.batch(np.arange(len(split))))


def quantized_module(
    model_meta: dict,
    scheme: str,
    calibration: str | None,
    input_shape: tuple[int, int, int, int],
    kernels: str = "generic",
):
    """``(Relax module, metadata, quantized model)`` for the model an edge-mnv2 ONNX file's metadata
    describes, laid out for ``kernels`` (a key of :data:`KERNELS`)."""
    import importlib

    from edge_mnv2.data.preprocessing import Preprocessing
    from edge_mnv2.models import get_spec
    from edge_mnv2.models.weights import build_from_record
    from edge_mnv2.quantize import ptq
    from edge_mnv2.quantize.graph import layer_graph

    if scheme not in SCHEMES:
        raise EdgeMnv2Error(f"unknown quantization {scheme!r}; supported: {', '.join(SCHEMES)}")
    if not model_meta.get("model") or not model_meta.get("weights"):
        raise EdgeMnv2Error(
            "--quantize needs a model edge-mnv2 exported (it quantizes the PyTorch model "
            "behind the ONNX file); give a registered model name or an ONNX file from "
            "`edge-mnv2 export`"
        )
    spec = get_spec(model_meta["model"])
    data = calibration or model_meta.get("dataset") or "synthetic"
    with progress.stage(f"calibrating int8 on {CALIBRATION_IMAGES} {data} images"):
        model = build_from_record(spec, model_meta["weights"]).eval()
        layers = layer_graph(model)
        preprocessing = Preprocessing.from_dict(model_meta["preprocessing"])
        images = calibration_images(data, input_shape[2], preprocessing)
        quantized = ptq.quantize(layers, ptq.calibrate(layers, images))
    fp32_bytes = sum(layer.weight.size * 4 + layer.bias.size * 4 for layer in layers if hasattr(layer, "weight"))
    info = {
        "scheme": "int8: per-channel symmetric weights, per-tensor symmetric activations, int32 "
        "accumulation, fixed-point requantization",
        "calibration": {"data": data, "images": len(images)},
        "weight_bytes": quantized.weight_bytes(),
        "fp32_weight_bytes": int(fp32_bytes),
        "weight_ratio": round(quantized.weight_bytes()["total"] / fp32_bytes, 4),
    }
    mod = importlib.import_module(KERNELS[kernels]).build_module(quantized, input_shape)
    stored = parameter_bytes(mod)
    info.update({"kernels": kernels, "stored_bytes": stored, "stored_ratio": round(stored / fp32_bytes, 4)})
    return mod, info, quantized


def integer_reference(metadata: dict, inputs: np.ndarray) -> np.ndarray | None:
    """For an int8 artifact, the exact integer computation on the desktop (numpy), else None.

    Calibration is deterministic, so re-quantizing gives the artifact's parameters; device outputs
    should equal these bit for bit.
    """
    quant = metadata.get("quantization")
    if not quant:
        return None
    from edge_mnv2.quantize import ptq

    shape = tuple(metadata["input"]["shape"])
    _, _, quantized = quantized_module(metadata["model"], "int8", quant["calibration"]["data"], shape)
    return np.concatenate([ptq.run_integer(quantized, inputs[i : i + 64]) for i in range(0, len(inputs), 64)])


def reference_accuracy(outputs: np.ndarray, reference: np.ndarray, labels: np.ndarray | None) -> dict:
    """Agreement of device outputs with the int8 desktop reference (and its top-1 on labelled data)."""
    from edge_mnv2.bench.metrics import topk_accuracy

    reference = reference.reshape(outputs.shape)
    result = {
        "top1_agreement": float((outputs.argmax(1) == reference.argmax(1)).mean() * 100),
        "max_abs_error": float(np.abs(outputs - reference).max()),
    }
    if labels is not None:
        result["top1"] = topk_accuracy(reference, labels, 1)
    return result
