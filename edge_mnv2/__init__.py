"""edge-mnv2: MobileNetV2-family models from PyTorch to edge hardware through Apache TVM."""

__version__ = "0.1.0"
