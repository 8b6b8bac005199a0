"""A Relax module to an executable for a CPU or CUDA target: the CPU pass pipeline (the tuning log's
schedules, prepacked weights, the default schedule rules for the rest) and ``relax.build``."""

from __future__ import annotations

import contextlib

from edge_mnv2.errors import CompileError
from edge_mnv2.targets import TargetSpec


def cpu_pipeline(
    target,
    database: bool = False,
    weight_prepack: bool = True,
    prepacked: list | None = None,
    provenance: dict | None = None,
    log: str | None = None,
):
    """The Relax pipeline of a CPU build (and of a GPU build from a prepacked log), as a pass, so that
    ``relax.build`` takes the target's ``exec_mode``:
    TVM's legalization and fusion, then, with ``database`` (a MetaSchedule database in scope), the tuning
    log's schedules where it has them (MetaSchedule's ``compile_relax`` as a pass), and the default
    schedule rules (:mod:`edge_mnv2.schedules`) for every kernel left unscheduled. ``provenance`` is
    filled with where each kernel's schedule came from (``log`` names the log).

    For a log tuned with prepacked weights, two additions, placed as in TVM's ``static_shape_tuning``
    pipeline: kernels mark their weights layout-free before the database is applied (so they match the
    tuned workloads), and afterwards each schedule's weight repacking is split into its own function,
    which ``FoldConstant`` runs on the constant weights at compile time. The model's interface does not
    change. The names of the repacking functions are appended to ``prepacked``.
    """
    import tvm
    from tvm import relax
    from tvm.relax import pipeline as relax_pipelines

    from edge_mnv2.schedules.apply import default_schedules

    T = relax.transform
    try:
        lower = relax_pipelines.dataflow_lower_passes(target)
        finalize = relax_pipelines.finalize_passes(target)
    except (ValueError, AttributeError):  # TVM 0.27 has these for GPUs only; compile_relax's CPU list
        lower = [T.RewriteDataflowReshape(), T.ToNonDataflow(), T.RemovePurityChecking(), T.CallTIRRewrite()]
        finalize = [
            T.StaticPlanBlockMemory(),
            T.LowerAllocTensor(),
            T.KillAfterLastUse(),
            T.LowerRuntimeBuiltin(),
            T.ComputePrimValue(),
            T.VMShapeLower(),
            T.AttachGlobalSymbol(),
        ]
    apply_log = []
    if database:
        prepack = [T.AttachAttrLayoutFreeBuffers(), T.MetaScheduleApplyDatabase(), T.SplitLayoutRewritePreproc()]
        apply_log = prepack if weight_prepack else [T.MetaScheduleApplyDatabase()]

    @tvm.transform.module_pass(opt_level=3, name="EdgeMnv2CPUPipeline")
    def pipeline(mod, _ctx):
        mod = tvm.transform.Sequential(
            [
                *relax_pipelines.library_dispatch_passes(target),
                T.LegalizeOps(),
                T.AnnotateTIROpPattern(),
                T.FoldConstant(),
                T.FuseOps(),
                T.FuseTIR(),
                *apply_log,
            ]
        )(mod)
        if prepacked is not None:
            prepacked.extend(gv.name_hint for gv in mod.functions if gv.name_hint.endswith("_weight_prepack"))
        # The repacking functions run once, on constants, at compile time: no schedule needed.
        repacks = {gv.name_hint for gv in mod.functions if gv.name_hint.endswith("_weight_prepack")}
        if target.kind.name == "llvm":  # a GPU log's prepacked build leaves the rest to TVM's GPU lowering
            # The rules prepack constant weights as their tiles read them (the layout-free attribute
            # comes after the log's lookup: a plain log's workloads were tuned without it).
            mod = tvm.transform.Sequential(
                [
                    *([] if database and weight_prepack else [T.AttachAttrLayoutFreeBuffers()]),
                    default_schedules(target, provenance, source_of_scheduled={"source": "log", "log": log}),
                    T.SplitLayoutRewritePreproc(),
                ]
            )(mod)
        if provenance is not None:
            for name in repacks:
                provenance.pop(name, None)
        return tvm.transform.Sequential([T.FoldConstant(), T.DeadCodeElimination(), *lower, *finalize])(mod)

    return pipeline


def build(
    mod,
    target: TargetSpec,
    database=None,
    weight_prepack: bool = False,
    prepacked: list | None = None,
    provenance: dict | None = None,
    log: str | None = None,
):
    """``relax.build`` the Relax module for the target. On a CPU: a MetaSchedule database's schedules where
    it has them (and, for a log tuned with prepacked weights, the weights repacked as its schedules read
    them), the default schedule rules everywhere else (``provenance`` says which kernel got what); on a
    GPU: the log's schedules, or TVM's default (dlight) schedules. In the target's ``exec_mode``."""
    import tvm
    from tvm import relax

    tvm_target = target.tvm_target()
    mode = target.exec_mode
    try:
        if target.device == "cpu" or (database is not None and weight_prepack):
            with tvm_target, database or contextlib.nullcontext(), tvm.transform.PassContext(opt_level=3):
                return relax.build(
                    mod,
                    target=tvm_target,
                    exec_mode=mode,
                    relax_pipeline=cpu_pipeline(
                        tvm_target, database is not None, weight_prepack, prepacked, provenance, log
                    ),
                )
        if database is not None:  # a GPU: compile_relax has dlight schedule the kernels the log lacks
            from tvm.s_tir import meta_schedule as ms

            return ms.relax_integration.compile_relax(database, mod, tvm_target, params=None)
        with tvm_target:
            try:
                return relax.build(
                    mod, target=tvm_target, exec_mode=mode, relax_pipeline=relax.get_default_pipeline(tvm_target)
                )
            except AssertionError:
                if target.device != "cuda":
                    raise
                # dlight's GEMV rule asserts on some kernels (SSDLite's 1x1-spatial extra layers) instead
                # of declining them: schedule the GPU kernels without it, then build as usual
                from tvm.s_tir import dlight as dl

                fused = relax.get_pipeline("zero")(mod)
                fused = dl.ApplyDefaultSchedule(
                    dl.gpu.Matmul(), dl.gpu.Reduction(), dl.gpu.GeneralReduction(), dl.gpu.Fallback()
                )(fused)
                return relax.build(
                    fused, target=tvm_target, exec_mode=mode, relax_pipeline=relax.get_default_pipeline(tvm_target)
                )
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CompileError(f"TVM failed to build for target {target.name!r}: {first}") from exc
