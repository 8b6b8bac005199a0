"""The arena planner: live tensors never share bytes, and reuse makes the arena far smaller."""

import numpy as np
import pytest

from edge_mnv2.micro.graph import ACTIVATION, INPUT, OUTPUT, ExecutionPlan, KernelCall, TensorInfo
from edge_mnv2.micro.planner import ALIGNMENT, plan_arena


def chain_plan(sizes, skips=()):
    """input -> k0 -> t0 -> k1 -> t1 ... -> output, plus residual reads ``skips`` = [(producer, reader)]."""
    tensors = [TensorInfo(0, INPUT, (4,), "float32", "input")]
    calls = []
    prev = 0
    for i, n in enumerate(sizes):
        tensors.append(TensorInfo(len(tensors), ACTIVATION, (n,), "float32", f"t{i}"))
        extra = tuple(1 + p for p, reader in skips if reader == i)
        calls.append(KernelCall(f"k{i}", (prev, *extra), (len(tensors) - 1,)))
        prev = len(tensors) - 1
    tensors.append(TensorInfo(len(tensors), OUTPUT, (4,), "float32", "output"))
    calls.append(KernelCall("head", (prev,), (len(tensors) - 1,)))
    return ExecutionPlan(tensors=tensors, calls=calls, input_id=0, output_id=len(tensors) - 1)


def test_a_chain_needs_only_its_two_largest_neighbours():
    plan = chain_plan([100, 300, 200, 50])
    arena = plan_arena(plan)
    assert not arena.overlaps()
    # at most two tensors of a chain are live at once: the largest adjacent pair bounds the arena
    nbytes = [4 * n for n in (100, 300, 200, 50)]
    assert arena.arena_bytes == max(a + b for a, b in zip(nbytes, nbytes[1:]))  # 1200 + 800
    assert arena.unshared_bytes == 400 + 1200 + 800 + 208  # each rounded up to 16 bytes


def test_a_kernel_never_writes_over_its_inputs():
    plan = chain_plan([64, 64, 64, 64, 64], skips=[(0, 2), (2, 4)])  # residual connections
    arena = plan_arena(plan)
    for call in plan.calls:
        for out in call.outputs:
            for arg in call.args:
                if arg in arena.offsets and out in arena.offsets:
                    a, o = arena.offsets[arg], arena.offsets[out]
                    assert a + arena.sizes[arg] <= o or o + arena.sizes[out] <= a
    # t0 is read again by k2, so it is live across k1 and cannot share t1's bytes
    assert arena.lifetimes[1] == (0, 2)


@pytest.mark.parametrize("seed", range(20))
def test_random_graphs_never_overlap_live_tensors(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 40))
    skips = [(int(p), int(p + rng.integers(2, 6))) for p in rng.integers(0, n, size=n // 3) if p + 2 < n]
    skips = [(p, r) for p, r in skips if r < n]
    plan = chain_plan([int(s) for s in rng.integers(1, 5000, size=n)], skips)
    arena = plan_arena(plan)
    assert arena.overlaps() == []
    assert all(off % ALIGNMENT == 0 for off in arena.offsets.values())
    # never worse than one buffer per tensor, never better than the busiest step
    busiest = max(
        sum(arena.sizes[t] for t, (a, b) in arena.lifetimes.items() if a <= step <= b)
        for step in range(len(plan.calls))
    )
    assert busiest <= arena.arena_bytes <= arena.unshared_bytes
