"""Writes weights.bin for the toy model (seeded; rerun only to change the toy)."""

from pathlib import Path

import numpy as np

rng = np.random.default_rng(20240607)
parts = [rng.normal(0, 0.1, (16, 192)), rng.normal(0, 0.1, 16), rng.normal(0, 0.3, (10, 16)), rng.normal(0, 0.1, 10)]
blob = np.concatenate([p.astype("<f4").ravel() for p in parts])
(Path(__file__).parent / "weights.bin").write_bytes(blob.tobytes())
