"""ONNX model -> generated microcontroller sources (kernels, static executor, weights, ``model.h``)."""

from __future__ import annotations

from pathlib import Path

import onnx

from edge_mnv2 import progress
from edge_mnv2.micro.emit import InputFormat, ModelSources, write_model_dir
from edge_mnv2.micro.graph import build_plan
from edge_mnv2.micro.lowering import fused_module, generate_kernel
from edge_mnv2.micro.planner import plan_arena


def generate_model_sources(
    proto: onnx.ModelProto, name: str, directory: Path, preprocessing: dict | None = None, module=None
) -> ModelSources:
    """Lower ``proto`` (or ``module``, a Relax module already built, e.g. int8) with TVM and write its C
    sources into ``directory``."""
    from tqdm.auto import tqdm

    from edge_mnv2.compile.frontend import relax_module

    with progress.stage("importing into TVM Relax and fusing"):
        mod = fused_module(module if module is not None else relax_module(proto))
        plan = build_plan(mod)
    kernels = []
    for kernel in tqdm(
        plan.kernels,
        desc="  C kernels",
        unit="kernel",
        dynamic_ncols=True,
        disable=True if progress.is_quiet() else None,
    ):
        kernels.append(generate_kernel(mod[kernel], f"k_{kernel}"))
    arena = plan_arena(plan)
    channels = plan.tensors[plan.input_id].shape[1] if len(plan.tensors[plan.input_id].shape) == 4 else 3
    fmt = InputFormat.from_metadata(preprocessing, channels)
    return write_model_dir(Path(directory), name, plan, arena, kernels, fmt)


def generate_int8_sources(
    model,
    input_shape: tuple[int, int, int, int],
    name: str,
    directory: Path,
    preprocessing: dict | None,
    gcc_flags: list[str],
) -> tuple[ModelSources, dict]:
    """Write the model directory of a quantized classifier (a ``QuantizedModel``) that calls the
    kernel library; returns the sources and ``{"implementation", "savings"}`` for the report.
    ``gcc_flags`` are the board's -mcpu flags: they pick the kernels and their scratch sizes."""
    from edge_mnv2.micro.int8_emit import write_int8_model_dir
    from edge_mnv2.micro.int8_plan import add_scratch, build_int8_plan, memory_savings, plan_memory
    from edge_mnv2.micro.nn_library import evaluate_macros

    with progress.stage("planning the int8 kernels and the arena"):
        plan = build_int8_plan(model, input_shape)
        (implementation,) = evaluate_macros(["MNV2_NN_IMPL_NAME"], gcc_flags)
        cache: dict[str, int] = {}

        def sized(macro: str):
            def size(*args) -> int:
                expr = f"{macro}({', '.join(str(a) for a in args)})"
                if expr not in cache:
                    (cache[expr],) = evaluate_macros([expr], gcc_flags)
                return cache[expr]

            return size

        fns = (sized("MNV2_PW_SCRATCH"), sized("MNV2_DW_SCRATCH"), sized("MNV2_CONV_SCRATCH"))
        add_scratch(plan, *fns)
        owner, arena = plan_memory(plan)
        savings = memory_savings(model, input_shape, fns)
    fmt = InputFormat.from_metadata(preprocessing, input_shape[1])
    sources = write_int8_model_dir(Path(directory), name, model, plan, owner, arena, fmt, implementation, savings)
    return sources, {"implementation": implementation, "savings": savings, "macs": plan.macs}
