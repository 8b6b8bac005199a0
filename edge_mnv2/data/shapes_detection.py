"""The generated detection set: scenes of several shapes (:mod:`edge_mnv2.data.shape_scenes`) with boxes.

Targets are per image ``(boxes, labels)``: boxes ``(K, 4)`` float32 x0, y0, x1, y1 normalised to [0, 1],
labels ``(K,)`` int64 0-based class indices (no background), as :func:`edge_mnv2.postprocess.detection.detect`
returns them and :func:`edge_mnv2.bench.detection_metrics.mean_average_precision` compares them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edge_mnv2.data.shape_scenes import DEFAULT_SEED, SceneSplit, generate
from edge_mnv2.data.shapes import CLASSES

DATASET = "shapes-detection"
DEFAULT_SIZES = {"train": 8000, "val": 1000, "test": 1000}
DEFAULT_NUM_CLASSES = len(CLASSES)

Target = tuple[np.ndarray, np.ndarray]  # boxes (K, 4), labels (K,)


@dataclass
class DetectionSet:
    """A generated detection split in memory: ``images`` (N, H, W, 3) uint8 and ``targets``."""

    split: SceneSplit
    images: np.ndarray = field(init=False, repr=False)
    targets: list[Target] = field(init=False, repr=False)

    def __post_init__(self):
        scenes = generate(self.split)
        self.images = np.stack([s.image for s in scenes])
        self.targets = [(s.boxes, s.labels) for s in scenes]
        self.name, self.classes, self.resolution = DATASET, self.split.classes, self.split.resolution

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, indices) -> np.ndarray:
        """uint8 images of ``indices``."""
        return self.images[np.asarray(indices)]

    def batch_targets(self, indices) -> list[Target]:
        return [self.targets[i] for i in np.asarray(indices)]

    def describe(self) -> dict:
        return {
            "name": self.name,
            "size": len(self),
            "num_classes": len(self.classes),
            "split": self.split.split,
            "seed": self.split.seed,
        }


def open_split(
    split: str,
    resolution: int,
    size: int | None = None,
    seed: int = DEFAULT_SEED,
    num_classes: int = DEFAULT_NUM_CLASSES,
) -> DetectionSet:
    """A split of the detection set (default sizes: train 8000, val 1000, test 1000 images)."""
    return DetectionSet(SceneSplit(split, resolution, size or DEFAULT_SIZES[split], seed, num_classes))


def validation_arrays(
    size: int, resolution: int, num_classes: int = DEFAULT_NUM_CLASSES, seed: int = DEFAULT_SEED
) -> tuple[np.ndarray, list[Target]]:
    """The first ``size`` images of the validation split: uint8 ``(N, H, W, 3)`` and per-image targets.

    ``num_classes`` is the detector's (object classes, no background); the images are those the trained
    model was validated on during training (same seed), whatever the size asked for.
    """
    data = DetectionSet(SceneSplit("val", resolution, size, seed, num_classes))
    return data.images, data.targets


def flip_boxes(boxes: np.ndarray) -> np.ndarray:
    """Boxes of the horizontally flipped image."""
    out = np.array(boxes, np.float32, copy=True).reshape(-1, 4)
    out[:, [0, 2]] = 1.0 - out[:, [2, 0]]
    return out
