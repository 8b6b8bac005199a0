"""The AVX-512 VNNI layout of the int8 graph: same integers as the reference, uint8 x packed int8 1x1
kernels, and a tensor intrinsic that MetaSchedule can really lower to ``vpdpbusd`` with TVM's LLVM."""

import numpy as np
import pytest

from edge_mnv2.models import get_spec
from edge_mnv2.models.weights import build_model
from edge_mnv2.quantize import KERNELS, calibration_images, kernels_for, parameter_bytes, ptq, quantized_module
from edge_mnv2.quantize.graph import layer_graph
from edge_mnv2.quantize.relax_int8 import build_module as build_generic
from edge_mnv2.quantize.relax_int8_vnni import build_module, pack_vnni, vnni_matmul

TRAINED = "mobilenet_v2_0.35_96.shapes"
ZNVER4 = {"kind": "llvm", "mcpu": "znver4", "num-cores": 2}


def local_cpu_has_vnni() -> bool:
    with open("/proc/cpuinfo") as f:
        return "avx512_vnni" in f.read()


@pytest.fixture(scope="module")
def quantized():
    spec = get_spec(TRAINED)
    layers = layer_graph(build_model(spec).eval())
    return spec, ptq.quantize(layers, ptq.calibrate(layers, calibration_images("shapes", 96, spec.preprocessing)))


def test_kernels_follow_the_target_cpu():
    import tvm

    assert set(KERNELS) == {"generic", "x86-vnni"}
    assert kernels_for(tvm.target.Target(ZNVER4)) == "x86-vnni"
    assert kernels_for(tvm.target.Target({"kind": "llvm", "mcpu": "cascadelake"})) == "x86-vnni"
    assert kernels_for(tvm.target.Target({"kind": "llvm", "mcpu": "skylake"})) == "generic"  # AVX2 only
    assert (
        kernels_for(tvm.target.Target({"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": "cortex-a72"}))
        == "generic"
    )
    assert kernels_for(tvm.target.Target("c")) == "generic"


def test_packing_puts_16_outputs_by_4_inputs_in_one_64_byte_vector():
    w = np.arange(32 * 8).reshape(32, 8).astype(np.int8)
    packed = pack_vnni(w, 32, 8)
    assert packed.shape == (2, 2, 16, 4) and packed.flags.c_contiguous
    for o in range(32):
        for i in range(8):
            assert packed[o // 16, i // 4, o % 16, i % 4] == w[o, i]


def test_vnni_module_matches_the_integer_reference_bit_for_bit(quantized):
    import tvm
    from tvm import relax

    spec, model = quantized
    mod = build_module(model, spec.input_shape)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, *spec.input_shape[1:])).astype(np.float32) * 2  # saturates some values
    vm = relax.VirtualMachine(tvm.compile(mod, target=tvm.target.Target({"kind": "llvm", "num-cores": 2})), tvm.cpu())
    got = np.concatenate([vm["main"](tvm.runtime.tensor(x[i : i + 1])).numpy() for i in range(len(x))])
    np.testing.assert_array_equal(got, ptq.run_integer(model, x))


def test_vnni_layout_stores_uint8_activations_int8_packed_weights_and_no_padding(quantized):
    from edge_mnv2.micro.graph import build_plan
    from edge_mnv2.micro.lowering import fused_module

    spec, model = quantized
    mod = build_module(model, spec.input_shape)
    plan = build_plan(fused_module(mod))
    activations = [t for t in plan.tensors if t.kind == "activation"]
    assert len(activations) > 50 and all(t.dtype == "uint8" for t in activations[:-3])
    assert all(
        t.shape[0] == 1 and t.shape[-1] in (3, 16, 8, 48, 96, 144, 24, 192, 32, 336, 56, 112, 1280)
        for t in activations[:-3]
    )  # NHWC, real widths
    packed = [plan.tensors[t] for t in plan.constants if plan.tensors[t].shape[-2:] == (16, 4)]
    assert len(packed) >= 20 and all(t.dtype == "int8" for t in packed)
    # nothing padded: the artifact stores the generic layout's parameter bytes, plus the calibrated
    # scalars it reads from memory (rounding + shift per requantization, the residual multipliers,
    # the pool's multiplier and the input scale)
    from edge_mnv2.quantize.ptq import QAdd, QConv, QPool

    count = {kind: sum(isinstance(layer, kind) for layer in model.layers) for kind in (QConv, QAdd, QPool)}
    scalars = 16 * count[QConv] + 32 * count[QAdd] + 20 * count[QPool] + 4
    assert parameter_bytes(mod) == parameter_bytes(build_generic(model, spec.input_shape)) + scalars


