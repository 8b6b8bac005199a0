"""Data: preprocessing (defined once) and the evaluation sets the device is measured on."""

from edge_mnv2.data.preprocessing import IMAGENET_PREPROCESSING, Preprocessing

__all__ = ["IMAGENET_PREPROCESSING", "Preprocessing"]
