"""The data layout a CPU build computes in: NCHW as imported from ONNX, or NHWC (channels last).

ONNX models are NCHW. In NHWC a depthwise convolution's channels are contiguous, so it vectorises
across channels, and a 1x1 convolution is a plain matrix product over pixels. ``convert`` rewrites the
Relax module with TVM's ``ConvertLayout``: convolutions become NHWC with HWIO weights (transposed once
at compile time by constant folding), and the elementwise operations between them follow, so the only
run-time transposes are at the model's input and before its pooled output. HWIO keeps a kernel's
output channels contiguous in its weights as in its output, so a schedule that vectorises across
output channels loads weights as vectors; with OHWI each lane's weight is ``C_in`` elements (a
depthwise kernel's: 9) from the next. That matters to plain-weight logs; a prepacked log's schedules
choose their weights' layout whatever it starts as.

TVM's ONNX importer emits ``Clip`` (MobileNetV2's ReLU6) as ``call_tir`` of a TE maximum and minimum,
which ``ConvertLayout`` cannot see into: it would transpose back to NCHW around every ReLU6 (175
transposes for mobilenet_v2_1.0_224). ``clips_as_ops`` first turns those calls into Relax's own
``maximum``/``minimum`` operators, which follow the layout.
"""

from __future__ import annotations

from edge_mnv2.errors import EdgeMnv2Error

LAYOUTS = {
    "NCHW": None,  # as imported
    "NHWC": {"relax.nn.conv2d": ["NHWC", "HWIO"]},  # weights output-channels-last: see above
}
DEFAULT = "NCHW"
_CLIP_KERNELS = ("maximum", "minimum")


def check_layout(layout: str) -> str:
    """``layout`` if edge-mnv2 can build in it, else a one-line error naming the choices."""
    if layout not in LAYOUTS:
        raise EdgeMnv2Error(f"unknown layout {layout!r}: choose one of {', '.join(LAYOUTS)}")
    return layout


def clips_as_ops(mod):
    """``mod`` with the importer's ``call_tir(maximum|minimum, (x, scalar))`` as Relax operators."""
    import tvm
    from tvm import relax
    from tvm.relax.expr_functor import PyExprMutator, mutator

    call_tir = tvm.ir.Op.get("relax.call_tir")
    ops = {"maximum": relax.op.maximum, "minimum": relax.op.minimum}

    @mutator
    class ClipsAsOps(PyExprMutator):
        def visit_call_(self, call):
            call = super().visit_call_(call)
            if call.op != call_tir or not isinstance(call.args[1], relax.Tuple):
                return call
            kernel = call.args[0].name_hint.rstrip("0123456789")  # maximum, maximum1, ...
            args = call.args[1].fields
            if kernel in ops and len(args) == 2 and len(args[1].ty.shape) == 0:
                return ops[kernel](args[0], args[1])
            return call

    mutate = ClipsAsOps(mod)
    for gv, func in mod.functions.items():
        if isinstance(func, relax.Function):
            mutate.builder_.update_func(gv, mutate.visit_expr(func))
    # the TE kernels nobody calls any more go
    return relax.transform.DeadCodeElimination()(mutate.builder_.get())


def convert(mod, layout: str):
    """The Relax module of an imported (NCHW) model, computing in ``layout``; same inputs and outputs."""
    from tvm import relax

    desired = LAYOUTS[check_layout(layout)]
    if desired is None:
        return mod
    return relax.transform.ConvertLayout(desired)(clips_as_ops(mod))
