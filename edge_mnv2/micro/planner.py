"""Static memory planning: one arena for all intermediate tensors, reused as tensors die.

Each activation lives from the call that writes it to the last call that reads it. Tensors are
placed largest first at the lowest offset that no tensor with an overlapping lifetime occupies
("greedy by size", the usual offline planner for static graphs); a kernel's inputs and its output are
live at the same step, so a kernel never writes over what it reads.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_mnv2.errors import CompileError
from edge_mnv2.micro.graph import ExecutionPlan

ALIGNMENT = 16


@dataclass(frozen=True)
class ArenaPlan:
    offsets: dict[int, int]  # activation id -> byte offset in the arena
    sizes: dict[int, int]  # activation id -> bytes
    lifetimes: dict[int, tuple[int, int]]
    arena_bytes: int
    unshared_bytes: int  # what one buffer per tensor would need

    def overlaps(self) -> list[tuple[int, int]]:
        """Pairs of tensors that are live at the same step and share bytes (empty for a valid plan)."""
        bad = []
        ids = sorted(self.offsets)
        for i, a in enumerate(ids):
            for b in ids[i + 1 :]:
                (a0, a1), (b0, b1) = self.lifetimes[a], self.lifetimes[b]
                if a0 > b1 or b0 > a1:
                    continue
                if (
                    self.offsets[a] < self.offsets[b] + self.sizes[b]
                    and self.offsets[b] < self.offsets[a] + self.sizes[a]
                ):
                    bad.append((a, b))
        return bad


def _align(n: int) -> int:
    return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


def plan_arena(plan: ExecutionPlan) -> ArenaPlan:
    """Offsets for every activation of ``plan`` in one arena."""
    lifetimes = plan.lifetimes()
    return place({tid: plan.tensors[tid].nbytes for tid in lifetimes}, lifetimes)


def place(nbytes: dict[int, int], lifetimes: dict[int, tuple[int, int]]) -> ArenaPlan:
    """Offsets for buffers of ``nbytes`` live over ``lifetimes`` (first and last step, inclusive)."""
    sizes = {tid: _align(n) for tid, n in nbytes.items()}
    placed: list[tuple[int, int, int, int]] = []  # (offset, end, first step, last step)
    offsets: dict[int, int] = {}
    for tid in sorted(sizes, key=lambda t: (-sizes[t], lifetimes[t][0])):
        first, last = lifetimes[tid]
        busy = sorted((off, end) for off, end, a, b in placed if not (a > last or first > b))
        offset = 0
        for off, end in busy:
            if offset + sizes[tid] <= off:
                break
            offset = max(offset, end)
        offsets[tid] = offset
        placed.append((offset, offset + sizes[tid], first, last))
    arena = max((off + sizes[t] for t, off in offsets.items()), default=0)
    result = ArenaPlan(offsets, sizes, dict(lifetimes), arena, sum(sizes.values()))
    if result.overlaps():
        raise CompileError(f"internal error: the arena plan overlaps live tensors {result.overlaps()[:3]}")
    return result
