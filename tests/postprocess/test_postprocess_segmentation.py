"""Segmentation postprocessing: the arg-max mask."""

import numpy as np
import pytest

from edge_mnv2.postprocess.segmentation import predict_masks


def test_argmax_over_classes():
    logits = np.zeros((2, 3, 2, 2), np.float32)
    logits[0, 2, 0, 0] = 1.0
    logits[1, 1, 1, 1] = 5.0
    masks = predict_masks(logits)
    assert masks.dtype == np.int64 and masks.shape == (2, 2, 2)
    assert masks[0].tolist() == [[2, 0], [0, 0]]  # ties go to class 0
    assert masks[1].tolist() == [[0, 0], [0, 1]]
    assert predict_masks(logits[0]).shape == (1, 2, 2)
    with pytest.raises(ValueError, match="N, C, H, W"):
        predict_masks(np.zeros((3, 3)))
