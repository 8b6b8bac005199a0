"""mAP: perfect and empty detections, a hand-computed case, COCO's 101-point interpolation."""

import numpy as np
import pytest

from edge_mnv2.bench.detection_metrics import average_precision, evaluate_raw, mean_average_precision

GT = [
    (np.array([[0.1, 0.1, 0.3, 0.3], [0.5, 0.5, 0.9, 0.8]]), np.array([0, 1])),
    (np.array([[0.2, 0.2, 0.6, 0.6]]), np.array([1])),
]
NONE = (np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64))


def test_perfect_detections_score_100():
    dets = [(b, np.ones(len(b)), lab) for b, lab in GT]
    result = mean_average_precision(dets, GT)
    assert result["map50"] == pytest.approx(100.0)
    assert result["map50_95"] == pytest.approx(100.0)
    assert result["per_class_ap50"] == pytest.approx([100.0, 100.0])
    assert result["num_ground_truth"] == 3


def test_no_detections_score_0():
    result = mean_average_precision([NONE, NONE], GT)
    assert result["map50"] == 0.0 and result["map50_95"] == 0.0


def test_wrong_class_scores_0():
    dets = [(b, np.ones(len(b)), 1 - lab) for b, lab in GT]
    assert mean_average_precision(dets, GT, num_classes=2)["map50"] == 0.0


def test_hand_computed_case():
    """One class, two objects; detections by score: hit, miss, hit.

    Precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1. The interpolated precision is 1 for recall points
    0..0.50 (51 points) and 2/3 for 0.51..1.00 (50 points): AP = (51 + 50 * 2/3) / 101 = 83.50%.
    """
    gt = [(np.array([[0, 0, 1, 1], [2, 2, 3, 3]], float), np.array([0, 0]))]
    dets = [
        (np.array([[0, 0, 1, 1], [5, 5, 6, 6], [2, 2, 3, 3.2]], float), np.array([0.9, 0.8, 0.7]), np.array([0, 0, 0]))
    ]
    result = mean_average_precision(dets, gt)
    assert result["map50"] == pytest.approx(100 * (51 + 50 * 2 / 3) / 101)
    # IoU of the third is 1/1.2 = 0.833: a hit at 0.50..0.80, a miss at 0.85..0.95 (AP 50% there:
    # precision 1 up to recall 0.5, and recall 1 is never reached).
    per = result["per_threshold"]
    assert per["0.80"] == pytest.approx(83.4983, abs=1e-3)
    assert per["0.85"] == pytest.approx(100 * 51 / 101)
    expected = (7 * 100 * (51 + 50 * 2 / 3) / 101 + 3 * 100 * 51 / 101) / 10
    assert result["map50_95"] == pytest.approx(expected)


def test_a_duplicate_is_a_false_positive():
    gt = [(np.array([[0, 0, 1, 1]], float), np.array([0]))]
    dets = [(np.array([[0, 0, 1, 1], [0, 0, 1, 1]], float), np.array([0.9, 0.95]), np.array([0, 0]))]
    result = mean_average_precision(dets, gt)
    assert result["map50"] == pytest.approx(100.0)  # recall 1 is reached at precision 1 first
    assert average_precision(np.array([False, True]), 1) == pytest.approx(100 / 2 / 100)  # the other order


def test_classes_without_ground_truth_do_not_count():
    gt = [(np.array([[0, 0, 1, 1]], float), np.array([0]))]
    dets = [(np.array([[0, 0, 1, 1], [3, 3, 4, 4]], float), np.array([0.9, 0.9]), np.array([0, 2]))]
    result = mean_average_precision(dets, gt)
    assert result["map50"] == pytest.approx(100.0)
    assert np.isnan(result["per_class_ap50"][2])


def test_evaluate_raw_runs_detect_then_map():
    from edge_mnv2.models import get_spec
    from edge_mnv2.postprocess.detection import anchors_for, encode

    spec = get_spec("ssdlite_mobilenet_v2_0.35_96")
    anchors = anchors_for(spec)
    raw = np.zeros((1, len(anchors), 7), np.float32)
    raw[..., 4] = 10.0
    box = np.array([[0.2, 0.2, 0.5, 0.4]], np.float32)
    raw[0, 5, :4] = encode(box, anchors[5:6])[0]
    raw[0, 5, 4], raw[0, 5, 6] = 0.0, 10.0
    result = evaluate_raw(raw, [(box, np.array([1]))], spec)
    assert result["map50"] == pytest.approx(100.0) and result["map50_95"] == pytest.approx(100.0)
