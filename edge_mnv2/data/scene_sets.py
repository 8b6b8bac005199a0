"""The generated scene sets by the name models record as their data set (``shapes-detection``, ...).

Each set's own module builds on :mod:`edge_mnv2.data.shape_scenes`; looking a set up by name is a level
above them all, so it lives here rather than in the scene generator the sets import.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

from edge_mnv2.data import shapes_detection, shapes_segmentation
from edge_mnv2.errors import EdgeMnv2Error

SCENE_SETS: dict[str, ModuleType] = {
    shapes_detection.DATASET: shapes_detection,
    shapes_segmentation.DATASET: shapes_segmentation,
}


def validation_set(
    dataset: str, size: int, resolution: int, num_classes: int | None = None
) -> tuple[np.ndarray, list | np.ndarray]:
    """``(images_uint8, targets)`` of the validation split of a generated scene set named in metadata.

    ``dataset`` is ``shapes-detection`` (targets: per-image ``(boxes, labels)``) or ``shapes-segmentation``
    (targets: masks ``(N, H, W)``); ``num_classes`` is the model's (defaults: all shape classes).
    """
    if dataset not in SCENE_SETS:
        raise EdgeMnv2Error(f"unknown generated scene set {dataset!r}; use one of {', '.join(SCENE_SETS)}")
    module = SCENE_SETS[dataset]
    return module.validation_arrays(size, resolution, num_classes or module.DEFAULT_NUM_CLASSES)
