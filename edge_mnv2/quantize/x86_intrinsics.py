"""The AVX-512 VNNI dot product (``vpdpbusd``) as a TIR tensor intrinsic that LLVM 22 accepts.

MetaSchedule's x86 rules tensorize int8 reductions with the intrinsic named ``dot_16x4_vnni`` when
the target has ``avx512vnni`` (16 int32 lanes, each += 4 uint8 x int8 products). apache-tvm 0.27
registers it calling ``llvm.x86.avx512.vpdpbusd.512`` with ``<16 x i32>`` operands, the signature of
LLVM up to 20; its own LLVM (22) declares ``<64 x i8>`` operands, so every tensorized candidate fails
LLVM's module verification ("Call parameter type does not match function signature") and tuning
silently falls back to scalar code. :func:`register` replaces the implementation under the same name,
so MetaSchedule's rules and logged traces keep working.
"""

from __future__ import annotations

VNNI_INTRIN = "dot_16x4_vnni"
LANES = 16  # int32 accumulators per instruction (output channels)
GROUP = 4  # bytes summed into each accumulator (input channels)

_registered = False


def register() -> None:
    """Register the working VNNI intrinsic (idempotent; call before tuning or applying a log)."""
    global _registered
    if _registered:
        return
    from edge_mnv2.compile.tensor_intrin import import_tensor_intrinsics

    import_tensor_intrinsics()  # the package's __init__ imports them all: the cheap way, first
    from tvm.s_tir import TensorIntrin
    from tvm.s_tir.tensor_intrin.x86 import dot_product_16x4_u8i8i32_desc
    from tvm.script import tirx as T
    from tvm.target import codegen

    if codegen.llvm_version_major() < 21:  # TVM's own implementation is right for older LLVMs
        _registered = True
        return

    @T.prim_func(s_tir=True)
    def dot_product_16x4_u8i8i32_vnni(
        A: T.Buffer((4,), "uint8", offset_factor=1),
        B: T.Buffer((16, 4), "int8", offset_factor=1),
        C: T.Buffer((16,), "int32", offset_factor=1),
    ) -> None:
        with T.sblock("root"):
            T.reads(C[0:16], A[0:4], B[0:16, 0:4])
            T.writes(C[0:16])
            a_u8x4 = A.vload([0], "uint8x4")
            a_u8x64 = T.reinterpret(T.broadcast(T.reinterpret(a_u8x4, dtype="int32"), 16), dtype="uint8x64")
            b_i8x64 = B.vload([0, 0], dtype="int8x64")
            c_i32x16 = C.vload([0], dtype="int32x16")
            C[T.ramp(T.int32(0), 1, 16)] = T.call_llvm_pure_intrin(
                T.llvm_lookup_intrinsic_id("llvm.x86.avx512.vpdpbusd.512"), c_i32x16, a_u8x64, b_i8x64, dtype="int32x16"
            )

    TensorIntrin.register(VNNI_INTRIN, dot_product_16x4_u8i8i32_desc, dot_product_16x4_u8i8i32_vnni, override=True)
    _registered = True


def has_vnni(target) -> bool:
    """Whether a TVM LLVM target has AVX-512 VNNI (what MetaSchedule checks to use the intrinsic)."""
    from tvm.target import codegen

    if target.kind.name != "llvm":
        return False
    try:
        return bool(codegen.target_has_features("avx512vnni", target))
    except Exception:  # a cross target LLVM cannot describe (e.g. an arm triple): no VNNI
        return False
