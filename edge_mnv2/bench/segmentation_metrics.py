"""Segmentation accuracy: mean intersection over union (PASCAL VOC's mIoU), in percent.

Intersections and unions are accumulated over all pixels of all images (one confusion matrix), then
IoU = TP / (TP + FP + FN) per class; mIoU averages the classes that occur in the ground truth or the
prediction (a class absent from both has no IoU, reported as NaN). Background counts as a class.
"""

from __future__ import annotations

import numpy as np


def confusion_matrix(pred_masks: np.ndarray, true_masks: np.ndarray, num_classes: int) -> np.ndarray:
    """``[num_classes, num_classes]`` pixel counts, rows true class, columns predicted class."""
    pred = np.asarray(pred_masks).reshape(-1).astype(np.int64)
    true = np.asarray(true_masks).reshape(-1).astype(np.int64)
    if pred.shape != true.shape:
        raise ValueError(f"predicted masks {np.shape(pred_masks)} and true masks {np.shape(true_masks)} differ")
    if pred.size and (min(pred.min(), true.min()) < 0 or max(pred.max(), true.max()) >= num_classes):
        raise ValueError(f"mask values must be class indices 0..{num_classes - 1}")
    return np.bincount(true * num_classes + pred, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def mean_iou(pred_masks: np.ndarray, true_masks: np.ndarray, num_classes: int) -> dict:
    """``miou`` (%), ``per_class_iou`` (% per class, NaN where a class is absent from both), ``pixel_accuracy``."""
    cm = confusion_matrix(pred_masks, true_masks, num_classes).astype(np.float64)
    tp = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - tp
    iou = np.where(union > 0, tp / np.where(union > 0, union, 1), np.nan)
    present = union > 0
    return {
        "miou": float(100 * np.mean(iou[present])) if present.any() else 0.0,
        "per_class_iou": [float(100 * v) for v in iou],
        "pixel_accuracy": float(100 * tp.sum() / cm.sum()) if cm.sum() else 0.0,
        "num_images": int(np.shape(true_masks)[0]) if np.ndim(true_masks) == 3 else 1,
    }


def evaluate_logits(logits: np.ndarray, true_masks: np.ndarray, num_classes: int | None = None) -> dict:
    """mIoU of a segmenter's logits ``[N, C, H, W]`` (arg-max, the same code for reference and device)."""
    from edge_mnv2.postprocess.segmentation import predict_masks

    num_classes = np.shape(logits)[1] if num_classes is None else num_classes
    return mean_iou(predict_masks(logits), true_masks, num_classes)
