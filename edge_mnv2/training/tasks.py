"""What training needs to know about a task: its data, batches, loss and validation metrics.

``classification`` (labelled sets), ``detection`` (SSD multibox loss, mAP) and ``segmentation``
(per-pixel cross-entropy, mIoU) share one training loop (:mod:`edge_mnv2.training.train`) through this interface.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from edge_mnv2.bench.metrics import topk_accuracy
from edge_mnv2.data.labelled import LabelledSet, open_split
from edge_mnv2.errors import EdgeMnv2Error

SHAPES_SETS = {"detection": "shapes-detection", "segmentation": "shapes-segmentation"}
MATCH_IOU = 0.5
NEG_POS_RATIO = 3


def to_input(images_uint8: np.ndarray, preprocessing) -> torch.Tensor:
    """uint8 NHWC images as the normalized channels-last batch a model takes (training and evaluation alike)."""
    return torch.from_numpy(preprocessing.normalize(images_uint8)).contiguous(memory_format=torch.channels_last)


def evaluate(model: nn.Module, data: LabelledSet, preprocessing, batch_size: int = 250) -> dict:
    """Top-1/top-5 (%) of a classifier ``model`` on ``data``, plus its outputs."""
    model.eval()
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(data), batch_size):
            idx = np.arange(start, min(start + batch_size, len(data)))
            outputs.append(model(to_input(data.batch(idx), preprocessing)).float().numpy())
    logits = np.concatenate(outputs)
    return {
        "top1": topk_accuracy(logits, data.labels, 1),
        "top5": topk_accuracy(logits, data.labels, 5),
        "outputs": logits,
    }


def _flip(images: np.ndarray, flips: np.ndarray) -> np.ndarray:
    images = images.copy() if not images.flags.writeable else images
    images[flips] = images[flips, :, ::-1]
    return images


class Task:
    """The classifier's task: labelled images, cross-entropy, top-1/top-5."""

    name = "classification"
    metric_keys = ("val_top1", "val_top5")

    def __init__(self, spec, cfg):
        self.spec, self.cfg = spec, cfg

    def data_name(self) -> str:
        return self.cfg.data

    def open_data(self):
        spec, cfg = self.spec, self.cfg
        train_set = open_split(cfg.data, "train", spec.resolution, cfg.train_size, 0, spec.preprocessing)
        val_set = open_split(
            cfg.data, "val", spec.resolution, cfg.val_size, 0, spec.preprocessing, classes=train_set.classes
        )
        return train_set, val_set

    def num_classes(self, train_set) -> int:
        return len(train_set.classes)

    def batch(self, data, idx: np.ndarray, flips: np.ndarray):
        images = _flip(data.batch(idx), flips)
        return to_input(images, self.spec.preprocessing), torch.from_numpy(data.labels[idx])

    def criterion(self):
        return nn.CrossEntropyLoss(label_smoothing=self.cfg.label_smoothing)

    def loss(self, out: torch.Tensor, target) -> tuple[torch.Tensor, dict]:
        loss = self._criterion(out, target)
        return loss, {"correct": (out.argmax(1) == target).sum().item()}

    def train_record(self, loss_sum: float, stats: dict, seen: int) -> dict:
        return {"train_loss": loss_sum / max(seen, 1), "train_top1": 100 * stats.get("correct", 0) / max(seen, 1)}

    def postfix(self, loss_sum: float, stats: dict, seen: int) -> dict:
        return {"loss": f"{loss_sum / seen:.3f}", "acc": f"{100 * stats.get('correct', 0) / seen:.1f}"}

    def evaluate(self, model: nn.Module, data) -> dict:
        val = evaluate(model, data, self.spec.preprocessing)
        return {"val_top1": val["top1"], "val_top5": val["top5"]}

    def summary(self, record: dict) -> str:
        return (
            f"loss {record['train_loss']:.3f}, train top-1 {record['train_top1']:.1f}%, val top-1 "
            f"{record['val_top1']:.2f}% top-5 {record['val_top5']:.2f}%"
        )

    def setup(self):
        self._criterion = self.criterion()
        return self


def _check_shapes_data(task: str, data: str) -> str:
    want = SHAPES_SETS[task]
    if data in ("shapes", want):
        return want
    raise EdgeMnv2Error(f"a {task} model trains on --data {want} (the generated scenes), not {data!r}")


