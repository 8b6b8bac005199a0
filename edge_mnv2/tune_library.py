"""Hand-written schedules, measured as tuning candidates beside MetaSchedule's own.

MetaSchedule's CPU search space tiles a channels-last depthwise convolution as it tiles any reduction:
the 3x3 window is split and reordered with the spatial loops, the padded input goes to a buffer of its
own and the result to another before the bias and ReLU6, and vectors run 8 lanes at most. Its best
schedule for ``mobilenet_v2_1.0_224``'s 56x56x144 depthwise layer, 3000 trials in, ran 0.15 ms warm;
the schedule here (padding read in place, 16-channel vectors accumulating a row segment of outputs in
registers, the epilogue applied per tile) ran 0.07 ms. Each schedule of the library is a function that
schedules a task's module, or says it does not fit; ``tune`` measures each fitting variant with the
log's own builder and runner and commits it as a record, so ``compile`` picks it only where it measured
fastest, and the log keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from edge_mnv2.tune_seed import measure_tasks

LIBRARY_KEY = "schedule_library"   # tuning.json: {schedule name: version} measured into the log


class DoesNotFit(Exception):
    """The task is not what the schedule is written for."""


@dataclass(frozen=True)
class HandSchedule:
    """A named, versioned schedule and its variants (keyword arguments of ``apply``)."""
    name: str
    version: int
    apply: Callable
    variants: tuple[dict, ...]


def _blocks(sch) -> list[str]:
    return [sch.get(b).name_hint for b in sch.get_child_blocks(sch.get_sblock("root"))]


def _largest_divisor(extent: int, at_most: int) -> int:
    return max(d for d in range(1, min(extent, at_most) + 1) if extent % d == 0)


def depthwise_nhwc(mod, row_tile: int, channel_tile: int, parallel_tiles: bool = False):
    """A channels-last depthwise convolution (any stride, padding read in place) with an elementwise
    epilogue: each thread takes output rows (or row segments), each segment of up to ``row_tile`` pixels
    by up to ``channel_tile`` channels (the largest that divide the row and the channels, in whole
    8-lane vectors) accumulates in registers over the window, then the epilogue writes it."""
    from tvm import s_tir

    sch = s_tir.Schedule(mod)
    names = _blocks(sch)
    convs = [n for n in names if n.startswith("group_conv2d_nhwc")]
    if len(convs) != 1:
        raise DoesNotFit("no channels-last group convolution")
    conv = sch.get_sblock(convs[0])
    loops = sch.get_loops(conv)
    if len(loops) != 7 or sch.get(loops[6]).extent.value != 1:
        raise DoesNotFit("not depthwise (one input channel per group)")
    before = names[:names.index(convs[0])]
    after = names[names.index(convs[0]) + 1:]
    if before not in ([], ["pad_temp"]):
        raise DoesNotFit(f"unexpected producers {before}")
    if before:
        sch.compute_inline(sch.get_sblock("pad_temp"))
    for name in after[:-1]:   # bias, clip: one elementwise block at the end
        sch.compute_inline(sch.get_sblock(name))
    n, y, x, f, ry, rx, rc = loops
    width, channels = sch.get(x).extent.value, sch.get(f).extent.value
    # whole vectors of 8 lanes (AVX2's width, half of AVX-512's) that divide the channels
    lanes = [d for d in range(8, channel_tile + 1, 8) if channels % d == 0]
    if not lanes:
        raise DoesNotFit(f"{channels} channels are not a multiple of 8")
    x0, x1 = sch.split(x, [None, _largest_divisor(width, row_tile)])
    f0, f1 = sch.split(f, [None, max(lanes)])
    sch.reorder(n, y, x0, f0, rc, ry, rx, x1, f1)
    if after:
        sch.reverse_compute_at(sch.get_sblock(after[-1]), f0)
    sch.parallel(sch.fuse(n, y, x0) if parallel_tiles else sch.fuse(n, y))
    sch.vectorize(f1)
    sch.unroll(x1)
    if after:
        sch.vectorize(sch.get_loops(sch.get_sblock(after[-1]))[-1])
    sch.decompose_reduction(conv, rc)
    return sch


LIBRARY: tuple[HandSchedule, ...] = (
    HandSchedule("depthwise_nhwc", 1, depthwise_nhwc, (
        dict(row_tile=8, channel_tile=16),
        dict(row_tile=4, channel_tile=16),
        dict(row_tile=8, channel_tile=32),
        dict(row_tile=4, channel_tile=16, parallel_tiles=True),
    )),
)


def candidates(mod, postprocs, library=LIBRARY) -> list:
    """Every variant of every library schedule that fits the task ``mod``, as schedules with this run's
    MetaSchedule postprocessors applied (they repack the weights where the log prepacks them)."""
    out, seen = [], set()
    for hand in library:
        for variant in hand.variants:
            try:
                sch = hand.apply(mod, **variant)
                if str(sch.trace) in seen:   # variants whose tiles came out the same on this task
                    continue
                seen.add(str(sch.trace))
                sch.enter_postproc()
                if all(p.apply(sch) for p in postprocs):
                    out.append(sch)
            except DoesNotFit:
                break       # the task's structure decides; the variants would not fit either
            except (RuntimeError, ValueError):   # a ScheduleError: this variant does not apply
                continue
    return out


def measure_library(database, tasks, tvm_target, device: str, builder, runner, library=LIBRARY) -> int:
    """Measure the library's fitting schedules of every task with the log's builder and runner, and
    commit each as a record of ``database`` (a task's as soon as they are measured). Returns records
    committed."""
    return measure_tasks(database, [(task, library) for task in tasks], "  hand-written schedules", candidates,
                         tvm_target, device, builder, runner)


def versions(library=LIBRARY) -> dict[str, int]:
    """The library's schedules by name and version, as ``tuning.json`` records them."""
    return {hand.name: hand.version for hand in library}