def test_quantized_module_records_the_layout_and_its_stored_bytes(tmp_path):
    from edge_mnv2.export import export_onnx

    spec = get_spec(TRAINED)
    meta = export_onnx(TRAINED, tmp_path / "model.onnx").metadata
    mod, info, _ = quantized_module(meta, "int8", None, spec.input_shape, kernels="x86-vnni")
    assert info["kernels"] == "x86-vnni" and info["stored_bytes"] == parameter_bytes(mod)
    assert info["stored_ratio"] <= 0.30


def _tensorized_pointwise(target):
    """One 1x1 kernel of the model's shape, scheduled by MetaSchedule's x86 rules with tensorization
    and built. Some sampled schedules vectorize a loop around the intrinsic, which TVM cannot build
    (tuning discards those candidates), so a few seeds are tried."""
    import tvm
    from tvm import te
    from tvm.s_tir import meta_schedule as ms

    x = te.placeholder((1, 12, 12, 32), "uint8", name="x")
    w = te.placeholder((192 // 16, 32 // 4, 16, 4), "int8", name="w")
    mod = tvm.IRModule({"main": te.create_prim_func([x, w, vnni_matmul(x, w)])})
    tensorized = 0
    for seed in range(16):
        context = ms.TuneContext(
            mod=mod,
            target=target,
            space_generator="post-order-apply",
            search_strategy="evolutionary",
            task_name="pointwise",
            rand_state=seed,
        )
        for space in context.space_generator.generate_design_space(mod):
            sch = space.copy()
            if "dot_16x4_vnni" not in str(sch.trace) or not all(
                postproc.apply(sch) for postproc in context.space_generator.postprocs
            ):
                continue
            tensorized += 1
            try:
                return tvm.compile(sch.mod, target=target)
            except tvm.error.InternalError:
                continue
    raise AssertionError(f"none of {tensorized} tensorized schedules MetaSchedule offered could be built")


def test_metaschedule_tensorizes_pointwise_kernels_into_vpdpbusd():
    import tvm

    from edge_mnv2.quantize.x86_intrinsics import register

    register()
    target = tvm.target.Target(ZNVER4)
    executable = _tensorized_pointwise(target)  # with TVM's own intrinsic, LLVM rejects every one
    module = getattr(executable, "mod", executable)
    assert "vpdpbusd" in module.inspect_source("asm")
    if not local_cpu_has_vnni():
        pytest.skip("this CPU has no AVX-512 VNNI to run the kernel")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (1, 12, 12, 32)).astype(np.uint8)
    w = rng.integers(-127, 128, (192, 32)).astype(np.int8)
    out = tvm.runtime.tensor(np.zeros((1, 12, 12, 192), np.int32))
    module["main"](tvm.runtime.tensor(x), tvm.runtime.tensor(pack_vnni(w, 192, 32)), out)
    np.testing.assert_array_equal(out.numpy(), np.einsum("nhwi,oi->nhwo", x.astype(np.int64), w.astype(np.int64)))


def test_kernels_do_not_depend_on_the_calibration_so_a_tuning_log_survives_recalibrating():
    from tvm_ffi import structural_hash

    from edge_mnv2.targets import load_target
    from edge_mnv2.tuning.database import extract_tasks

    spec = get_spec(TRAINED)
    layers = layer_graph(build_model(spec).eval())
    workloads, scales = [], []
    for data in ("shapes", "synthetic"):
        model = ptq.quantize(layers, ptq.calibrate(layers, calibration_images(data, 96, spec.preprocessing, 16)))
        tasks = extract_tasks(build_module(model, spec.input_shape), load_target("host").tvm_target())
        workloads.append(sorted(structural_hash(t.dispatched[0]) for t in tasks))
        scales.append(model.scales)
    assert scales[0] != scales[1]  # the calibrations differ...
    assert workloads[0] == workloads[1]  # ...the kernels do not
    assert len(workloads[0]) < 40  # layers of one shape share a kernel (52 convolutions)
