"""Figures that compare a device with the reference: output agreement and latency statistics."""

from __future__ import annotations

import numpy as np


def output_agreement(device: np.ndarray, reference: np.ndarray) -> dict:
    """Agreement of ``(N, classes)`` device outputs with reference outputs on the same inputs.

    ``top1_agreement`` and ``top5_overlap`` are percentages: the share of inputs whose arg-max class
    matches, and the mean share of the reference's top-5 classes found in the device's top-5.
    """
    device = np.asarray(device, np.float64).reshape(len(device), -1)
    reference = np.asarray(reference, np.float64).reshape(len(reference), -1)
    if device.shape != reference.shape:
        raise ValueError(f"device outputs {device.shape} and reference outputs {reference.shape} differ in shape")
    k = min(5, device.shape[1])
    top_dev = np.argsort(-device, axis=1)[:, :k]
    top_ref = np.argsort(-reference, axis=1)[:, :k]
    overlap = [len(set(a) & set(b)) / k for a, b in zip(top_dev, top_ref)]
    norms = np.linalg.norm(device, axis=1) * np.linalg.norm(reference, axis=1)
    cosine = np.where(norms > 0, np.sum(device * reference, axis=1) / np.where(norms > 0, norms, 1), 1.0)
    diff = np.abs(device - reference)
    return {
        "num_images": int(len(device)),
        "top1_agreement": float(100.0 * np.mean(top_dev[:, 0] == top_ref[:, 0])),
        "top5_overlap": float(100.0 * np.mean(overlap)),
        "max_abs_error": float(diff.max()),
        "mean_abs_error": float(diff.mean()),
        "mean_cosine_similarity": float(np.mean(cosine)),
    }


def latency_stats(seconds: list[float]) -> dict:
    """Median, p90, min, max, mean and std in milliseconds of timing samples given in seconds."""
    ms = np.asarray(seconds, np.float64) * 1e3
    if ms.size == 0:
        raise ValueError("no timing samples")
    return {
        "median": float(np.median(ms)),
        "p90": float(np.percentile(ms, 90)),
        "min": float(ms.min()),
        "max": float(ms.max()),
        "mean": float(ms.mean()),
        "std": float(ms.std()),
        "samples": int(ms.size),
    }


def topk_accuracy(outputs: np.ndarray, labels: np.ndarray, k: int = 1) -> float:
    """Percentage of rows whose label is among the ``k`` highest outputs."""
    outputs = np.asarray(outputs).reshape(len(outputs), -1)
    labels = np.asarray(labels).reshape(-1)
    if len(outputs) != len(labels) or len(labels) == 0:
        raise ValueError(f"{len(outputs)} outputs for {len(labels)} labels")
    k = min(k, outputs.shape[1])
    top = np.argsort(-outputs, axis=1)[:, :k]
    return float(100.0 * np.mean((top == labels[:, None]).any(axis=1)))


METRIC_LABELS = (("val_top1", "val top-1"), ("val_map50", "val mAP@0.5"), ("val_miou", "val mIoU"))


def headline_metric(metrics: dict) -> str:
    """The validation figure a model's task is judged by (top-1, mAP@0.5 or mIoU), for people."""
    for key, label in METRIC_LABELS:
        if key in metrics:
            return f"{label} {metrics[key]:.2f}%"
    return "no validation figure"
