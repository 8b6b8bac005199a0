"""Labelled sets: the shapes set in memory, and ImageNet-style folders of real image files."""

import numpy as np
import pytest
from PIL import Image

from edge_mnv2.data.labelled import ImageFolderSet, open_split
from edge_mnv2.data.preprocessing import IMAGENET_PREPROCESSING
from edge_mnv2.data.shapes import CLASSES, ShapesSplit
from edge_mnv2.errors import EdgeMnv2Error


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """train/ and val/ folders of PNG and JPEG files, 3 classes, non-square images."""
    root = tmp_path_factory.mktemp("folder")
    for split, count in (("train", 12), ("val", 6)):
        images, labels = ShapesSplit(split, 80, count).arrays()
        for i, (img, label) in enumerate(zip(images, labels)):
            if label > 2:
                continue
            folder = root / split / CLASSES[label]
            folder.mkdir(parents=True, exist_ok=True)
            wide = np.concatenate([img, img[:, :40]], axis=1)  # 80x120: exercises resize + centre crop
            Image.fromarray(wide).save(folder / f"{i}.{'png' if i % 2 else 'jpg'}")
        (root / split / "disc" / "notes.txt").write_text("not an image")
    return root


def test_shapes_split_matches_generator():
    data = open_split("shapes", "val", 32, 20)
    images, labels = ShapesSplit("val", 32, 20).arrays()
    assert np.array_equal(data.batch(np.arange(20)), images)
    assert np.array_equal(data.labels, labels) and data.classes == CLASSES


def test_large_shapes_split_generated_in_parallel_is_identical():
    data = open_split("shapes", "train", 16, 4000)  # large enough for the process pool
    images, labels = ShapesSplit("train", 16, 4000).arrays(3990, 4000)
    assert np.array_equal(data.batch(np.arange(3990, 4000)), images)
    assert np.array_equal(data.labels[3990:], labels)


def test_image_folder(image_folder):
    data = open_split(str(image_folder), "val", 64)
    assert data.classes == ("disc", "ring", "square")  # sorted folder names, as torchvision does
    assert len(data) == 3  # indices 0, 1, 2 of 6; the .txt file is ignored
    batch = data.batch([0, 1, 2])
    assert batch.shape == (3, 64, 64, 3) and batch.dtype == np.uint8
    assert sorted(data.labels.tolist()) == [0, 1, 2]


def test_image_folder_uses_the_models_class_order(image_folder):
    data = open_split(str(image_folder), "val", 32, classes=CLASSES)
    for path, label in zip(data.paths, data.labels):
        assert CLASSES[label] == path.parent.name


def test_resize_and_crop_keeps_the_centre():
    img = np.zeros((100, 200, 3), np.uint8)
    img[:, 75:125] = 255  # a white band in the middle
    out = IMAGENET_PREPROCESSING.resize_and_crop(Image.fromarray(img), 64)
    assert out.shape == (64, 64, 3)
    assert out[:, 28:36].mean() > 200 and out[:, :5].mean() < 20


def test_subset_size(image_folder):
    assert len(open_split(str(image_folder), "train", 32, size=4)) == 4


def test_errors(image_folder, tmp_path):
    with pytest.raises(EdgeMnv2Error, match="neither 'shapes' nor a folder"):
        open_split("imagenet", "val", 32)
    with pytest.raises(EdgeMnv2Error, match="test/"):
        open_split(str(image_folder), "test", 32)
    with pytest.raises(EdgeMnv2Error, match="does not know"):
        open_split(str(image_folder), "val", 32, classes=("disc",))
    (tmp_path / "val" / "cat").mkdir(parents=True)
    with pytest.raises(EdgeMnv2Error, match="no images"):
        ImageFolderSet(tmp_path / "val", 32)
    (tmp_path / "val" / "cat" / "broken.png").write_bytes(b"\x89PNG not really")
    data = ImageFolderSet(tmp_path / "val", 32)
    with pytest.raises(EdgeMnv2Error, match="broken.png"):
        data.batch([0])
