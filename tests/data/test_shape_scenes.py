"""Generated scenes: deterministic, boxes tight around the drawn shapes, masks consistent with boxes."""

import numpy as np
import pytest

from edge_mnv2.data import shapes_detection, shapes_segmentation
from edge_mnv2.data.shape_scenes import SceneSplit, render_scene, scene_rng
from edge_mnv2.data.shapes import CLASSES
from edge_mnv2.errors import EdgeMnv2Error


def test_deterministic_and_split_dependent():
    a = SceneSplit("val", 64, 6).scenes()
    b = SceneSplit("val", 64, 6).scenes()
    for x, y in zip(a, b):
        assert np.array_equal(x.image, y.image) and np.array_equal(x.mask, y.mask)
        assert np.array_equal(x.boxes, y.boxes) and np.array_equal(x.labels, y.labels)
    assert not np.array_equal(a[0].image, SceneSplit("train", 64, 6).item(0).image)
    assert not np.array_equal(a[0].image, SceneSplit("val", 64, 6, seed=1).item(0).image)
    assert np.array_equal(SceneSplit("val", 64, 6).item(4).image, a[4].image)  # any scene alone


def test_types_and_ranges():
    for scene in SceneSplit("val", 96, 30).scenes():
        assert scene.image.dtype == np.uint8 and scene.image.shape == (96, 96, 3)
        assert scene.mask.dtype == np.uint8 and scene.mask.shape == (96, 96)
        assert scene.boxes.dtype == np.float32 and scene.boxes.shape == (len(scene.labels), 4)
        assert 1 <= len(scene.labels) <= 4
        assert ((scene.boxes >= 0) & (scene.boxes <= 1)).all()
        assert (scene.boxes[:, 2:] > scene.boxes[:, :2]).all()
        assert ((scene.labels >= 0) & (scene.labels < len(CLASSES))).all()


@pytest.mark.parametrize("resolution,fill", [(64, False), (128, False), (128, True)])
def test_boxes_are_tight_around_the_mask_and_the_mask_is_inside_the_boxes(resolution, fill):
    for scene in SceneSplit("train", resolution, 40, fill_textures=fill).scenes():
        covered = np.zeros(scene.mask.shape, bool)
        for box, label in zip(scene.boxes, scene.labels):
            x0, y0, x1, y1 = np.round(box * resolution).astype(int)
            inside = scene.mask[y0:y1, x0:x1] == label + 1
            # tight: every edge row and column of the box touches the object
            assert inside[0].any() and inside[-1].any() and inside[:, 0].any() and inside[:, -1].any()
            covered[y0:y1, x0:x1] |= inside
        assert np.array_equal(covered, scene.mask > 0)  # no object pixel outside its box


def test_boxes_follow_the_drawn_shape():
    """The box is where the image changed: pixels of the object's colour fill the box's rows/columns."""
    scene = render_scene(128, scene_rng(0, "val", 3))
    for box, label in zip(scene.boxes, scene.labels):
        x0, y0, x1, y1 = np.round(box * 128).astype(int)
        object_pixels = scene.image[scene.mask == label + 1].astype(float)
        around = scene.image[max(0, y0 - 3) : y0].reshape(-1, 3).astype(float)
        if len(around):  # the shape's colour stands out from the background just above its box
            assert np.abs(object_pixels.mean(0) - around.mean(0)).max() > 20


def test_detection_and_segmentation_sets():
    images, targets = shapes_detection.validation_arrays(8, 64)
    assert images.shape == (8, 64, 64, 3) and images.dtype == np.uint8 and len(targets) == 8
    images2, masks = shapes_segmentation.validation_arrays(8, 64)
    assert images2.shape == (8, 64, 64, 3) and images2.dtype == np.uint8
    assert masks.shape == (8, 64, 64) and masks.dtype == np.int64
    assert all(1 <= len(set(np.unique(m)) - {0}) <= 3 for m in masks)
    small, small_targets = shapes_detection.validation_arrays(20, 64, num_classes=3)
    assert all(t[1].max() < 3 for t in small_targets)
    _, small_masks = shapes_segmentation.validation_arrays(20, 64, num_classes=4)
    assert small_masks.max() <= 3
    with pytest.raises(EdgeMnv2Error):
        shapes_segmentation.validation_arrays(2, 64, num_classes=1)


def test_flip_boxes():
    boxes = np.array([[0.1, 0.2, 0.4, 0.5]], np.float32)
    np.testing.assert_allclose(shapes_detection.flip_boxes(boxes), [[0.6, 0.2, 0.9, 0.5]], atol=1e-6)


def test_textured_objects_are_their_whole_outline_when_filled():
    """Segmentation labels a striped, dotted or chequered object by its outline; its pattern is inside."""
    painted = SceneSplit("val", 128, 60).scenes()
    filled = SceneSplit("val", 128, 60, fill_textures=True).scenes()
    textured = [CLASSES.index(c) for c in ("stripes", "dots", "checkerboard")]
    seen = 0
    for a, b in zip(painted, filled):
        assert np.array_equal(a.image, b.image) and np.array_equal(a.labels, b.labels)  # the same drawing
        for label in set(a.labels.tolist()):
            pa, pb = a.mask == label + 1, b.mask == label + 1
            assert not (pa & ~pb).any()  # the painted pixels are inside the object
            if label in textured:
                seen += 1
                assert pb.sum() > 1.3 * pa.sum()  # and the gaps of the pattern too
            else:
                assert np.array_equal(pa, pb)
    assert seen > 5


def test_validation_set_by_dataset_name():
    from edge_mnv2.data.scene_sets import validation_set

    images, targets = validation_set("shapes-detection", 3, 64)
    assert np.array_equal(images, shapes_detection.validation_arrays(3, 64)[0]) and len(targets) == 3
    images, masks = validation_set("shapes-segmentation", 3, 64, num_classes=11)
    assert masks.shape == (3, 64, 64)
    with pytest.raises(EdgeMnv2Error, match="shapes-detection"):
        validation_set("shapes", 3, 64)
