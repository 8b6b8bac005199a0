"""The default schedule rules on every kernel the family produces: each kernel is taken by the rule
written for it, and computes what the unscheduled kernel computes, for each vector unit this CPU runs."""

from __future__ import annotations

import numpy as np
import pytest

from edge_mnv2.schedules.apply import _prepack
from edge_mnv2.schedules.isa import vector_isa
from edge_mnv2.schedules.rules import RULES, first_fitting, rule

# One size of each family: the classifier, SSDLite and both DeepLab heads.
FAMILIES = (
    "mobilenet_v2_0.35_96",
    "ssdlite_mobilenet_v2_0.35_96",
    "deeplabv3_mobilenet_v2_0.35_96",
    "deeplabv3_aspp_mobilenet_v2_0.35_96",
)


def _fused_kernels(model: str, tmp_path) -> dict:
    """The fused channels-last kernels of ``model``, deduplicated, with the layout-free attribute the
    build gives kernels whose weights are constants."""
    import onnx
    import tvm
    import tvm_ffi
    from tvm import relax

    from edge_mnv2.compile import relax_layout
    from edge_mnv2.compile.frontend import relax_module
    from edge_mnv2.export import export_onnx

    T = relax.transform
    mod = relax_layout.convert(relax_module(onnx.load(export_onnx(model, tmp_path / "m.onnx").path)), "NHWC")
    with tvm.target.Target({"kind": "llvm", "num-cores": 2}):
        mod = tvm.transform.Sequential(
            [
                T.LegalizeOps(),
                T.AnnotateTIROpPattern(),
                T.FoldConstant(),
                T.FuseOps(),
                T.FuseTIR(),
                T.AttachAttrLayoutFreeBuffers(),
            ]
        )(mod)
    kernels = {}
    for gv, func in mod.functions_items():
        if isinstance(func, tvm.tirx.PrimFunc):
            kernels.setdefault(tvm_ffi.structural_hash(func), (gv.name_hint, func))
    return dict(kernels.values())


@pytest.fixture(scope="module")
def kernels(tmp_path_factory) -> dict:
    out = {}
    for model in FAMILIES:
        out.update(_fused_kernels(model, tmp_path_factory.mktemp(model)))
    return out


def _args(func, rng) -> list[np.ndarray]:
    return [rng.standard_normal([int(d) for d in p.ty.shape]).astype(str(p.ty.dtype)) for p in func.params]


def _run(func, target, args) -> np.ndarray:
    import tvm

    lib = tvm.compile(tvm.IRModule({"main": func.with_attr("global_symbol", "main")}), target=target)
    tensors = [tvm.runtime.tensor(a) for a in args]
    lib["main"](*tensors)
    return tensors[-1].numpy()


def _first_rule(func, isa):
    return first_fitting(func, isa) or (None, None)


def test_every_kernel_of_every_family_gets_a_rule_and_the_convolutions_their_own(kernels):
    import tvm

    isa = vector_isa(tvm.target.Target({"kind": "llvm", "mcpu": "haswell", "num-cores": 2}))
    taken = {name: _first_rule(func, isa)[0] for name, func in kernels.items()}
    assert all(taken.values()), [name for name, r in taken.items() if r is None]
    by_rule = {r.name: [n for n, t in taken.items() if t is r] for r in RULES}
    assert by_rule["pointwise_nhwc"] and by_rule["depthwise_nhwc"] and by_rule["elementwise"]
    # the stem, the classifier and the pooling have one reduction each; no 1x1 or depthwise falls to it
    assert any("matmul" in n for n in by_rule["one_reduction"]) and any(
        n.startswith("mean") for n in by_rule["one_reduction"]
    )


@pytest.mark.slow
def test_each_scheduled_kernel_computes_what_the_plain_kernel_does(kernels):
    """On AVX2 (8 lanes, 16 registers: every x86-64 CI machine runs it); this CPU's own vector unit is
    covered end to end by tests/compile/test_compile_defaults.py, NEON on the emulated Pi there too."""
    import tvm

    target = tvm.target.Target({"kind": "llvm", "mcpu": "haswell", "num-cores": 2})
    isa = vector_isa(target)
    rng = np.random.default_rng(0)
    for name, func in kernels.items():
        r, (sch, params) = _first_rule(func, isa)
        sch, _ = _prepack(func, sch, target)  # the weights in the order the tiles read them, as in a build
        args = _args(func, rng)
        expected = _run(func, target, [a.copy() for a in args])
        got = _run(sch.mod["main"], target, [a.copy() for a in args])
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4, err_msg=f"{name} by {r.name} {params}")


@pytest.mark.slow
def test_the_aarch64_schedules_compute_what_the_plain_kernel_does(kernels):
    """The tiles the rules choose for AArch64's NEON (4 lanes, 32 registers, inputs loaded as vectors for
    FMLA by element) are plain TIR: checked here on this CPU, whatever it is, and end to end on the
    emulated Pi by tests/compile/test_compile_defaults.py."""
    import tvm

    from edge_mnv2.schedules.isa import VectorISA

    target = tvm.target.Target({"kind": "llvm", "mcpu": "haswell", "num-cores": 2})
    isa = VectorISA("neon", 4, 32, 2, fma_by_lane=True)
    rng = np.random.default_rng(1)
    by_lane = 0
    for name, func in kernels.items():
        r, (sch, params) = _first_rule(func, isa)
        by_lane += bool(params.get("vector_inputs"))
        args = _args(func, rng)
        expected = _run(func, target, [a.copy() for a in args])
        got = _run(sch.mod["main"], target, [a.copy() for a in args])
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4, err_msg=f"{name} by {r.name} {params}")
    assert by_lane >= 10  # every 1x1 convolution


@pytest.mark.parametrize(
    "isa_args",
    [("neon", 4, 32, 4, True), ("neon", 4, 16, 4, False), ("avx2", 8, 16, 2, False), ("avx512", 16, 32, 2, False)],
)
def test_pointwise_tiles_divide_the_row_and_fit_the_registers(isa_args):
    from edge_mnv2.schedules.isa import VectorISA
    from edge_mnv2.schedules.rules import _lanes_for, _pointwise_tile

    isa = VectorISA(*isa_args)
    unroll = 4 if isa.fma_by_lane else 2
    for width in (112, 96, 56, 48, 28, 24, 14, 12, 7, 6, 3):
        for channels in (16, 24, 32, 56, 64, 96, 144, 160, 192, 320, 384, 576, 960, 1280):
            lanes = _lanes_for(channels, isa)
            pixels, vectors = _pointwise_tile(isa, width, channels, lanes, unroll)
            assert width % pixels == 0 and channels % (vectors * lanes) == 0
            need = pixels * vectors + (pixels + vectors if isa.fma_by_lane else 0)
            assert need <= isa.registers, (width, channels, pixels, vectors)
            if width in (14, 7) and isa.registers == 32:
                assert pixels == 7  # a whole half row or row, not the 2 pixels a 4-vector tile left
    # the 24-channel 56x56 layer on NEON: three vectors of the 24 channels, 7 pixels, by lane
    assert _pointwise_tile(VectorISA("neon", 4, 32, 4, True), 56, 24, 4, 4) == (7, 3)


def test_rules_are_registered_by_name():
    assert [r.name for r in RULES] == [
        "pointwise_nhwc",
        "depthwise_nhwc",
        "pointwise_vnni",
        "depthwise_int8",
        "one_reduction",
        "elementwise",
    ]
    assert rule("depthwise_nhwc") is RULES[1]
    with pytest.raises(KeyError, match="no schedule rule 'winograd'"):
        rule("winograd")
