"""The registry as a table (``edge-mnv2 models``): each model's size, cost and shipped weights."""

from __future__ import annotations

import torch

from edge_mnv2 import progress
from edge_mnv2.models import get_spec, list_models   # the package: importing it registers every model
from edge_mnv2.models.complexity import measure


def catalogue() -> list[dict]:
    """One row per registered model: shape, class count, parameters, multiply-adds and any shipped weights."""
    rows = []
    for name in progress.bar(list_models(), "counting", total=len(list_models())):
        spec = get_spec(name)
        with torch.device("meta"):   # shapes only: counting needs no weights and no arithmetic
            c = measure(spec.build(), spec.input_shape)
        row = {"name": name, "family": spec.family, "width": spec.width, "resolution": spec.resolution,
               "classes": spec.num_classes, "params": c.params, "madds": c.madds, "weights": None}
        if spec.pretrained is not None:
            row["weights"] = {"dataset": spec.pretrained.dataset, "file": spec.pretrained.path.name,
                              "command": spec.pretrained.command, **spec.pretrained.metrics}
        rows.append(row)
    return rows
