"""Input preprocessing, defined once and shared by export metadata, evaluation and training."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Preprocessing:
    """How a uint8 RGB image becomes the model's float input: ``(x / 255 - mean) / std``, NCHW."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    layout: str = "NCHW"
    scale: float = 1.0 / 255.0

    def normalize(self, images_uint8: np.ndarray) -> np.ndarray:
        """Turn a batch of ``(N, H, W, 3)`` uint8 images into ``(N, 3, H, W)`` float32 model input."""
        x = images_uint8.astype(np.float32) * np.float32(self.scale)
        x = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))

    def to_dict(self) -> dict:
        """A JSON-ready description, as written into ONNX and artifact metadata."""
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Preprocessing":
        return cls(mean=tuple(d["mean"]), std=tuple(d["std"]), layout=d.get("layout", "NCHW"),
                   scale=float(d.get("scale", 1.0 / 255.0)))


# torchvision's and timm's ImageNet statistics, which their MobileNetV2 checkpoints expect.
IMAGENET_PREPROCESSING = Preprocessing(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
