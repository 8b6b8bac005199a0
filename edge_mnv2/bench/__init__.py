"""Measuring an artifact: on which device (``device``), the run against the desktop reference and the
host's rivals (``measure``, ``peers``), accuracy and latency statistics (``metrics``,
``detection_metrics``, ``segmentation_metrics``), the report (``report``) and per-layer timing
(``layer_profile``). Firmware is measured by :mod:`edge_mnv2.micro.bench`.

``bench_artifact`` and ``BenchSettings`` are imported from ``measure`` on first use.
"""

from __future__ import annotations

__all__ = ["BenchSettings", "bench_artifact"]


def __getattr__(name: str):
    if name in __all__:
        from edge_mnv2.bench import measure

        return getattr(measure, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
