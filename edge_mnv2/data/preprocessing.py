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
    crop_fraction: float = 0.875  # photographs: resize the short side to size/0.875, centre-crop size

    def resize_and_crop(self, image, size: int) -> np.ndarray:
        """A PIL image -> ``(size, size, 3)`` uint8: the standard ImageNet evaluation resize + centre crop."""
        from PIL import Image

        image = image.convert("RGB")
        short = max(size, int(round(size / self.crop_fraction)))
        w, h = image.size
        scale = short / min(w, h)
        image = image.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)
        w, h = image.size
        left, top = (w - size) // 2, (h - size) // 2
        return np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.uint8)

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
        return cls(
            mean=tuple(d["mean"]),
            std=tuple(d["std"]),
            layout=d.get("layout", "NCHW"),
            scale=float(d.get("scale", 1.0 / 255.0)),
            crop_fraction=float(d.get("crop_fraction", 0.875)),
        )


# torchvision's and timm's ImageNet statistics, which their MobileNetV2 checkpoints expect.
IMAGENET_PREPROCESSING = Preprocessing(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