class DetectionTask(Task):
    """SSD on the generated detection scenes: multibox loss, mAP@0.5 and mAP@0.5:0.95."""

    name = "detection"
    metric_keys = ("val_map50", "val_map50_95")

    def data_name(self) -> str:
        return _check_shapes_data(self.name, self.cfg.data)

    def open_data(self):
        from edge_mnv2.data import shapes_detection

        self.data_name()
        spec, cfg = self.spec, self.cfg
        return (
            shapes_detection.open_split("train", spec.resolution, cfg.train_size),
            shapes_detection.open_split("val", spec.resolution, cfg.val_size),
        )

    def setup(self):
        from edge_mnv2.postprocess.detection import anchors_for

        self.anchors = anchors_for(self.spec)  # cx, cy, w, h
        a = self.anchors
        self.anchors_xyxy = np.concatenate([a[:, :2] - a[:, 2:] / 2, a[:, :2] + a[:, 2:] / 2], 1)
        return self

    def match(self, targets) -> tuple[np.ndarray, np.ndarray]:
        """Per anchor: class target (0 background, k + 1 class k) and encoded box target."""
        from edge_mnv2.postprocess.detection import box_iou, encode

        n, num_anchors = len(targets), len(self.anchors)
        classes = np.zeros((n, num_anchors), np.int64)
        boxes = np.zeros((n, num_anchors, 4), np.float32)
        for b, (gt_boxes, gt_labels) in enumerate(targets):
            if not len(gt_boxes):
                continue
            iou = box_iou(gt_boxes, self.anchors_xyxy)  # (K, A)
            best_gt, best_iou = iou.argmax(0), iou.max(0)
            forced = iou.argmax(1)  # every box gets its best anchor
            best_gt[forced], best_iou[forced] = np.arange(len(gt_boxes)), 1.0
            positive = best_iou >= MATCH_IOU
            classes[b, positive] = gt_labels[best_gt[positive]] + 1
            boxes[b] = encode(gt_boxes[best_gt], self.anchors)
        return classes, boxes

    def batch(self, data, idx: np.ndarray, flips: np.ndarray):
        from edge_mnv2.data.shapes_detection import flip_boxes

        images = _flip(data.batch(idx), flips)
        targets = [(flip_boxes(b) if f else b, lab) for (b, lab), f in zip(data.batch_targets(idx), flips)]
        classes, boxes = self.match(targets)
        return to_input(images, self.spec.preprocessing), (torch.from_numpy(classes), torch.from_numpy(boxes))

    def loss(self, out: torch.Tensor, target) -> tuple[torch.Tensor, dict]:
        loss, parts = multibox_loss(out, *target)
        return loss, parts

    def train_record(self, loss_sum: float, stats: dict, seen: int) -> dict:
        return {
            "train_loss": loss_sum / max(seen, 1),
            "train_box_loss": stats.get("box", 0.0) / max(seen, 1),
            "train_cls_loss": stats.get("cls", 0.0) / max(seen, 1),
        }

    def postfix(self, loss_sum: float, stats: dict, seen: int) -> dict:
        return {"loss": f"{loss_sum / seen:.3f}"}

    def evaluate(self, model: nn.Module, data) -> dict:
        from edge_mnv2.bench.detection_metrics import evaluate_raw

        raw = predict(model, data, self.spec.preprocessing)
        result = evaluate_raw(raw, data.targets, self.spec)
        return {"val_map50": result["map50"], "val_map50_95": result["map50_95"]}

    def summary(self, record: dict) -> str:
        return (
            f"loss {record['train_loss']:.3f} (boxes {record['train_box_loss']:.3f}), val mAP@0.5 "
            f"{record['val_map50']:.2f}%, mAP@0.5:0.95 {record['val_map50_95']:.2f}%"
        )


class SegmentationTask(Task):
    """DeepLab on the generated segmentation scenes: per-pixel cross-entropy, mIoU."""

    name = "segmentation"
    metric_keys = ("val_miou", "val_pixel_accuracy")

    def data_name(self) -> str:
        return _check_shapes_data(self.name, self.cfg.data)

    def open_data(self):
        from edge_mnv2.data import shapes_segmentation

        self.data_name()
        spec, cfg = self.spec, self.cfg
        return (
            shapes_segmentation.open_split("train", spec.resolution, cfg.train_size),
            shapes_segmentation.open_split("val", spec.resolution, cfg.val_size),
        )

    def batch(self, data, idx: np.ndarray, flips: np.ndarray):
        images = _flip(data.batch(idx), flips)
        masks = _flip(data.batch_masks(idx), flips)
        return to_input(images, self.spec.preprocessing), torch.from_numpy(masks.astype(np.int64))

    def loss(self, out: torch.Tensor, target) -> tuple[torch.Tensor, dict]:
        loss = self._criterion(out, target)
        return loss, {"correct": (out.argmax(1) == target).float().mean().item() * len(target)}

    def train_record(self, loss_sum: float, stats: dict, seen: int) -> dict:
        return {
            "train_loss": loss_sum / max(seen, 1),
            "train_pixel_accuracy": 100 * stats.get("correct", 0) / max(seen, 1),
        }

    def postfix(self, loss_sum: float, stats: dict, seen: int) -> dict:
        return {"loss": f"{loss_sum / seen:.3f}", "pix": f"{100 * stats.get('correct', 0) / seen:.1f}"}

    def evaluate(self, model: nn.Module, data) -> dict:
        from edge_mnv2.bench.segmentation_metrics import mean_iou
        from edge_mnv2.postprocess.segmentation import predict_masks

        masks = predict(model, data, self.spec.preprocessing, reduce=predict_masks)
        result = mean_iou(masks, data.masks, len(data.classes))
        return {"val_miou": result["miou"], "val_pixel_accuracy": result["pixel_accuracy"]}

    def summary(self, record: dict) -> str:
        return (
            f"loss {record['train_loss']:.3f}, train pixel accuracy {record['train_pixel_accuracy']:.1f}%, "
            f"val mIoU {record['val_miou']:.2f}% (pixel accuracy {record['val_pixel_accuracy']:.2f}%)"
        )


