"""Trained weights shipped with the project, named like timm's pretrained tags: ``<model>.<tag>``.

Each set of weights has a card, ``edge_mnv2/pretrained/<model>.<tag>.toml``, that names the file, its
sha256, the data set and classes, the command that reproduces it and what it measured. A card makes
``<model>.<tag>`` a registered model, accepted wherever a model name is.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import tomllib

from edge_mnv2.errors import CheckpointError
from edge_mnv2.models.registry import _REGISTRY, get_spec, register_model

PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "pretrained"


@dataclass(frozen=True)
class PretrainedWeights:
    tag: str
    path: Path
    sha256: str
    dataset: str
    classes: tuple[str, ...]
    command: str = ""
    metrics: dict = field(default_factory=dict, compare=False)

    def check(self) -> None:
        """Raise unless the weights file is present and unaltered."""
        from edge_mnv2.models.weights import file_sha256

        if not self.path.is_file():
            raise CheckpointError(
                f"shipped weights {str(self.path)!r} are missing (a Git LFS pointer or a "
                f"partial checkout?); restore the file or retrain with: {self.command}"
            )
        if file_sha256(self.path) != self.sha256:
            raise CheckpointError(
                f"shipped weights {str(self.path)!r} do not match the sha256 on their card; "
                f"restore the file or retrain with: {self.command}"
            )


def load_card(card: Path):
    """Register the ``<model>.<tag>`` variant a card describes."""
    data = tomllib.loads(card.read_text())
    base = get_spec(data["model"])
    weights = PretrainedWeights(
        tag=data["tag"],
        path=card.parent / data["file"],
        sha256=data["sha256"],
        dataset=data["dataset"],
        classes=tuple(data["classes"]),
        command=data.get("command", ""),
        metrics=data.get("metrics", {}),
    )
    name = f"{base.name}.{weights.tag}"
    if name in _REGISTRY:
        return _REGISTRY[name]
    return register_model(replace(base, name=name, num_classes=len(weights.classes), pretrained=weights))


def register_cards(folder: Path = PRETRAINED_DIR) -> None:
    for card in sorted(folder.glob("*.toml")):
        load_card(card)
