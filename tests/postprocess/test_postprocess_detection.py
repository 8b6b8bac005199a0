"""SSD postprocessing: anchors, the box coder round trip, NMS, and detect() on hand-made outputs."""

from __future__ import annotations

import numpy as np
import pytest

from edge_mnv2.models import get_spec
from edge_mnv2.postprocess.detection import (
    anchors_for,
    box_iou,
    decode,
    decode_boxes,
    detect,
    encode,
    feature_map_sizes,
    nms,
    ssd_config,
)


def test_feature_map_sizes_as_tensorflow():
    assert feature_map_sizes(300) == [19, 10, 5, 3, 2, 1]
    assert feature_map_sizes(320) == [20, 10, 5, 3, 2, 1]
    assert feature_map_sizes(128) == [8, 4, 2, 1, 1, 1]


def test_default_anchors():
    anchors = anchors_for(ssd_config(300))
    assert anchors.shape == (1917, 4)  # TF's ssd_mobilenet_v2 at 300x300
    first = anchors[:3]  # location (0, 0) of the 19x19 map: (0.1, 1), (0.2, 2), (0.2, 0.5)
    np.testing.assert_allclose(first[:, :2], 0.5 / 19, rtol=1e-6)
    np.testing.assert_allclose(first[:, 2], [0.1, 0.2 * 2**0.5, 0.2 / 2**0.5], rtol=1e-5)
    np.testing.assert_allclose(first[:, 3], [0.1, 0.2 / 2**0.5, 0.2 * 2**0.5], rtol=1e-5)
    last = anchors[-6:]  # the 1x1 map: scale 0.95 and the interpolated sqrt(0.95 * 1.0)
    np.testing.assert_allclose(last[:, :2], 0.5)
    np.testing.assert_allclose(last[0, 2:], 0.95, rtol=1e-6)
    np.testing.assert_allclose(last[-1, 2:], 0.95**0.5, rtol=1e-6)


def test_anchors_from_spec_metadata_and_record_agree():
    spec = get_spec("ssdlite_mobilenet_v2_0.35_128")
    a = anchors_for(spec)
    np.testing.assert_array_equal(a, anchors_for(spec.metadata()))
    np.testing.assert_array_equal(a, anchors_for(spec.metadata()["postprocessing"]))
    with pytest.raises(ValueError, match="SSD"):
        anchors_for(get_spec("mobilenet_v2_0.35_96"))


def test_decode_of_encode_is_the_identity():
    rng = np.random.default_rng(0)
    anchors = anchors_for(ssd_config(128))
    xy = rng.random((len(anchors), 2)) * 0.7
    boxes = np.concatenate([xy, xy + 0.05 + 0.25 * rng.random((len(anchors), 2))], 1).astype(np.float32)
    deltas = encode(boxes, anchors)
    np.testing.assert_allclose(decode_boxes(deltas, anchors), boxes, atol=1e-6)
    # Zero deltas are the anchors themselves; TF's scales (10, 10, 5, 5).
    zero = decode_boxes(np.zeros_like(deltas), anchors)
    np.testing.assert_allclose((zero[:, :2] + zero[:, 2:]) / 2, anchors[:, :2], atol=1e-6)
    d = encode(np.array([[0.3, 0.3, 0.5, 0.7]]), np.array([[0.4, 0.5, 0.2, 0.2]]))[0]
    np.testing.assert_allclose(d, [0.0, 0.0, 0.0, 5 * np.log(2)], atol=1e-6)


def test_decode_scores_are_softmax_without_background():
    anchors = np.array([[0.5, 0.5, 0.2, 0.2]], np.float32)
    raw = np.array([[[0, 0, 0, 0, np.log(2), np.log(1), np.log(1)]]], np.float32)  # bg 2 : 1 : 1
    boxes, scores = decode(raw, anchors)
    np.testing.assert_allclose(boxes[0, 0], [0.4, 0.4, 0.6, 0.6], atol=1e-6)
    np.testing.assert_allclose(scores[0, 0], [0.25, 0.25], atol=1e-6)
    with pytest.raises(ValueError, match="anchors"):
        decode(np.zeros((1, 2, 7)), anchors)


def test_box_iou():
    a = np.array([[0, 0, 2, 2]])
    b = np.array([[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 6, 6]])
    np.testing.assert_allclose(box_iou(a, b)[0], [1 / 7, 1.0, 0.0])


def test_nms_keeps_the_best_and_drops_overlaps():
    boxes = np.array([[0, 0, 1, 1], [0.05, 0, 1.05, 1], [2, 2, 3, 3], [0, 0, 0.5, 1]], np.float32)
    scores = np.array([0.8, 0.9, 0.7, 0.6])
    keep = nms(boxes, scores, iou_threshold=0.5)
    # 1 (best) suppresses 0 (IoU 0.9); 2 is elsewhere; 3 overlaps 1 by 0.45/1.05 < 0.5: kept.
    assert keep.tolist() == [1, 2, 3]
    assert nms(boxes, scores, iou_threshold=0.4).tolist() == [1, 2]
    assert nms(boxes, scores, 0.5, max_output=2).tolist() == [1, 2]
    assert nms(np.zeros((0, 4)), np.zeros(0)).tolist() == []


def _raw_for(boxes_and_classes, anchors, num_classes):
    """Outputs that put a confident class on the anchors given, with box deltas for the given boxes."""
    raw = np.zeros((len(anchors), 5 + num_classes), np.float32)
    raw[:, 4] = 8.0  # background everywhere ...
    for a, box, cls in boxes_and_classes:
        raw[a, :4] = encode(np.asarray(box, np.float32)[None], anchors[a : a + 1])[0]
        raw[a, 4], raw[a, 5 + cls] = 0.0, 8.0  # ... except where an object is
    return raw


def test_detect_on_hand_made_outputs():
    spec = get_spec("ssdlite_mobilenet_v2_0.35_128")
    anchors = anchors_for(spec)
    raw0 = _raw_for(
        [
            (10, [0.1, 0.1, 0.4, 0.3], 1),
            (11, [0.12, 0.1, 0.42, 0.3], 1),  # a duplicate
            (200, [0.5, 0.5, 0.9, 1.2], 0),
        ],
        anchors,
        num_classes=3,
    )  # runs off the image
    raw0[11, 5 + 1] = 7.0  # the duplicate is less sure
    raw0[200, 5 + 0] = 7.5
    raw1 = _raw_for([], anchors, num_classes=3)
    out = detect(np.stack([raw0, raw1]), spec.metadata(), score_threshold=0.5)
    assert len(out) == 2
    boxes, scores, labels = out[0]
    assert labels.tolist() == [1, 0]  # NMS removed the duplicate; best first
    np.testing.assert_allclose(boxes[0], [0.1, 0.1, 0.4, 0.3], atol=1e-5)
    np.testing.assert_allclose(boxes[1], [0.5, 0.5, 0.9, 1.0], atol=1e-5)  # clipped to the image
    assert scores[0] > scores[1] > 0.99
    assert len(out[1][0]) == 0 and out[1][0].shape == (0, 4)
    # The thresholds: a low score threshold keeps the duplicate's other-class scores out still (8 logits
    # apart), and a high NMS IoU threshold keeps the duplicate itself.
    assert len(detect(raw0, spec, score_threshold=0.5, iou_threshold=0.95)[0][0]) == 3
    assert len(detect(raw0, spec, score_threshold=0.5, max_detections=1)[0][0]) == 1
