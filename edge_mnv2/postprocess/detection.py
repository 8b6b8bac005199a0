"""SSD postprocessing in numpy: default anchor boxes, the box coder, non-maximum suppression, detect().

The detector's single output is ``[N, A, 4 + 1 + C]``: for each of the ``A`` anchors the four box
regression deltas, then the logits of background and the ``C`` classes. Everything that turns that into
boxes lives here, is plain numpy, and is applied in the same way to the desktop PyTorch reference's
outputs and to the device's. The settings come from the model's metadata (``ModelSpec.metadata()``,
recorded in the ONNX file by export), so an exported file is enough to postprocess its outputs.

Conventions (TensorFlow Object Detection API's SSD, which the paper's SSDLite used):

* anchors are ``(cx, cy, w, h)`` in image-normalised coordinates, laid out feature map by feature map,
  then row, column, and box within the location;
* the box coder is Faster R-CNN's with scales ``(10, 10, 5, 5)``: ``tx = 10 (x - xa) / wa``,
  ``ty = 10 (y - ya) / ha``, ``tw = 5 log(w / wa)``, ``th = 5 log(h / ha)`` (delta order x, y, w, h);
* decoded boxes are ``(x0, y0, x1, y1)`` normalised to [0, 1]; class scores are a softmax over
  background + classes with the background column dropped; labels are 0-based class indices.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

NUM_LAYERS = 6
ANCHOR_DEFAULTS = {
    "min_scale": 0.2,
    "max_scale": 0.95,
    "aspect_ratios": [1.0, 2.0, 0.5, 3.0, 1.0 / 3.0],
    "interpolated_scale_aspect_ratio": 1.0,
    "reduce_boxes_in_lowest_layer": True,
}
BOX_CODER_SCALES = (10.0, 10.0, 5.0, 5.0)
NMS_DEFAULTS = {
    "score_threshold": 0.01,
    "iou_threshold": 0.6,
    "max_detections": 100,
    "max_detections_per_class": 100,
    "candidates_per_class": 200,  # top-scoring boxes of a class that enter NMS (bounds the work)
}
_BOX_CLIP = math.log(1000.0 / 16)  # widest log-size change decoded (torchvision's bound), avoids overflow


def feature_map_sizes(resolution: int, num_layers: int = NUM_LAYERS) -> list[int]:
    """Side of each SSD feature map for a square input: output stride 16, 32, then halving extras.

    Every stride-2 layer is a 3x3 convolution with padding 1, which maps a side ``s`` to ``ceil(s / 2)``
    (320 -> 20, 10, 5, 3, 2, 1; 300 -> 19, 10, 5, 3, 2, 1 as in TensorFlow's SSD).
    """
    sizes, side = [], int(resolution)
    for halving in range(3 + num_layers):
        side = -(-side // 2)
        if halving >= 3:
            sizes.append(side)
    return sizes


def ssd_config(resolution: int) -> dict:
    """The postprocessing record of an SSD model at ``resolution``, as written into its metadata."""
    config = {
        "kind": "ssd",
        "output": "per anchor: box deltas (tx, ty, tw, th), then logits of background + classes",
        "feature_map_sizes": feature_map_sizes(resolution),
        "anchors": dict(ANCHOR_DEFAULTS, aspect_ratios=list(ANCHOR_DEFAULTS["aspect_ratios"])),
        "box_coder": {
            "scales": list(BOX_CODER_SCALES),
            "anchor_format": "cx,cy,w,h",
            "box_format": "x0,y0,x1,y1 normalised",
        },
        "score": "softmax, background at index 0 dropped",
        "nms": dict(NMS_DEFAULTS),
    }
    config["num_anchors"] = int(
        sum(s * s * n for s, n in zip(config["feature_map_sizes"], anchors_per_location(config)))
    )
    return config


def _layer_boxes(anchors: Mapping, num_layers: int) -> list[list[tuple[float, float]]]:
    """(scale, aspect ratio) of every box at a location, per layer (TF's ``create_ssd_anchors``)."""
    lo, hi = float(anchors["min_scale"]), float(anchors["max_scale"])
    scales = [lo + (hi - lo) * i / (num_layers - 1) for i in range(num_layers)] + [1.0]
    interp = float(anchors.get("interpolated_scale_aspect_ratio", 1.0))
    layers = []
    for i in range(num_layers):
        if i == 0 and anchors.get("reduce_boxes_in_lowest_layer", True):
            layers.append([(0.1, 1.0), (scales[0], 2.0), (scales[0], 0.5)])
            continue
        boxes = [(scales[i], float(ar)) for ar in anchors["aspect_ratios"]]
        if interp > 0:
            boxes.append((math.sqrt(scales[i] * scales[i + 1]), interp))
        layers.append(boxes)
    return layers


def _config_of(spec_or_meta) -> dict:
    """The SSD postprocessing record of a ModelSpec, a metadata dict, or the record itself."""
    if hasattr(spec_or_meta, "metadata"):
        spec_or_meta = spec_or_meta.metadata()
    if isinstance(spec_or_meta, Mapping):
        if spec_or_meta.get("kind") == "ssd":
            return dict(spec_or_meta)
        post = spec_or_meta.get("postprocessing")
        if isinstance(post, Mapping) and post.get("kind") == "ssd":
            return dict(post)
    raise ValueError(
        "no SSD postprocessing settings: give a detection model's spec or its metadata "
        "(the ONNX file's edge_mnv2 metadata)"
    )


def anchors_per_location(spec_or_meta) -> list[int]:
    """Boxes per feature-map location, per layer (3 on the first with the default settings, then 6)."""
    config = _config_of(spec_or_meta)
    return [len(b) for b in _layer_boxes(config["anchors"], len(config["feature_map_sizes"]))]


def anchors_for(spec_or_meta) -> np.ndarray:
    """The default anchor boxes ``[A, 4]`` (cx, cy, w, h; normalised) of a detection model.

    ``spec_or_meta`` is a :class:`~edge_mnv2.models.registry.ModelSpec`, its ``metadata()`` (or the ONNX
    file's edge_mnv2 metadata), or the ``postprocessing`` record alone. Anchors are not clipped.
    """
    config = _config_of(spec_or_meta)
    sizes = config["feature_map_sizes"]
    out = []
    for side, boxes in zip(sizes, _layer_boxes(config["anchors"], len(sizes))):
        centres = (np.arange(side, dtype=np.float64) + 0.5) / side
        cy, cx = np.meshgrid(centres, centres, indexing="ij")
        wh = np.array([(s * math.sqrt(ar), s / math.sqrt(ar)) for s, ar in boxes])  # [B, 2]
        grid = np.empty((side, side, len(boxes), 4))
        grid[..., 0], grid[..., 1] = cx[..., None], cy[..., None]
        grid[..., 2], grid[..., 3] = wh[:, 0], wh[:, 1]
        out.append(grid.reshape(-1, 4))
    return np.concatenate(out).astype(np.float32)


def _scales(config: Mapping | None) -> np.ndarray:
    scales = (config or {}).get("box_coder", {}).get("scales", BOX_CODER_SCALES)
    return np.asarray(scales, np.float64)


def encode(boxes: np.ndarray, anchors: np.ndarray, scales: Sequence[float] = BOX_CODER_SCALES) -> np.ndarray:
    """Regression targets ``[..., A, 4]`` (tx, ty, tw, th) of ``boxes`` (x0, y0, x1, y1) w.r.t. ``anchors``."""
    boxes = np.asarray(boxes, np.float64)
    anchors = np.asarray(anchors, np.float64)
    s = np.asarray(scales, np.float64)
    w = np.maximum(boxes[..., 2] - boxes[..., 0], 1e-8)
    h = np.maximum(boxes[..., 3] - boxes[..., 1], 1e-8)
    cx, cy = boxes[..., 0] + 0.5 * w, boxes[..., 1] + 0.5 * h
    return np.stack(
        [
            s[0] * (cx - anchors[..., 0]) / anchors[..., 2],
            s[1] * (cy - anchors[..., 1]) / anchors[..., 3],
            s[2] * np.log(w / anchors[..., 2]),
            s[3] * np.log(h / anchors[..., 3]),
        ],
        axis=-1,
    ).astype(np.float32)


def decode_boxes(deltas: np.ndarray, anchors: np.ndarray, scales: Sequence[float] = BOX_CODER_SCALES) -> np.ndarray:
    """Boxes ``[..., A, 4]`` (x0, y0, x1, y1) from regression deltas ``[..., A, 4]`` and ``anchors``."""
    d = np.asarray(deltas, np.float64)
    a = np.asarray(anchors, np.float64)
    s = np.asarray(scales, np.float64)
    cx = d[..., 0] / s[0] * a[..., 2] + a[..., 0]
    cy = d[..., 1] / s[1] * a[..., 3] + a[..., 1]
    w = np.exp(np.minimum(d[..., 2] / s[2], _BOX_CLIP)) * a[..., 2]
    h = np.exp(np.minimum(d[..., 3] / s[3], _BOX_CLIP)) * a[..., 3]
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1).astype(np.float32)


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    z = np.asarray(logits, np.float64)
    z = np.exp(z - z.max(axis=axis, keepdims=True))
    return z / z.sum(axis=axis, keepdims=True)


def decode(
    raw: np.ndarray, anchors: np.ndarray, scales: Sequence[float] = BOX_CODER_SCALES
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes ``[N, A, 4]`` (x0, y0, x1, y1; normalised) and class scores ``[N, A, C]`` of raw outputs.

    ``raw`` is ``[N, A, 4 + 1 + C]`` (a single image ``[A, 4 + 1 + C]`` is taken as N = 1); scores are
    the softmax over background + classes without the background column.
    """
    raw = np.asarray(raw)
    if raw.ndim == 2:
        raw = raw[None]
    if raw.ndim != 3 or raw.shape[-1] < 6 or raw.shape[1] != len(anchors):
        raise ValueError(
            f"raw detector output {raw.shape} does not fit {len(anchors)} anchors; expected "
            f"[N, {len(anchors)}, 4 + 1 + classes]"
        )
    boxes = decode_boxes(raw[..., :4], anchors, scales)
    scores = softmax(raw[..., 4:])[..., 1:].astype(np.float32)
    return boxes, scores


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix ``[len(a), len(b)]`` of (x0, y0, x1, y1) boxes."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    iou_threshold: float = NMS_DEFAULTS["iou_threshold"],
    max_output: int | None = None,
) -> np.ndarray:
    """Greedy non-maximum suppression: indices of the kept boxes, best score first.

    A box is dropped when its IoU with a kept, higher-scoring box exceeds ``iou_threshold``; equal
    scores keep their input order, so the result is deterministic.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    overlaps = box_iou(boxes[order], boxes[order]) > iou_threshold  # in score order
    suppressed = np.zeros(len(order), bool)
    keep: list[int] = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(int(order[i]))
        if max_output is not None and len(keep) >= max_output:
            break
        suppressed |= overlaps[i]
    return np.asarray(keep, np.int64)


def multiclass_nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    score_threshold: float,
    iou_threshold: float,
    max_detections: int,
    max_per_class: int | None = None,
    candidates_per_class: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class NMS of one image's ``boxes [A, 4]`` and ``scores [A, C]``, then the best overall.

    Returns boxes ``[K, 4]``, scores ``[K]`` and labels ``[K]`` (0-based classes), best score first.
    """
    kept_boxes, kept_scores, kept_labels = [], [], []
    for c in range(scores.shape[1]):
        idx = np.flatnonzero(scores[:, c] > score_threshold)
        if not idx.size:
            continue
        if candidates_per_class and idx.size > candidates_per_class:
            top = np.argsort(-scores[idx, c], kind="stable")[:candidates_per_class]
            idx = np.sort(idx[top])
        keep = idx[nms(boxes[idx], scores[idx, c], iou_threshold, max_per_class)]
        kept_boxes.append(boxes[keep])
        kept_scores.append(scores[keep, c])
        kept_labels.append(np.full(len(keep), c, np.int64))
    if not kept_boxes:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64)
    b, s, lab = np.concatenate(kept_boxes), np.concatenate(kept_scores), np.concatenate(kept_labels)
    order = np.argsort(-s, kind="stable")[:max_detections]
    return b[order].astype(np.float32), s[order].astype(np.float32), lab[order]


def detect(
    raw: np.ndarray,
    spec_or_meta,
    score_threshold: float | None = None,
    iou_threshold: float | None = None,
    max_detections: int | None = None,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Detections of every image in ``raw [N, A, 4 + 1 + C]``: a list of ``(boxes, scores, labels)``.

    Boxes are (x0, y0, x1, y1), normalised and clipped to the image; thresholds not given come from the
    model's metadata (``postprocessing.nms``): score 0.01, IoU 0.6, 100 detections per image.
    """
    config = _config_of(spec_or_meta)
    settings = dict(NMS_DEFAULTS, **config.get("nms", {}))
    score_threshold = settings["score_threshold"] if score_threshold is None else score_threshold
    iou_threshold = settings["iou_threshold"] if iou_threshold is None else iou_threshold
    max_detections = settings["max_detections"] if max_detections is None else max_detections
    boxes, scores = decode(raw, anchors_for(config), _scales(config))
    boxes = np.clip(boxes, 0.0, 1.0)
    return [
        multiclass_nms(
            boxes[n],
            scores[n],
            score_threshold,
            iou_threshold,
            max_detections,
            settings.get("max_detections_per_class"),
            settings.get("candidates_per_class"),
        )
        for n in range(len(boxes))
    ]
