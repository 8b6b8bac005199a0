"""TVM's C kernels for microcontrollers: fused TIR scheduled for small memory, with a plain pointer ABI.

microTVM is gone from TVM 0.27, and its stock C output uses the packed-function calling convention
(DLTensor arguments, shape checks with error strings, workspaces from ``TVMBackendAllocWorkspace``).
This module keeps TVM's code generation and replaces what does not fit a microcontroller:

* :func:`schedule_for_micro` inlines padding and elementwise epilogues and computes the epilogue
  where each output element is reduced, so a convolution needs one accumulator, not a padded copy of
  its input and three full-size intermediates;
* :func:`plain_pointer_api` turns buffer parameters into ``float*`` parameters (the pass that stands
  where ``MakePackedAPI`` would), so a kernel is ``void f(float* in, float* w, ..., float* out)``;
* the ``edge-mnv2-micro`` TIR pipeline lowers the result without the packed API.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from edge_mnv2.errors import CompileError

PIPELINE_NAME = "edge-mnv2-micro"
# Headers and globals of TVM's C output that only the packed runtime needs.
C_TYPES = {
    "float32": "float",
    "int8": "int8_t",
    "uint8": "uint8_t",
    "int16": "int16_t",
    "int32": "int32_t",
    "int64": "int64_t",
    "float64": "double",
}
_RUNTIME_LINES = re.compile(r'^(#include "tvm/.*"|#define TVM_EXPORTS|void\* __tvm_ffi__library_ctx = NULL;)$')


@dataclass(frozen=True)
class Kernel:
    """One generated C function: its name, parameters (in order) and source."""

    name: str
    params: tuple[str, ...]
    param_types: tuple[str, ...]  # C element types of the pointer parameters ("float", "int8_t", ...)
    source: str
    stack_arrays: int  # bytes of fixed-size local arrays (accumulators) the kernel declares


def fused_module(mod):
    """Legalize and fuse a Relax module: ``main`` becomes a list of ``call_tir`` kernel calls."""
    from tvm import relax

    return relax.get_pipeline("zero")(mod)


def _is_reduction(sch, block) -> bool:
    return any(int(iv.iter_type) != 0 for iv in sch.get(block).iter_vars)


def schedule_for_micro(func):
    """Inline padding and elementwise stages and compute epilogues at the reduction's output element."""
    from tvm import s_tir

    sch = s_tir.Schedule(func)
    root = sch.get_sblock("root")
    changed = True
    while changed:  # inlining one stage can make its neighbour inlinable
        changed = False
        for block in sch.get_child_blocks(root):
            if _is_reduction(sch, block):
                continue
            try:
                sch.compute_inline(block)
            except Exception:  # outputs and non-injective stages stay  # noqa: BLE001
                continue
            changed = True
            break
    for block in sch.get_child_blocks(root):
        if not _is_reduction(sch, block):
            continue
        spatial = sum(1 for iv in sch.get(block).iter_vars if int(iv.iter_type) == 0)
        loops = sch.get_loops(block)
        if spatial == 0 or len(loops) < spatial:
            continue
        for consumer in sch.get_consumers(block):
            try:
                sch.reverse_compute_at(consumer, loops[spatial - 1])
            except Exception:  # a consumer that needs the whole reduction keeps its buffer  # noqa: BLE001
                pass
    return sch.mod["main"]


def _dtype_name(buffer_type) -> str:
    dtype = buffer_type.dtype
    return str(getattr(dtype, "dtype", dtype))


def plain_pointer_api(func, name: str):
    """The kernel with each buffer parameter replaced by a pointer to its data, exported as ``name``.

    TVM 0.27 has no Python IR mutator for TIR, so the rewrite goes through TVMScript: the signature
    is regenerated from the parameters' buffer types and each buffer is declared on its pointer.
    """
    from tvm.script import from_source

    lines = func.script().splitlines()
    try:
        head = next(i for i, line in enumerate(lines) if line.startswith("def main("))
        attrs = next(i for i, line in enumerate(lines) if "T.func_attr" in line)
    except StopIteration as exc:
        raise CompileError(f"kernel {name}: unexpected TVMScript layout") from exc
    params, decls = [], []
    for param in func.params:
        ty = param.ty
        dtype = _dtype_name(ty)
        if dtype not in C_TYPES:
            raise CompileError(
                f"kernel {name}: parameter {param.name} has dtype {dtype}, which the "
                "microcontroller path does not support"
            )
        shape = "".join(f"{int(s)}, " for s in ty.shape)
        params.append(f'{param.name}_ptr: T.handle("{dtype}")')
        decls.append(f'    {param.name} = T.decl_buffer(({shape}), "{dtype}", data={param.name}_ptr)')
    lines[head] = f"def main({', '.join(params)}):"
    lines[attrs + 1 : attrs + 1] = decls
    return from_source("\n".join(lines)).with_attr("global_symbol", name)


