"""ONNX model -> generated microcontroller sources (kernels, static executor, weights, ``model.h``)."""

from __future__ import annotations

from pathlib import Path

import onnx

from edge_mnv2 import progress
from edge_mnv2.micro.emit import InputFormat, ModelSources, write_model_dir
from edge_mnv2.micro.graph import build_plan
from edge_mnv2.micro.lowering import fused_module, generate_kernel
from edge_mnv2.micro.planner import plan_arena


def generate_model_sources(proto: onnx.ModelProto, name: str, directory: Path,
                           preprocessing: dict | None = None, module=None) -> ModelSources:
    """Lower ``proto`` (or ``module``, a Relax module already built, e.g. int8) with TVM and write its C
    sources into ``directory``."""
    from tqdm.auto import tqdm

    from edge_mnv2.frontend import relax_module

    with progress.stage("importing into TVM Relax and fusing"):
        mod = fused_module(module if module is not None else relax_module(proto))
        plan = build_plan(mod)
    kernels = []
    for kernel in tqdm(plan.kernels, desc="  C kernels", unit="kernel", dynamic_ncols=True,
                       disable=True if progress.is_quiet() else None):
        kernels.append(generate_kernel(mod[kernel], f"k_{kernel}"))
    arena = plan_arena(plan)
    channels = plan.tensors[plan.input_id].shape[1] if len(plan.tensors[plan.input_id].shape) == 4 else 3
    fmt = InputFormat.from_metadata(preprocessing, channels)
    return write_model_dir(Path(directory), name, plan, arena, kernels, fmt)
