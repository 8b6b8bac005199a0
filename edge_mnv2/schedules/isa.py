"""What a CPU target's vector unit offers a schedule: lanes, registers, cores, read from its features."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class VectorISA:
    """The vector unit a schedule is written for."""

    name: str  # avx512, avx2, neon, sse
    lanes: int  # float32 lanes of one vector register
    registers: int  # architectural vector registers
    cores: int  # threads the runtime will run (the target's num-cores)
    # a multiply-add that takes one operand as a lane of a vector register (NEON's FMLA by element): a
    # vector load of four inputs feeds four FMAs, where x86 loads (or broadcasts) each input on its own
    fma_by_lane: bool = False
    # an int8 dot-product instruction the int8 rules use: "vnni" (AVX-512 VNNI's vpdpbusd), or ""
    int8_dot: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def vector_isa(target) -> VectorISA:
    """The vector unit of a TVM llvm ``target``, from the features LLVM reports for its CPU and attributes."""
    from tvm.target import codegen

    def has(feature: str) -> bool:
        try:
            return bool(codegen.target_has_features(feature, target))
        except Exception:  # a feature name LLVM does not know for this architecture
            return False

    cores = int(target.attrs.get("num-cores", 1) or 1)
    attrs = target.export()
    if attrs.get("feature.has_asimd") or has("neon"):
        # AArch64 has 32 128-bit registers and FMLA by element; 32-bit Arm's NEON 16, and no fused
        # multiply-add by scalar
        aarch64 = bool(attrs.get("feature.is_aarch64"))
        return VectorISA("neon", 4, 32 if aarch64 else 16, cores, fma_by_lane=aarch64)
    if has("avx512f"):
        return VectorISA("avx512", 16, 32, cores, int8_dot="vnni" if has("avx512vnni") else "")
    if has("avx2"):
        return VectorISA("avx2", 8, 16, cores)
    return VectorISA("sse", 4, 16, cores)
