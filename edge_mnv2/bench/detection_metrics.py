"""Detection accuracy: mean average precision, COCO-style (101-point interpolated AP).

For a class and an IoU threshold, all detections of the class over the data set are taken best score
first; each is a true positive when it overlaps a not-yet-matched ground-truth box of its class in its
image by at least the threshold (the best-overlapping such box is taken), a false positive otherwise.
AP is the mean, over the 101 recall points 0, 0.01, ..., 1, of the highest precision reached at that
recall or beyond (0 where the recall is never reached). mAP averages over the classes that have ground
truth; ``map50`` is mAP at IoU 0.5 (PASCAL VOC-style threshold), ``map50_95`` the mean over 0.5:0.05:0.95
(COCO's primary metric). Values are percentages. Ground-truth boxes are never "crowd" or "difficult".
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from edge_mnv2.postprocess.detection import box_iou

COCO_IOU_THRESHOLDS: tuple[float, ...] = tuple(np.round(np.linspace(0.5, 0.95, 10), 2))
RECALL_POINTS = np.linspace(0.0, 1.0, 101)

Detections = tuple[np.ndarray, np.ndarray, np.ndarray]  # boxes (K, 4), scores (K,), labels (K,)
GroundTruth = tuple[np.ndarray, np.ndarray]  # boxes (M, 4), labels (M,)


def average_precision(tp: np.ndarray, num_gt: int) -> float:
    """101-point interpolated AP (0..1) of detections already sorted best first (``tp`` booleans)."""
    if num_gt == 0:
        return float("nan")
    tp = np.asarray(tp, bool)
    if tp.size == 0:
        return 0.0
    ctp = np.cumsum(tp)
    recall = ctp / num_gt
    precision = ctp / np.arange(1, len(tp) + 1)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]  # best precision at this recall or beyond
    at = np.searchsorted(recall, RECALL_POINTS, side="left")
    return float(np.mean(np.where(at < len(envelope), envelope[np.minimum(at, len(envelope) - 1)], 0.0)))


def mean_average_precision(
    detections: Sequence[Detections],
    ground_truth: Sequence[GroundTruth],
    iou_thresholds: Sequence[float] = COCO_IOU_THRESHOLDS,
    num_classes: int | None = None,
) -> dict:
    """mAP of per-image ``detections`` against ``ground_truth`` (boxes x0, y0, x1, y1; any one scale).

    Returns ``map50``, ``map50_95`` (the mean over ``iou_thresholds``), ``per_threshold`` (mAP at each),
    ``per_class_ap50`` (AP at 0.5 per class; NaN for a class without ground truth) and counts. Classes are
    0-based labels; ``num_classes`` defaults to the largest label seen + 1.
    """
    if len(detections) != len(ground_truth):
        raise ValueError(f"{len(detections)} images of detections for {len(ground_truth)} of ground truth")
    thresholds = np.asarray(sorted(set(float(t) for t in iou_thresholds) | {0.5}), np.float64)
    labels_seen = [np.asarray(g[1]).reshape(-1) for g in ground_truth] + [
        np.asarray(d[2]).reshape(-1) for d in detections
    ]
    max_label = max((int(lab.max()) for lab in labels_seen if lab.size), default=-1)
    num_classes = max_label + 1 if num_classes is None else int(num_classes)

    ap = np.full((len(thresholds), num_classes), np.nan)
    num_gt_per_class = np.zeros(num_classes, np.int64)
    num_det = 0
    for c in range(num_classes):
        gts = []  # per image: boxes of class c
        dets = []  # (score, image, box)
        for i, ((db, ds, dl), (gb, gl)) in enumerate(zip(detections, ground_truth)):
            gl = np.asarray(gl).reshape(-1)
            gts.append(np.asarray(gb, np.float64).reshape(-1, 4)[gl == c])
            dl = np.asarray(dl).reshape(-1)
            sel = dl == c
            for box, score in zip(np.asarray(db, np.float64).reshape(-1, 4)[sel], np.asarray(ds).reshape(-1)[sel]):
                dets.append((float(score), i, box))
        num_gt = sum(len(g) for g in gts)
        num_gt_per_class[c] = num_gt
        num_det += len(dets)
        if num_gt == 0:
            continue
        order = sorted(range(len(dets)), key=lambda k: -dets[k][0])  # stable: ties keep input order
        matched = [np.zeros((len(thresholds), len(g)), bool) for g in gts]
        tp = np.zeros((len(thresholds), len(order)), bool)
        for rank, k in enumerate(order):
            _, i, box = dets[k]
            if not len(gts[i]):
                continue
            iou = box_iou(box[None], gts[i])[0]  # (M,)
            for t, thr in enumerate(thresholds):
                free = np.where(~matched[i][t] & (iou >= thr), iou, -1.0)
                best = int(np.argmax(free))
                if free[best] >= 0:
                    matched[i][t, best] = True
                    tp[t, rank] = True
        for t in range(len(thresholds)):
            ap[t, c] = average_precision(tp[t], num_gt)

    with np.errstate(all="ignore"):
        per_threshold = {
            f"{thr:.2f}": float(100 * np.nanmean(ap[t])) if np.isfinite(ap[t]).any() else 0.0
            for t, thr in enumerate(thresholds)
        }
    asked = [f"{float(t):.2f}" for t in iou_thresholds]
    return {
        "map50": per_threshold["0.50"],
        "map50_95": float(np.mean([per_threshold[k] for k in asked])),
        "per_threshold": {k: per_threshold[k] for k in asked},
        "per_class_ap50": [float(100 * v) for v in ap[list(thresholds).index(0.5)]],
        "num_images": len(detections),
        "num_ground_truth": int(num_gt_per_class.sum()),
        "num_detections": int(num_det),
    }


def evaluate_raw(raw: np.ndarray, ground_truth: Sequence[GroundTruth], spec_or_meta, **detect_kwargs) -> dict:
    """Postprocess a detector's raw outputs ``[N, A, 4 + 1 + C]`` with :func:`detect` and score them.

    The one call for the desktop reference's outputs and the device's, so both go through the same code.
    """
    from edge_mnv2.postprocess.detection import detect

    detections = detect(raw, spec_or_meta, **detect_kwargs)
    num_classes = np.asarray(raw).shape[-1] - 5
    return mean_average_precision(detections, ground_truth, num_classes=num_classes)
