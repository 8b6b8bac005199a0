"""The vector unit a schedule is written for, read from a target's features (never from CPU names)."""

import pytest

from edge_mnv2.schedules.isa import vector_isa
from edge_mnv2.targets import load_target


@pytest.mark.parametrize(
    "tvm, expected",
    [
        ({"kind": "llvm", "mcpu": "znver4", "num-cores": 2}, ("avx512", 16, 32, 2)),
        ({"kind": "llvm", "mcpu": "skylake-avx512", "num-cores": 8}, ("avx512", 16, 32, 8)),
        ({"kind": "llvm", "mcpu": "znver3", "num-cores": 2}, ("avx2", 8, 16, 2)),
        ({"kind": "llvm", "mcpu": "haswell", "num-cores": 4}, ("avx2", 8, 16, 4)),
        ({"kind": "llvm", "mcpu": "x86-64", "num-cores": 2}, ("sse", 4, 16, 2)),
    ],
)
def test_x86_vector_units(tvm, expected):
    import tvm as tvm_

    isa = vector_isa(tvm_.target.Target(tvm))
    assert (isa.name, isa.lanes, isa.registers, isa.cores) == expected


@pytest.mark.parametrize("target, registers", [("rpi4b", 32), ("rpi5", 32), ("rpi3b", 32), ("rpi3b-armv7", 16)])
def test_arm_boards_have_neon(target, registers):
    isa = vector_isa(load_target(target).tvm_target())
    assert (isa.name, isa.lanes, isa.registers, isa.cores) == ("neon", 4, registers, 4)