def _micro_pipeline():
    """TVM's S-TIR lowering for a CPU, without the packed API (see :func:`plain_pointer_api`)."""
    import tvm
    from tvm import s_tir, tirx

    @tvm.transform.module_pass(opt_level=0, name=PIPELINE_NAME)
    def _pipeline(mod, _ctx):
        passes = [
            s_tir.transform.CanonicalizeLoop(),
            s_tir.transform.LowerInitBlock(),
            s_tir.transform.PlanAndUpdateBufferAllocationLocation(),
            s_tir.transform.ConvertBlocksToOpaque(),
            s_tir.transform.CompactBufferAllocation(),
            s_tir.transform.LowerMatchBuffer(),
            s_tir.transform.StmtSimplify(),
            s_tir.transform.LowerOpaqueBlock(),
            tirx.transform.FlattenBuffer(),
            tirx.transform.NarrowDataType(32),
            s_tir.transform.LoopPartition(),
            tirx.transform.VectorizeLoop(False),  # scalar C: the C compiler vectorises for its CPU
            tirx.transform.StorageRewrite(),
            s_tir.transform.HoistIfThenElse(),
            tirx.transform.UnrollLoop(),
            s_tir.transform.RenormalizeSplitPattern(),
            tirx.transform.StmtSimplify(),
            tirx.transform.RemoveNoOp(),
            s_tir.transform.RewriteUnsafeSelect(),
            tirx.transform.CommonSubexprElim(),
            tirx.transform.VerifyMemory(),
        ]
        return tvm.ir.transform.Sequential(passes)(mod)

    def finalize_host():
        return tvm.ir.transform.Sequential([tirx.transform.LowerTVMBuiltin(), tirx.transform.LowerIntrin()])

    def finalize_device():
        return tvm.ir.transform.Sequential([])

    return _pipeline, finalize_host, finalize_device


def register_pipeline() -> None:
    """Register the ``edge-mnv2-micro`` TIR pipeline with TVM (idempotent)."""
    from tvm.tirx import compilation_pipeline

    if PIPELINE_NAME not in compilation_pipeline.PIPELINE_MAP:
        compilation_pipeline.register_tir_pipeline(PIPELINE_NAME, _micro_pipeline)


def generate_kernel(func, name: str) -> Kernel:
    """C source of one fused PrimFunc as a plain-ABI kernel named ``name``."""
    import tvm
    from tvm.tirx.build import codegen_build
    from tvm.tirx.compilation_pipeline import get_tir_pipeline

    register_pipeline()
    target = tvm.target.Target({"kind": "c"})
    try:
        kernel = plain_pointer_api(schedule_for_micro(func), name)
        mod = tvm.tirx.transform.BindTarget(target)(tvm.IRModule({name: kernel}))
        lower, finalize, _ = get_tir_pipeline(PIPELINE_NAME)
        mod = finalize()(lower(mod))
        source = codegen_build(mod, target).inspect_source()
    except CompileError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise CompileError(f"TVM could not generate C for kernel {name}: {first}") from exc
    body = "\n".join(line for line in source.splitlines() if not _RUNTIME_LINES.match(line)).strip()
    if "TVMBackendAllocWorkspace" in body:
        raise CompileError(
            f"kernel {name} still needs a heap workspace after scheduling; "
            "edge-mnv2's microcontroller path has no allocator for it"
        )
    stack = sum(
        _ctype_bytes(m.group(1)) * int(m.group(2))
        for m in re.finditer(r"^\s+(float|int32_t|int8_t|uint8_t|int16_t|int64_t|double) \w+\[(\d+)\];", body, re.M)
    )
    types = tuple(C_TYPES[_dtype_name(p.ty)] for p in func.params)
    return Kernel(
        name=name, params=tuple(p.name for p in func.params), param_types=types, source=body, stack_arrays=stack
    )


def _ctype_bytes(ctype: str) -> int:
    return {"float": 4, "int32_t": 4, "int8_t": 1, "uint8_t": 1, "int16_t": 2, "int64_t": 8, "double": 8}[ctype]
