"""Model definitions and the registry of named variants."""

from edge_mnv2.models import (  # noqa: F401  (detection and segmentation variants)
    deeplab,
    mobilenet_v2,  # noqa: F401  (registers the variants)
    ssdlite,
)
from edge_mnv2.models.pretrained import register_cards
from edge_mnv2.models.registry import ModelSpec, create_model, get_spec, list_models, register_model

register_cards()  # shipped weights: <model>.<tag>

__all__ = ["ModelSpec", "create_model", "get_spec", "list_models", "register_model"]
