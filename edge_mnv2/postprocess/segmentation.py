"""Segmentation postprocessing: the predicted class of every pixel (arg-max over the class logits)."""

from __future__ import annotations

import numpy as np

SEGMENTATION_CONFIG = {"kind": "argmax", "output": "class logits [N, C, H, W] at the input resolution", "background": 0}


def predict_masks(logits: np.ndarray) -> np.ndarray:
    """``[N, C, H, W]`` logits (or one image's ``[C, H, W]``) -> ``[N, H, W]`` int64 class masks.

    Ties go to the lowest class index (numpy's arg-max), the same on every machine.
    """
    logits = np.asarray(logits)
    if logits.ndim == 3:
        logits = logits[None]
    if logits.ndim != 4:
        raise ValueError(f"segmentation logits must be [N, C, H, W], got shape {logits.shape}")
    return np.argmax(logits, axis=1).astype(np.int64)
