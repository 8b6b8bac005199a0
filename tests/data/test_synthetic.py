"""Synthetic images, preprocessing and the evaluation set."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge_mnv2.data.evalset import EVAL_SEED, evaluation_inputs
from edge_mnv2.data.preprocessing import IMAGENET_PREPROCESSING, Preprocessing
from edge_mnv2.data.synthetic import synthetic_images


@pytest.mark.parametrize("resolution", [32, 96, 224])
def test_synthetic_shape_dtype(resolution):
    images = synthetic_images(3, resolution, seed=1)
    assert images.shape == (3, resolution, resolution, 3)
    assert images.dtype == np.uint8


@pytest.mark.parametrize("resolution", [96, 160])
def test_synthetic_deterministic_per_seed(resolution):
    np.testing.assert_array_equal(synthetic_images(4, resolution, 11), synthetic_images(4, resolution, 11))


def test_synthetic_prefix_stable():
    # The first images do not depend on how many are asked for.
    np.testing.assert_array_equal(synthetic_images(2, 64, 5), synthetic_images(5, 64, 5)[:2])


def test_synthetic_differs_across_seeds():
    a, b = synthetic_images(4, 96, 0), synthetic_images(4, 96, 1)
    assert np.mean(a != b) > 0.5


def test_synthetic_images_differ_from_each_other():
    images = synthetic_images(8, 96, 0).astype(np.float64)
    for i in range(1, len(images)):
        assert np.abs(images[i] - images[0]).mean() > 5


def test_synthetic_images_not_constant():
    images = synthetic_images(16, 96, 3)
    for img in images:
        assert img.std() > 20
        assert img.max() > img.min()


def test_normalize_matches_formula():
    pre = IMAGENET_PREPROCESSING
    images = synthetic_images(2, 48, 0)
    got = pre.normalize(images)
    mean = np.array([0.485, 0.456, 0.406])
    std = np.array([0.229, 0.224, 0.225])
    expected = ((images.astype(np.float64) / 255 - mean) / std).transpose(0, 3, 1, 2)
    assert got.dtype == np.float32
    assert got.shape == (2, 3, 48, 48)
    assert got.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_normalize_channel_order():
    # A pure-red image: only channel 0 is at the top of its range.
    img = np.zeros((1, 4, 4, 3), np.uint8)
    img[..., 0] = 255
    out = IMAGENET_PREPROCESSING.normalize(img)
    assert out[0, 0, 0, 0] == pytest.approx((1 - 0.485) / 0.229, rel=1e-5)
    assert out[0, 1, 0, 0] == pytest.approx((0 - 0.456) / 0.224, rel=1e-5)
    assert out[0, 2, 0, 0] == pytest.approx((0 - 0.406) / 0.225, rel=1e-5)


def test_preprocessing_dict_round_trip():
    pre = Preprocessing(mean=(0.5, 0.25, 0.125), std=(0.1, 0.2, 0.3), scale=1.0 / 127.5)
    d = pre.to_dict()
    assert d["mean"] == [0.5, 0.25, 0.125] and d["std"] == [0.1, 0.2, 0.3]
    assert d["layout"] == "NCHW"
    back = Preprocessing.from_dict(json.loads(json.dumps(d)))
    assert back == pre
    assert Preprocessing.from_dict(IMAGENET_PREPROCESSING.to_dict()) == IMAGENET_PREPROCESSING


def test_preprocessing_from_minimal_dict():
    pre = Preprocessing.from_dict({"mean": [0, 0, 0], "std": [1, 1, 1]})
    assert pre.layout == "NCHW" and pre.scale == pytest.approx(1 / 255)


def test_evaluation_inputs_deterministic():
    a = evaluation_inputs(4, 96, IMAGENET_PREPROCESSING)
    b = evaluation_inputs(4, 96, IMAGENET_PREPROCESSING)
    assert a.shape == (4, 3, 96, 96) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, IMAGENET_PREPROCESSING.normalize(synthetic_images(4, 96, EVAL_SEED)))
    assert not np.array_equal(a, evaluation_inputs(4, 96, IMAGENET_PREPROCESSING, seed=EVAL_SEED + 1))
