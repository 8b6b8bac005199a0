"""Seeded synthetic images: smooth coloured backgrounds with random shapes and noise.

They stand in for photographs where no data set can be downloaded: structured enough that a network's
outputs vary from image to image (unlike white noise, whose pooled features are nearly constant), and
exactly reproducible from a seed at any resolution.
"""

from __future__ import annotations

import numpy as np


def _smooth_field(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """A ``(size, size, 3)`` field in [0, 1], bilinearly upsampled from a ``cells x cells`` grid."""
    grid = rng.random((cells + 1, cells + 1, 3))
    pos = np.linspace(0, cells, size, endpoint=False)
    i0 = pos.astype(int)
    f = (pos - i0)[:, None]
    rows = grid[i0] * (1 - f[:, :, None]) + grid[i0 + 1] * f[:, :, None]
    cols = rows[:, i0] * (1 - f[None, :, :]) + rows[:, i0 + 1] * f[None, :, :]
    return cols


def synthetic_images(count: int, resolution: int, seed: int = 0) -> np.ndarray:
    """``count`` uint8 RGB images of shape ``(count, resolution, resolution, 3)``, the same for a seed."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:resolution, 0:resolution] / resolution
    images = np.empty((count, resolution, resolution, 3), np.uint8)
    for n in range(count):
        img = _smooth_field(rng, resolution, int(rng.integers(2, 6)))
        for _ in range(int(rng.integers(1, 5))):
            cx, cy = rng.random(2)
            r = 0.08 + 0.3 * rng.random()
            colour = rng.random(3)
            kind = rng.integers(3)
            if kind == 0:  # disc
                mask = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
            elif kind == 1:  # axis-aligned box
                mask = (np.abs(xx - cx) < r) & (np.abs(yy - cy) < r * (0.4 + rng.random()))
            else:  # stripes
                freq = 4 + 12 * rng.random()
                angle = np.pi * rng.random()
                mask = np.sin(freq * np.pi * (xx * np.cos(angle) + yy * np.sin(angle))) > 0
                mask &= (xx - cx) ** 2 + (yy - cy) ** 2 < 2 * r * r
            img[mask] = colour
        img += rng.normal(0, 0.03 + 0.05 * rng.random(), img.shape)
        images[n] = np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)
    return images
