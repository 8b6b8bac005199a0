"""A procedurally generated, labelled image-classification set: ten classes of shapes and textures.

Every image is a pure function of ``(seed, split, index, resolution)``, so any split at any resolution
is reproducible without storing data. Colour, size, position, rotation, background and noise are all
random, so only the shape identifies the class: a linear model on pixels does not solve it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from edge_mnv2.data.synthetic import _smooth_field

CLASSES: tuple[str, ...] = (
    "disc",
    "ring",
    "square",
    "frame",
    "triangle",
    "cross",
    "stripes",
    "checkerboard",
    "dots",
    "crescent",
)
SPLITS = ("train", "val", "test")
DEFAULT_SEED = 0
DEFAULT_SIZES = {"train": 20000, "val": 2000, "test": 2000}


def _sdf(kind: str, u: np.ndarray, v: np.ndarray, r: float, rng: np.random.Generator) -> np.ndarray:
    """Signed distance (negative inside) of a class's shape, in local rotated coordinates."""
    d = np.hypot(u, v)
    if kind == "disc":
        return d - r
    if kind == "ring":
        return np.abs(d - 0.72 * r) - 0.2 * r
    if kind == "square":
        return np.maximum(np.abs(u), np.abs(v)) - 0.8 * r
    if kind == "frame":
        return np.abs(np.maximum(np.abs(u), np.abs(v)) - 0.68 * r) - 0.14 * r
    if kind == "triangle":
        angles = np.deg2rad([90.0, 210.0, 330.0])
        return np.max([u * np.cos(a) + v * np.sin(a) for a in angles], axis=0) - 0.5 * r
    if kind == "cross":
        arm = 0.24 * r
        return np.minimum(np.maximum(np.abs(u) - r, np.abs(v) - arm), np.maximum(np.abs(u) - arm, np.abs(v) - r))
    if kind == "stripes":
        period = r * (0.3 + 0.15 * rng.random())
        stripe = (np.abs(np.mod(u / period, 1.0) - 0.5) - 0.25) * period
        return np.maximum(d - r, stripe)
    if kind == "checkerboard":
        cell = r * (0.3 + 0.15 * rng.random())
        inside = np.sin(np.pi * u / cell) * np.sin(np.pi * v / cell)
        return np.maximum(np.maximum(np.abs(u), np.abs(v)) - 0.8 * r, -inside * cell * 0.3)
    if kind == "dots":
        pitch = r * (0.35 + 0.15 * rng.random())
        du = np.mod(u, pitch) - pitch / 2
        dv = np.mod(v, pitch) - pitch / 2
        return np.maximum(d - r, np.hypot(du, dv) - 0.28 * pitch)
    if kind == "crescent":
        bite = np.hypot(u - 0.45 * r, v) - 0.8 * r
        return np.maximum(d - r, -bite)
    raise ValueError(f"unknown shape class {kind!r}")


def _rng(seed: int, split: str, index: int) -> np.random.Generator:
    digest = hashlib.sha256(f"shapes/{seed}/{split}/{index}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def render(label: int, resolution: int, rng: np.random.Generator) -> np.ndarray:
    """One ``(resolution, resolution, 3)`` uint8 image of class ``label``."""
    background = _smooth_field(rng, resolution, int(rng.integers(2, 7)))
    background = 0.15 + 0.7 * background
    # Clutter: a few soft blobs, which no class is made of.
    yy, xx = (np.mgrid[0:resolution, 0:resolution] + 0.5) / resolution
    for _ in range(int(rng.integers(0, 4))):
        cx, cy, rad = rng.random(), rng.random(), 0.03 + 0.1 * rng.random()
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * rad * rad))[..., None]
        background = background * (1 - 0.6 * blob) + 0.6 * blob * rng.random(3)
    r = 0.2 + 0.18 * rng.random()  # size, as a fraction of the image
    cx, cy = 0.5 + (0.5 - r) * (2 * rng.random(2) - 1) * 0.9
    theta = 2 * np.pi * rng.random()
    u = (xx - cx) * np.cos(theta) + (yy - cy) * np.sin(theta)
    v = -(xx - cx) * np.sin(theta) + (yy - cy) * np.cos(theta)
    sd = _sdf(CLASSES[label], u, v, r, rng)
    alpha = np.clip(0.5 - sd * resolution, 0.0, 1.0)[..., None]  # one-pixel anti-aliased edge
    # A colour that stands out from the background under the shape.
    local = background[alpha[..., 0] > 0.5].mean(axis=0) if (alpha > 0.5).any() else background.mean((0, 1))
    colour = rng.random(3)
    if np.abs(colour - local).max() < 0.35:
        colour = np.where(local > 0.5, local - 0.45, local + 0.45) * rng.uniform(0.8, 1.0, 3)
    image = background * (1 - alpha) + np.clip(colour, 0, 1) * alpha
    image = image * rng.uniform(0.7, 1.2) + rng.normal(0, rng.uniform(0.01, 0.06), image.shape)
    return np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class ShapesSplit:
    """A split of the shapes set: ``size`` images at ``resolution``, reproducible from ``seed``."""

    split: str = "val"
    resolution: int = 96
    size: int = DEFAULT_SIZES["val"]
    seed: int = DEFAULT_SEED

    def __post_init__(self):
        from edge_mnv2.errors import EdgeMnv2Error

        if self.split not in SPLITS:
            raise EdgeMnv2Error(f"unknown split {self.split!r}; use one of {', '.join(SPLITS)}")
        if self.size < 1 or self.resolution < 8:
            raise EdgeMnv2Error(f"shapes split needs size >= 1 and resolution >= 8, got {self.size}, {self.resolution}")

    @property
    def classes(self) -> tuple[str, ...]:
        return CLASSES

    def label(self, index: int) -> int:
        """Classes are balanced: image ``i`` is of class ``i mod 10`` (a shuffled order is the loader's job)."""
        return index % len(CLASSES)

    def item(self, index: int) -> tuple[np.ndarray, int]:
        """Image ``index`` (uint8 HWC) and its label."""
        if not 0 <= index < self.size:
            raise IndexError(index)
        label = self.label(index)
        return render(label, self.resolution, _rng(self.seed, self.split, index)), label

    def arrays(self, start: int = 0, stop: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Images ``(N, H, W, 3)`` uint8 and labels ``(N,)`` int64 for indices ``start..stop``."""
        stop = self.size if stop is None else min(stop, self.size)
        images = np.empty((stop - start, self.resolution, self.resolution, 3), np.uint8)
        labels = np.empty(stop - start, np.int64)
        for i in range(start, stop):
            images[i - start], labels[i - start] = self.item(i)
        return images, labels
