"""Compiling a model for a target: the ONNX model as Relax (``frontend``), its data layout
(``relax_layout``), and the CPU and CUDA pipelines into an artifact (``pipeline``, ``cuda``).
Microcontroller targets continue in
:mod:`edge_mnv2.micro`, int8 builds start in :mod:`edge_mnv2.quantize`.

``from edge_mnv2.compile import compile_model`` is the entry point; it is imported on first use, so
that importing a submodule (``relax_layout``) does not load the whole pipeline.
"""

from __future__ import annotations

__all__ = ["compile_model"]


def __getattr__(name: str):
    if name == "compile_model":
        from edge_mnv2.compile.pipeline import compile_model

        return compile_model
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
