"""The fixed, seeded evaluation set the device is compared with the desktop reference on."""

from __future__ import annotations

import numpy as np

from edge_mnv2.data.preprocessing import Preprocessing
from edge_mnv2.data.synthetic import synthetic_images

EVAL_SEED = 2018  # the paper's year; any fixed value, never shared with weight calibration


def evaluation_inputs(count: int, resolution: int, preprocessing: Preprocessing, seed: int = EVAL_SEED) -> np.ndarray:
    """``(count, 3, resolution, resolution)`` float32 model inputs, identical for the same arguments."""
    return preprocessing.normalize(synthetic_images(count, resolution, seed))
