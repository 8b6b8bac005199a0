"""The generated segmentation set: scenes of shapes (:mod:`edge_mnv2.data.shape_scenes`) with masks.

Targets are integer masks ``(N, H, W)``: 0 is background, ``k + 1`` the k-th shape class, so a model with
``num_classes`` outputs (background included) segments the first ``num_classes - 1`` shape classes.

The scenes are drawn as the detection set's but with larger objects (radius 0.12 to 0.28 of the side, 1 to
3 of them), and a textured object (stripes, dots, checkerboard) is its whole outline: at output stride 16
a 128x128 segmenter predicts an 8x8 grid, upsampled, which cannot draw single dots or thin stripes, and a
segment is the object's region, not its paint.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edge_mnv2.data.shape_scenes import DEFAULT_SEED, SceneSplit, generate
from edge_mnv2.data.shapes import CLASSES as SHAPE_CLASSES

DATASET = "shapes-segmentation"
DEFAULT_SIZES = {"train": 8000, "val": 1000, "test": 1000}
CLASSES: tuple[str, ...] = ("background", *SHAPE_CLASSES)
DEFAULT_NUM_CLASSES = len(CLASSES)  # background included
SIZE_RANGE = (0.12, 0.28)
MAX_OBJECTS = 3


@dataclass
class SegmentationSet:
    """A generated segmentation split in memory: ``images`` (N, H, W, 3) uint8, ``masks`` (N, H, W) uint8."""

    split: SceneSplit
    images: np.ndarray = field(init=False, repr=False)
    masks: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        scenes = generate(self.split)
        self.images = np.stack([s.image for s in scenes])
        self.masks = np.stack([s.mask for s in scenes])
        self.name, self.resolution = DATASET, self.split.resolution
        self.classes = ("background", *self.split.classes)

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, indices) -> np.ndarray:
        """uint8 images of ``indices``."""
        return self.images[np.asarray(indices)]

    def batch_masks(self, indices) -> np.ndarray:
        return self.masks[np.asarray(indices)]

    def describe(self) -> dict:
        return {
            "name": self.name,
            "size": len(self),
            "num_classes": len(self.classes),
            "split": self.split.split,
            "seed": self.split.seed,
        }


def _scene_split(split: str, resolution: int, size: int, seed: int, num_classes: int) -> SceneSplit:
    from edge_mnv2.errors import EdgeMnv2Error

    if not 2 <= num_classes <= len(CLASSES):
        raise EdgeMnv2Error(f"segmentation has 2 to {len(CLASSES)} classes (background included), got {num_classes}")
    return SceneSplit(
        split,
        resolution,
        size,
        seed,
        num_classes - 1,
        size_range=SIZE_RANGE,
        max_objects=MAX_OBJECTS,
        fill_textures=True,
    )


def open_split(
    split: str,
    resolution: int,
    size: int | None = None,
    seed: int = DEFAULT_SEED,
    num_classes: int = DEFAULT_NUM_CLASSES,
) -> SegmentationSet:
    """A split of the segmentation set (default sizes: train 8000, val 1000, test 1000 images)."""
    return SegmentationSet(_scene_split(split, resolution, size or DEFAULT_SIZES[split], seed, num_classes))


def validation_arrays(
    size: int, resolution: int, num_classes: int = DEFAULT_NUM_CLASSES, seed: int = DEFAULT_SEED
) -> tuple[np.ndarray, np.ndarray]:
    """The first ``size`` images of the validation split: uint8 ``(N, H, W, 3)`` and int64 masks ``(N, H, W)``.

    ``num_classes`` is the segmenter's (background included).
    """
    data = SegmentationSet(_scene_split("val", resolution, size, seed, num_classes))
    return data.images, data.masks.astype(np.int64)
