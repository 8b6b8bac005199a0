"""The registry as a table (``edge-mnv2 models``): each model's size, cost and shipped weights.

Parameter and multiply-add counts depend only on a model's definition, so they are checked-in metadata
(``counts.json``, as torchvision keeps its weights' metadata) instead of 141 models built and traced on
every call; ``tests/models/test_catalogue.py`` checks the file against :func:`measured`, and
``python -m edge_mnv2.models.catalogue`` rewrites it after a change to the model code. A model the
file does not list (one registered after it was written) is measured.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from edge_mnv2 import progress
from edge_mnv2.models import get_spec, list_models  # the package: importing it registers every model
from edge_mnv2.models.complexity import Complexity, measure

COUNTS_FILE = Path(__file__).with_name("counts.json")


def measured(name: str) -> Complexity:
    """Count a registered model's parameters and multiply-adds by building it (shapes only) and tracing it."""
    import torch

    spec = get_spec(name)
    with torch.device("meta"):  # shapes only: counting needs no weights and no arithmetic
        return measure(spec.build(), spec.input_shape)


@lru_cache(maxsize=1)
def recorded() -> dict[str, Complexity]:
    """The checked-in counts, by model name (empty if the file is missing)."""
    if not COUNTS_FILE.is_file():
        return {}
    return {name: Complexity(**c) for name, c in json.loads(COUNTS_FILE.read_text()).items()}


def counts(name: str) -> Complexity:
    """A model's counts: the checked-in ones, or measured for a model the file does not list."""
    return recorded().get(name) or measured(name)


def catalogue() -> list[dict]:
    """One row per registered model: shape, class count, parameters, multiply-adds and any shipped weights."""
    rows = []
    names = list_models()
    missing = [n for n in names if n not in recorded()]
    bar = progress.bar(names, "counting", total=len(names)) if missing else names  # a bar only for slow work
    for name in bar:
        spec = get_spec(name)
        c = counts(name)
        row = {
            "name": name,
            "family": spec.family,
            "width": spec.width,
            "resolution": spec.resolution,
            "classes": spec.num_classes,
            "params": c.params,
            "madds": c.madds,
            "weights": None,
        }
        if spec.pretrained is not None:
            row["weights"] = {
                "dataset": spec.pretrained.dataset,
                "file": spec.pretrained.path.name,
                "command": spec.pretrained.command,
                **spec.pretrained.metrics,
            }
        rows.append(row)
    return rows


def write_counts(path: Path = COUNTS_FILE) -> int:
    """Measure every registered model and write ``counts.json``; returns how many were written."""
    data = {}
    for name in progress.bar(list_models(), "counting", total=len(list_models())):
        c = measured(name)
        data[name] = {"params": c.params, "madds": c.madds}
    path.write_text(json.dumps(data, indent=1) + "\n")
    recorded.cache_clear()
    return len(data)


if __name__ == "__main__":
    print(f"wrote {write_counts()} models' counts to {COUNTS_FILE}")
