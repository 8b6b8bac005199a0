"""mIoU on hand-made masks."""

import numpy as np
import pytest

from edge_mnv2.bench.segmentation_metrics import evaluate_logits, mean_iou


def test_perfect_and_known_case():
    true = np.array([[[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 2, 2], [0, 0, 0, 0]]])
    assert mean_iou(true, true, 3)["miou"] == pytest.approx(100.0)
    pred = true.copy()
    pred[0, 0, 1] = 1  # one background pixel called class 1
    pred[0, 2, 3] = 0  # one class-2 pixel called background
    # class 0: TP 7, FP 1, FN 1 -> 7/9; class 1: TP 4, FP 1 -> 4/5; class 2: TP 3, FN 1 -> 3/4
    result = mean_iou(pred, true, 3)
    assert result["per_class_iou"] == pytest.approx([700 / 9, 80.0, 75.0])
    assert result["miou"] == pytest.approx((700 / 9 + 80 + 75) / 3)
    assert result["pixel_accuracy"] == pytest.approx(100 * 14 / 16)


def test_absent_class_is_not_averaged():
    true = np.zeros((1, 2, 2), int)
    pred = np.zeros((1, 2, 2), int)
    result = mean_iou(pred, true, 4)
    assert result["miou"] == pytest.approx(100.0)
    assert np.isnan(result["per_class_iou"][1:]).all()


def test_bad_values_are_refused():
    with pytest.raises(ValueError, match="class indices"):
        mean_iou(np.full((1, 2, 2), 5), np.zeros((1, 2, 2), int), 3)
    with pytest.raises(ValueError, match="differ"):
        mean_iou(np.zeros((1, 2, 2), int), np.zeros((1, 3, 2), int), 3)


def test_evaluate_logits_is_argmax_then_miou():
    logits = np.zeros((1, 2, 2, 2), np.float32)
    logits[0, 1, 0, :] = 1.0
    true = np.array([[[1, 1], [0, 0]]])
    assert evaluate_logits(logits, true)["miou"] == pytest.approx(100.0)
