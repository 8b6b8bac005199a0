"""Procedurally generated scenes for detection and segmentation: several shapes per image.

The objects are the classifier set's shapes (:mod:`edge_mnv2.data.shapes`: the same signed distance
functions, colours, rotations, anti-aliased edges) on the same kind of cluttered, smooth textured
background with brightness jitter and noise; a scene has 1 to 4 of them, of random class, size and
place, apart from one another (no occlusion), so every object is seen whole. Every scene is a pure
function of ``(seed, split, index, resolution)`` (and the set's style: object sizes and count, and
whether a textured object is its pattern or its whole outline).

Each scene gives the uint8 HWC image, the objects' boxes (x0, y0, x1, y1, normalised to [0, 1], tight
around the object's pixels: those the shape covers by more than one half), their labels (0-based class
indices) and the integer mask (0 background, ``label + 1`` on the object's pixels); the box of an object is
exactly the bounding box of its pixels in the mask.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from edge_mnv2.data.shapes import CLASSES, _sdf
from edge_mnv2.data.synthetic import _smooth_field

SPLITS = ("train", "val", "test")
DEFAULT_SEED = 0
MAX_OBJECTS = 4
SIZE_RANGE = (0.08, 0.2)  # shape radius r, as a fraction of the image side
EXTENT = 1.2  # every shape lies within 1.2 r of its centre (the square's corner: 1.13 r)
GAP = 0.02  # minimum gap between two objects' extents


@dataclass(frozen=True)
class Scene:
    """One generated scene."""

    image: np.ndarray  # (H, W, 3) uint8
    boxes: np.ndarray  # (K, 4) float32: x0, y0, x1, y1 normalised
    labels: np.ndarray  # (K,) int64: 0-based indices into the classes
    mask: np.ndarray  # (H, W) uint8: 0 background, label + 1 on the object's pixels


def scene_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random stream of one scene (independent of the classifier set's)."""
    digest = hashlib.sha256(f"shape-scenes/{seed}/{split}/{index}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _place(
    rng: np.random.Generator, count: int, size_range: tuple[float, float] = SIZE_RANGE
) -> list[tuple[float, float, float]]:
    """Up to ``count`` (cx, cy, r) inside the image and apart from each other (rejection sampling)."""
    placed: list[tuple[float, float, float]] = []
    for _ in range(count):
        for _attempt in range(30):
            r = size_range[0] + (size_range[1] - size_range[0]) * rng.random()
            margin = EXTENT * r
            cx, cy = margin + (1 - 2 * margin) * rng.random(2)
            if all(np.hypot(cx - x, cy - y) > EXTENT * (r + s) + GAP for x, y, s in placed):
                placed.append((float(cx), float(cy), float(r)))
                break
    return placed


# Textured classes are a pattern inside an outline (a disc or a square): as an object (a segment) they are
# the whole outline, the way a striped shirt is all shirt; the other classes are the shape itself.
_OUTLINES = {"stripes": "disc", "dots": "disc", "checkerboard": "square"}


def _outline_sdf(kind: str, u: np.ndarray, v: np.ndarray, r: float) -> np.ndarray:
    if _OUTLINES[kind] == "disc":
        return np.hypot(u, v) - r
    return np.maximum(np.abs(u), np.abs(v)) - 0.8 * r


