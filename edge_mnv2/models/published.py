"""Published accuracy of the reference checkpoints a registered variant corresponds to (``published.toml``).

These are figures of someone else's trained weights (the TF-slim MobileNetV2 ImageNet checkpoints), kept
with their source so that a sweep can show what accuracy a width and resolution give up; they are
never presented as measured by edge-mnv2.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import tomllib

PUBLISHED_FILE = Path(__file__).with_name("published.toml")


@dataclass(frozen=True)
class PublishedAccuracy:
    """ImageNet top-1/top-5 (%) of a reference checkpoint, its multiply-adds and parameters (millions)
    as published, and where they come from."""

    top1: float
    top5: float
    macs_m: float
    params_m: float
    source: str
    url: str

    def to_dict(self) -> dict:
        return {
            "top1": self.top1,
            "top5": self.top5,
            "macs_m": self.macs_m,
            "params_m": self.params_m,
            "source": self.source,
            "url": self.url,
        }


@lru_cache(maxsize=1)
def _table() -> dict[str, PublishedAccuracy]:
    data = tomllib.loads(PUBLISHED_FILE.read_text())
    source = data["source"]
    return {
        name: PublishedAccuracy(source=source["title"], url=source["url"], **row)
        for name, row in data["models"].items()
    }


def published_accuracy(name: str) -> PublishedAccuracy | None:
    """The published figures for the registry variant ``name`` (its ImageNet classifier), or None."""
    return _table().get(name)
