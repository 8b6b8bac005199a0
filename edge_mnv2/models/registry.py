"""A registry of named model variants, in the manner of timm's ``register_model``.

Each entry is a :class:`ModelSpec`: the data that defines a variant (family, width, resolution,
classes, preprocessing) plus the builder that turns it into a ``torch.nn.Module``.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import Callable

import torch

from edge_mnv2.data.preprocessing import IMAGENET_PREPROCESSING, Preprocessing
from edge_mnv2.errors import EdgeMnv2Error, UnknownModelError


@dataclass(frozen=True)
class ModelSpec:
    """A named model variant: what to build and what input it takes."""

    name: str
    family: str
    width: float
    resolution: int
    num_classes: int
    builder: Callable[..., torch.nn.Module] = field(repr=False, compare=False)
    preprocessing: Preprocessing = IMAGENET_PREPROCESSING
    task: str = "classification"  # "classification", "detection" or "segmentation"
    pretrained: object | None = field(default=None, compare=False)  # models.pretrained.PretrainedWeights
    # What turns the raw output into the task's answer (detection: anchors, box coder, NMS settings;
    # segmentation: arg-max), JSON-ready; recorded in the metadata so an ONNX file is enough to postprocess.
    postprocessing: dict | None = field(default=None, compare=False)

    @property
    def published(self):
        """The published accuracy of the reference checkpoint of this width and resolution
        (:class:`edge_mnv2.models.published.PublishedAccuracy`), or None."""
        from edge_mnv2.models.published import published_accuracy

        return published_accuracy(self.name)

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """Batch-1 NCHW input shape."""
        return (1, 3, self.resolution, self.resolution)

    def build(self, **overrides) -> torch.nn.Module:
        """A fresh module of this variant (weights as the builder initialises them)."""
        kwargs = dict(width=self.width, resolution=self.resolution, num_classes=self.num_classes)
        kwargs.update(overrides)
        return self.builder(**kwargs)

    def metadata(self) -> dict:
        """The facts about this variant recorded in ONNX and artifact metadata."""
        meta = {
            "model": self.name,
            "family": self.family,
            "task": self.task,
            "width": self.width,
            "resolution": self.resolution,
            "num_classes": self.num_classes,
            "preprocessing": self.preprocessing.to_dict(),
        }
        if self.postprocessing is not None:
            meta["postprocessing"] = json.loads(json.dumps(self.postprocessing))  # a copy
        if self.pretrained is not None:
            meta.update(dataset=self.pretrained.dataset, classes=list(self.pretrained.classes))
        return meta


_REGISTRY: dict[str, ModelSpec] = {}
# Families can explain a near-miss name better than "unknown" (for example a width off the grid).
_NAME_CHECKERS: list[Callable[[str], None]] = []


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add a variant to the registry; names are unique."""
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} is registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def register_name_checker(checker: Callable[[str], None]) -> None:
    """Register a function that raises a specific error for a name its family almost accepts."""
    _NAME_CHECKERS.append(checker)


def list_models(family: str | None = None) -> list[str]:
    """Registered model names, in registration order, optionally of one family."""
    return [n for n, s in _REGISTRY.items() if family is None or s.family == family]


def get_spec(name: str) -> ModelSpec:
    """The spec of a registered model, or a clear error listing close and valid names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        pass
    close = difflib.get_close_matches(name, list(_REGISTRY), n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    for checker in _NAME_CHECKERS:
        try:
            checker(name)
        except EdgeMnv2Error as exc:
            raise type(exc)(f"{exc}.{hint}" if hint else str(exc)) from None
    # the whole registry (over 140 names) on one line is unreadable: the suggestions and where to look
    raise UnknownModelError(
        f"unknown model {name!r}.{hint} `edge-mnv2 models` lists the {len(_REGISTRY)} registered models."
    )


def create_model(name: str, **overrides) -> torch.nn.Module:
    """Build a registered model by name."""
    return get_spec(name).build(**overrides)