def render_scene(
    resolution: int,
    rng: np.random.Generator,
    num_classes: int = len(CLASSES),
    size_range: tuple[float, float] = SIZE_RANGE,
    max_objects: int = MAX_OBJECTS,
    fill_textures: bool = False,
) -> Scene:
    """One scene at ``resolution`` with objects of the first ``num_classes`` shape classes.

    ``size_range`` bounds the shapes' radius (fraction of the side), ``max_objects`` their count; with
    ``fill_textures`` the object of a textured class (stripes, dots, checkerboard) is its whole outline
    (disc or square), not only the painted pattern, in the mask and hence the box.
    """
    res = int(resolution)
    background = 0.15 + 0.7 * _smooth_field(rng, res, int(rng.integers(2, 7)))
    yy, xx = (np.mgrid[0:res, 0:res] + 0.5) / res
    for _ in range(int(rng.integers(0, 4))):  # clutter: soft blobs, which no class is made of
        cx, cy, rad = rng.random(), rng.random(), 0.03 + 0.1 * rng.random()
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * rad * rad))[..., None]
        background = background * (1 - 0.6 * blob) + 0.6 * blob * rng.random(3)
    image = background
    mask = np.zeros((res, res), np.uint8)
    boxes, labels = [], []
    for cx, cy, r in _place(rng, int(rng.integers(1, max_objects + 1)), size_range):
        label = int(rng.integers(num_classes))
        theta = 2 * np.pi * rng.random()
        # Only the window around the object is computed (it lies within EXTENT * r of the centre).
        x0, x1 = max(0, int((cx - EXTENT * r) * res) - 1), min(res, int((cx + EXTENT * r) * res) + 2)
        y0, y1 = max(0, int((cy - EXTENT * r) * res) - 1), min(res, int((cy + EXTENT * r) * res) + 2)
        wy, wx = yy[y0:y1, x0:x1], xx[y0:y1, x0:x1]
        u = (wx - cx) * np.cos(theta) + (wy - cy) * np.sin(theta)
        v = -(wx - cx) * np.sin(theta) + (wy - cy) * np.cos(theta)
        alpha = np.clip(0.5 - _sdf(CLASSES[label], u, v, r, rng) * res, 0.0, 1.0)
        inside = alpha > 0.5
        if not inside.any():  # too small to draw at this resolution
            continue
        window = image[y0:y1, x0:x1]
        local = window[inside].mean(axis=0)
        colour = rng.random(3)
        if np.abs(colour - local).max() < 0.35:  # a colour that stands out from what is under it
            colour = np.where(local > 0.5, local - 0.45, local + 0.45) * rng.uniform(0.8, 1.0, 3)
        a = alpha[..., None]
        image[y0:y1, x0:x1] = window * (1 - a) + np.clip(colour, 0, 1) * a
        if fill_textures and CLASSES[label] in _OUTLINES:  # the same drawing; the object is its outline
            inside = inside | (_outline_sdf(CLASSES[label], u, v, r) * res < 0.0)
        mask[y0:y1, x0:x1][inside] = label + 1
        rows, cols = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
        boxes.append(((x0 + cols[0]) / res, (y0 + rows[0]) / res, (x0 + cols[-1] + 1) / res, (y0 + rows[-1] + 1) / res))
        labels.append(label)
    image = image * rng.uniform(0.7, 1.2) + rng.normal(0, rng.uniform(0.01, 0.06), image.shape)
    return Scene(
        image=np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8),
        boxes=np.asarray(boxes, np.float32).reshape(-1, 4),
        labels=np.asarray(labels, np.int64),
        mask=mask,
    )


@dataclass(frozen=True)
class SceneSplit:
    """A split of generated scenes: ``size`` scenes at ``resolution``, reproducible from ``seed``.

    ``num_classes`` takes the first classes of :data:`edge_mnv2.data.shapes.CLASSES`.
    """

    split: str = "val"
    resolution: int = 128
    size: int = 1000
    seed: int = DEFAULT_SEED
    num_classes: int = len(CLASSES)
    size_range: tuple[float, float] = SIZE_RANGE
    max_objects: int = MAX_OBJECTS
    fill_textures: bool = False

    def __post_init__(self):
        from edge_mnv2.errors import EdgeMnv2Error

        if self.split not in SPLITS:
            raise EdgeMnv2Error(f"unknown split {self.split!r}; use one of {', '.join(SPLITS)}")
        if self.size < 1 or self.resolution < 32:
            raise EdgeMnv2Error(
                f"a scene split needs size >= 1 and resolution >= 32, got {self.size}, {self.resolution}"
            )
        if not 1 <= self.num_classes <= len(CLASSES):
            raise EdgeMnv2Error(f"scenes have 1 to {len(CLASSES)} classes, got {self.num_classes}")

    @property
    def classes(self) -> tuple[str, ...]:
        """The object classes (no background)."""
        return CLASSES[: self.num_classes]

    def item(self, index: int) -> Scene:
        """Scene ``index``."""
        if not 0 <= index < self.size:
            raise IndexError(index)
        return render_scene(
            self.resolution,
            scene_rng(self.seed, self.split, index),
            self.num_classes,
            self.size_range,
            self.max_objects,
            self.fill_textures,
        )

    def scenes(self, start: int = 0, stop: int | None = None) -> list[Scene]:
        """Scenes ``start..stop``."""
        stop = self.size if stop is None else min(stop, self.size)
        return [self.item(i) for i in range(start, stop)]


def generate(split: SceneSplit, workers: int | None = None) -> list[Scene]:
    """All scenes of ``split``, generated in parallel processes for large splits."""
    import os
    from concurrent.futures import ProcessPoolExecutor

    workers = workers or min(len(os.sched_getaffinity(0)), max(1, split.size // 1000))
    if workers <= 1:
        return split.scenes()
    bounds = np.linspace(0, split.size, workers * 4 + 1).astype(int)
    with ProcessPoolExecutor(workers) as pool:
        parts = pool.map(_chunk, [(split, a, b) for a, b in zip(bounds, bounds[1:])])
        return [scene for part in parts for scene in part]


def _chunk(args) -> list[Scene]:
    split, start, stop = args
    return split.scenes(start, stop)
