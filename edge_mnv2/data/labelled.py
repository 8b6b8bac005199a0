"""Labelled image sets for training and evaluation: the procedural shapes set, or ImageNet-style folders.

Both give uint8 ``(N, H, W, 3)`` batches at the model's resolution plus integer labels; turning them
into model input is :class:`~edge_mnv2.data.preprocessing.Preprocessing`'s job, defined once.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_mnv2.data.preprocessing import IMAGENET_PREPROCESSING, Preprocessing
from edge_mnv2.data.shapes import CLASSES as SHAPES_CLASSES
from edge_mnv2.data.shapes import DEFAULT_SIZES, ShapesSplit
from edge_mnv2.errors import EdgeMnv2Error

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".tif", ".tiff"}


class LabelledSet:
    """A labelled split: ``len()``, ``labels``, ``classes``, and :meth:`batch` of uint8 images."""

    name: str
    classes: tuple[str, ...]
    labels: np.ndarray
    resolution: int

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, indices) -> np.ndarray:
        raise NotImplementedError

    def describe(self) -> dict:
        return {"name": self.name, "size": len(self), "num_classes": len(self.classes)}


def _shapes_chunk(args) -> tuple[np.ndarray, np.ndarray]:
    split, start, stop = args
    return split.arrays(start, stop)


@dataclass
class ShapesSet(LabelledSet):
    """A split of the procedural shapes set, generated into memory (in parallel for large splits)."""

    split: ShapesSplit
    images: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        self.name, self.classes, self.resolution = "shapes", SHAPES_CLASSES, self.split.resolution
        workers = min(len(os.sched_getaffinity(0)), max(1, self.split.size // 2000))
        if workers > 1:
            bounds = np.linspace(0, self.split.size, workers * 4 + 1).astype(int)
            with ProcessPoolExecutor(workers) as pool:
                parts = list(pool.map(_shapes_chunk, [(self.split, a, b) for a, b in zip(bounds, bounds[1:])]))
            self.images = np.concatenate([p[0] for p in parts])
            self.labels = np.concatenate([p[1] for p in parts])
        else:
            self.images, self.labels = self.split.arrays()

    def batch(self, indices) -> np.ndarray:
        return self.images[np.asarray(indices)]

    def describe(self) -> dict:
        return dict(super().describe(), split=self.split.split, seed=self.split.seed)


class ImageFolderSet(LabelledSet):
    """``root/<class>/<image>`` folders (ImageNet layout); images decoded, resized and cropped on demand."""

    def __init__(
        self,
        root: str | Path,
        resolution: int,
        preprocessing: Preprocessing = IMAGENET_PREPROCESSING,
        classes: tuple[str, ...] | None = None,
    ):
        root = Path(root)
        if not root.is_dir():
            raise EdgeMnv2Error(
                f"image folder {str(root)!r} does not exist; give a folder of <class>/<image> subfolders"
            )
        found = tuple(sorted(p.name for p in root.iterdir() if p.is_dir()))
        self.classes = classes or found
        unknown = set(found) - set(self.classes)
        if unknown:
            raise EdgeMnv2Error(f"{str(root)!r} has class folders {sorted(unknown)} that the model does not know")
        index = {c: i for i, c in enumerate(self.classes)}
        self.paths: list[Path] = []
        labels = []
        for c in found:
            for p in sorted((root / c).rglob("*")):
                if p.suffix.lower() in IMAGE_SUFFIXES:
                    self.paths.append(p)
                    labels.append(index[c])
        if not self.paths:
            raise EdgeMnv2Error(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {str(root)!r}")
        self.labels = np.asarray(labels, np.int64)
        self.name, self.root, self.resolution, self.preprocessing = "imagefolder", root, resolution, preprocessing

    def batch(self, indices) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        out = np.empty((len(indices), self.resolution, self.resolution, 3), np.uint8)
        for n, i in enumerate(indices):
            try:
                with Image.open(self.paths[i]) as img:
                    out[n] = self.preprocessing.resize_and_crop(img, self.resolution)
            except (OSError, UnidentifiedImageError) as exc:
                raise EdgeMnv2Error(f"cannot read image {str(self.paths[i])!r}: {exc}") from exc
        return out

    def describe(self) -> dict:
        return dict(super().describe(), root=str(self.root))


def open_split(
    data: str,
    split: str,
    resolution: int,
    size: int | None = None,
    seed: int = 0,
    preprocessing: Preprocessing = IMAGENET_PREPROCESSING,
    classes: tuple[str, ...] | None = None,
) -> LabelledSet:
    """``data`` is ``shapes`` (the procedural set) or a folder holding ``train/`` and ``val/`` subfolders."""
    if data == "shapes":
        return ShapesSet(ShapesSplit(split, resolution, size or DEFAULT_SIZES[split], seed))
    root = Path(data)
    if not root.is_dir():
        raise EdgeMnv2Error(
            f"data {data!r} is neither 'shapes' nor a folder; give --data shapes or an "
            "ImageNet-style folder with train/ and val/"
        )
    folder = root / split if (root / split).is_dir() else None
    if folder is None:
        raise EdgeMnv2Error(f"{str(root)!r} has no {split}/ subfolder (expected {root}/{split}/<class>/<image>)")
    dataset = ImageFolderSet(folder, resolution, preprocessing, classes)
    if size is not None and size < len(dataset):  # an evenly spread, deterministic subset
        keep = np.linspace(0, len(dataset) - 1, size).astype(int)
        dataset.paths = [dataset.paths[i] for i in keep]
        dataset.labels = dataset.labels[keep]
    return dataset
