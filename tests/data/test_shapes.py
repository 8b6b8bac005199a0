"""The procedural shapes set: reproducible, balanced, varied, and not linearly separable."""

import numpy as np
import pytest
import torch

from edge_mnv2.data.shapes import CLASSES, ShapesSplit, render
from edge_mnv2.errors import EdgeMnv2Error


def test_reproducible_and_split_dependent():
    a = ShapesSplit("val", 64, 20, seed=0).arrays()
    b = ShapesSplit("val", 64, 20, seed=0).arrays()
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], ShapesSplit("train", 64, 20, seed=0).arrays()[0])
    assert not np.array_equal(a[0], ShapesSplit("val", 64, 20, seed=1).arrays()[0])


def test_any_image_alone_equals_its_place_in_the_split():
    split = ShapesSplit("train", 48, 30)
    images, labels = split.arrays()
    image, label = split.item(17)
    assert np.array_equal(images[17], image) and labels[17] == label
    part, _ = split.arrays(10, 20)
    assert np.array_equal(part, images[10:20])


def test_balanced_labels_and_types():
    images, labels = ShapesSplit("val", 32, 100).arrays()
    assert images.dtype == np.uint8 and images.shape == (100, 32, 32, 3)
    assert labels.dtype == np.int64
    assert np.bincount(labels, minlength=10).tolist() == [10] * 10


@pytest.mark.parametrize("resolution", [32, 96, 160])
def test_every_class_renders_at_any_resolution(resolution):
    rng = np.random.default_rng(0)
    for label in range(len(CLASSES)):
        img = render(label, resolution, rng)
        assert img.shape == (resolution, resolution, 3)
        assert img.std() > 10  # not blank


def test_colour_carries_no_label():
    """Mean colour per class is nearly the same: only the shape tells classes apart."""
    images, labels = ShapesSplit("train", 32, 1000).arrays()
    means = np.array([images[labels == c].mean(axis=(0, 1, 2)) for c in range(10)])
    assert np.ptp(means, axis=0).max() < 25


def test_bad_split_arguments():
    with pytest.raises(EdgeMnv2Error, match="split"):
        ShapesSplit("holdout")
    with pytest.raises(EdgeMnv2Error):
        ShapesSplit("val", 96, 0)
    with pytest.raises(IndexError):
        ShapesSplit("val", 32, 5).item(5)


def test_a_linear_model_does_not_solve_it():
    """Softmax regression on the pixels stays far below what the CNN reaches (over 90%)."""
    torch.manual_seed(0)
    xtr, ytr = ShapesSplit("train", 32, 3000).arrays()
    xva, yva = ShapesSplit("val", 32, 1000).arrays()

    def features(x):
        f = torch.from_numpy(x.reshape(len(x), -1).astype(np.float32) / 255.0)
        return f - f.mean(1, keepdim=True)

    ftr, fva = features(xtr), features(xva)
    linear = torch.nn.Linear(ftr.shape[1], 10)
    opt = torch.optim.Adam(linear.parameters(), lr=1e-3, weight_decay=1e-4)
    for _ in range(300):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(linear(ftr), torch.from_numpy(ytr)).backward()
        opt.step()
    with torch.no_grad():
        train_acc = (linear(ftr).argmax(1).numpy() == ytr).mean()
        val_acc = (linear(fva).argmax(1).numpy() == yva).mean()
    assert train_acc > 0.3  # the linear model did fit something ...
    assert val_acc < 0.4  # ... but it does not generalise: chance is 0.1