def predict(model: nn.Module, data, preprocessing, batch_size: int = 100, reduce=None) -> np.ndarray:
    """The model's outputs on all of ``data`` (eval mode), each batch passed through ``reduce`` if given."""
    model.eval()
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(data), batch_size):
            idx = np.arange(start, min(start + batch_size, len(data)))
            out = model(to_input(data.batch(idx), preprocessing)).float().numpy()
            outputs.append(reduce(out) if reduce else out)
    return np.concatenate(outputs)


def multibox_loss(
    out: torch.Tensor, classes: torch.Tensor, boxes: torch.Tensor, neg_pos_ratio: int = NEG_POS_RATIO
) -> tuple[torch.Tensor, dict]:
    """SSD's loss on raw outputs ``[N, A, 4 + 1 + C]`` and matched targets; normalised by the positives.

    Smooth-L1 (Huber, delta 1) on the box deltas of positive anchors; cross-entropy on the positives and
    on the ``neg_pos_ratio`` x positives hardest negatives of each image (at least one positive's worth).
    """
    deltas, logits = out[..., :4], out[..., 4:]
    positive = classes > 0
    num_pos = positive.sum(1)  # per image
    normaliser = num_pos.sum().clamp(min=1).float()
    box_loss = F.smooth_l1_loss(deltas[positive], boxes[positive], reduction="sum", beta=1.0)
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), classes.reshape(-1), reduction="none").view_as(classes)
    with torch.no_grad():
        negative_ce = ce.masked_fill(positive, float("-inf"))
        rank = negative_ce.argsort(1, descending=True).argsort(1)
        num_neg = (neg_pos_ratio * num_pos).clamp(min=neg_pos_ratio)[:, None]
        hard = (rank < num_neg) & ~positive
    cls_loss = ce[positive | hard].sum()
    loss = (box_loss + cls_loss) / normaliser
    n = len(out)
    return loss, {"box": box_loss.item() / normaliser.item() * n, "cls": cls_loss.item() / normaliser.item() * n}


def task_for(spec, cfg) -> Task:
    """The training task of ``spec`` (its ``task`` field)."""
    tasks = {"classification": Task, "detection": DetectionTask, "segmentation": SegmentationTask}
    if spec.task not in tasks:
        raise EdgeMnv2Error(f"model {spec.name} has task {spec.task!r}, which training does not know")
    return tasks[spec.task](spec, cfg).setup()


def init_backbone(model: nn.Module, source: str) -> int:
    """Copy ``features.*`` weights from a classifier (registered name, ``<model>.<tag>`` or checkpoint file)
    into ``model``'s backbone; returns the number of tensors copied."""
    from pathlib import Path

    from edge_mnv2.errors import CheckpointError
    from edge_mnv2.models import get_spec
    from edge_mnv2.models.weights import read_checkpoint

    if Path(source).is_file():
        state = read_checkpoint(source)[0]
    else:
        spec = get_spec(source)
        if spec.pretrained is None:
            raise CheckpointError(
                f"--init-backbone {source!r} has no trained weights; give a <model>.<tag> "
                "with shipped weights or a checkpoint file"
            )
        spec.pretrained.check()
        state = read_checkpoint(spec.pretrained.path)[0]
    own = model.state_dict()
    shared = {k: v for k, v in state.items() if k.startswith("features.") and k in own}
    wrong = [k for k, v in shared.items() if v.shape != own[k].shape]
    if wrong or not shared:
        raise CheckpointError(
            f"--init-backbone {source!r} does not fit {type(model).__name__}'s backbone "
            f"({len(wrong)} tensors of another shape, {len(shared)} shared); use a classifier "
            "of the same width"
        )
    model.load_state_dict(shared, strict=False)
    return len(shared)
