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

``pointwise_nhwc`` does the same for the 1x1 convolutions, which hold most of the model's time: a
register tile of a few output pixels by a few 16-lane vectors of output channels accumulates over the
input channels, its weights read from the layout the tile walks them in (MetaSchedule's layout rewrite
prepacks them), and the epilogue runs on the tile. Measured in one batch with the search's best of a
1803-trial log on Zen 5, it won on most of the 1x1 layers (the 56x56 24->144 expansion 0.22 -> 0.09 ms,
the 7x7 160->960 0.13 -> 0.08) and lost on a few, where the search's record stays.
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


def _conv_with_epilogue(sch, prefix: str):
    """The task's one convolution block named ``prefix...``, its producers (padding) inlined into it and
    its elementwise epilogue (bias, clip, residual add) into the last block; (conv block, its loops,
    the last block's name or None)."""
    names = _blocks(sch)
    convs = [n for n in names if n.startswith(prefix)]
    if len(convs) != 1:
        raise DoesNotFit(f"no {prefix} block")
    conv = sch.get_sblock(convs[0])
    if str(sch.get(conv).writes[0].source.dtype) != "float32":
        raise DoesNotFit("not a float32 convolution")
    before = names[:names.index(convs[0])]
    after = names[names.index(convs[0]) + 1:]
    if before not in ([], ["pad_temp"]):
        raise DoesNotFit(f"unexpected producers {before}")
    if before:
        sch.compute_inline(sch.get_sblock("pad_temp"))
    for name in after[:-1]:   # bias, clip: one elementwise block at the end
        sch.compute_inline(sch.get_sblock(name))
    return conv, sch.get_loops(conv), (after[-1] if after else None)


def depthwise_nhwc(mod, row_tile: int, channel_tile: int, parallel_tiles: bool = False):
    """A channels-last depthwise convolution (any stride, padding read in place) with an elementwise
    epilogue: each thread takes output rows (or row segments), each segment of up to ``row_tile`` pixels
    by up to ``channel_tile`` channels (the largest that divide the row and the channels, in whole
    8-lane vectors) accumulates in registers over the window, then the epilogue writes it."""
    from tvm import s_tir

    sch = s_tir.Schedule(mod)
    conv, loops, last = _conv_with_epilogue(sch, "group_conv2d_nhwc")
    if len(loops) != 7 or sch.get(loops[6]).extent.value != 1:
        raise DoesNotFit("not depthwise (one input channel per group)")
    n, y, x, f, ry, rx, rc = loops
    width, channels = sch.get(x).extent.value, sch.get(f).extent.value
    # whole vectors of 8 lanes (AVX2's width, half of AVX-512's) that divide the channels
    lanes = [d for d in range(8, channel_tile + 1, 8) if channels % d == 0]
    if not lanes:
        raise DoesNotFit(f"{channels} channels are not a multiple of 8")
    x0, x1 = sch.split(x, [None, _largest_divisor(width, row_tile)])
    f0, f1 = sch.split(f, [None, max(lanes)])
    sch.reorder(n, y, x0, f0, rc, ry, rx, x1, f1)
    if last:
        sch.reverse_compute_at(sch.get_sblock(last), f0)
    sch.parallel(sch.fuse(n, y, x0) if parallel_tiles else sch.fuse(n, y))
    sch.vectorize(f1)
    sch.unroll(x1)
    if last:
        sch.vectorize(sch.get_loops(sch.get_sblock(last))[-1])
    sch.decompose_reduction(conv, rc)
    return sch


def pointwise_nhwc(mod, pixel_tile: int, channel_tile: int, channels_outer: bool = False):
    """A channels-last 1x1 convolution with an elementwise epilogue, as a register-tiled matrix product:
    a tile of up to ``pixel_tile`` pixels of a row by up to ``channel_tile`` output channels (the largest
    that divide the row and the channels, in whole 16-lane vectors, 8 where 16 does not divide) sums
    over the input channels in registers, then the epilogue writes it. The tiles are shared out to the
    threads row-major, or with ``channels_outer`` channel block by channel block (a block's weights then
    stay in cache over all the rows: the wide layers of few pixels)."""
    from tvm import s_tir

    sch = s_tir.Schedule(mod)
    conv, loops, last = _conv_with_epilogue(sch, "conv2d_nhwc")
    if len(loops) != 7 or any(sch.get(loop).extent.value != 1 for loop in loops[4:6]):
        raise DoesNotFit("not a 1x1 convolution")
    n, y, x, f, ry, rx, rc = loops
    width, channels = sch.get(x).extent.value, sch.get(f).extent.value
    lanes = 16 if channels % 16 == 0 else 8
    if channels % lanes:
        raise DoesNotFit(f"{channels} channels are not a multiple of 8")
    pixels = _largest_divisor(width, pixel_tile)
    if 2 * pixels < min(pixel_tile, width):
        # a 7-wide row with a tile of 6 would get 1: a tile that reuses nothing, not worth a trial
        raise ValueError(f"no tile near {pixel_tile} pixels divides a row of {width}")
    tile = max(d for d in range(lanes, max(channel_tile, lanes) + 1, lanes) if channels % d == 0)
    x0, x1 = sch.split(x, [None, pixels])
    f0, f1, f2 = sch.split(f, [None, tile // lanes, lanes])
    sch.reorder(*((n, f0, y, x0) if channels_outer else (n, y, x0, f0)), rc, x1, f1, f2)
    outer = sch.fuse(*((n, f0, y, x0) if channels_outer else (n, y, x0, f0)))
    if last:
        sch.reverse_compute_at(sch.get_sblock(last), outer)
    sch.parallel(outer)
    sch.unroll(x1)
    sch.unroll(f1)
    sch.vectorize(f2)
    if last:
        sch.vectorize(sch.split(sch.get_loops(sch.get_sblock(last))[-1], [None, lanes])[-1])
    sch.decompose_reduction(conv, rc)
    return sch


LIBRARY: tuple[HandSchedule, ...] = (
    HandSchedule("depthwise_nhwc", 1, depthwise_nhwc, (
        dict(row_tile=8, channel_tile=16),
        dict(row_tile=4, channel_tile=16),
        dict(row_tile=8, channel_tile=32),
        dict(row_tile=4, channel_tile=16, parallel_tiles=True),
    )),
    HandSchedule("pointwise_nhwc", 1, pointwise_nhwc, (
        dict(pixel_tile=8, channel_tile=32),
        dict(pixel_tile=8, channel_tile=48),
        dict(pixel_tile=12, channel_tile=32),
        dict(pixel_tile=14, channel_tile=32),
        dict(pixel_tile=6, channel_tile=64),
        dict(pixel_tile=8, channel_tile=48, channels_outer=True),
        dict(pixel_tile=6, channel_tile=64, channels_outer=True),
        dict(pixel_tile=4, channel_tile=64, channels_outer=True),
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
    commit each as a record of ``database`` (a task's as soon as they are measured), leaving out those
    the database already holds (a run killed while measuring goes on where it stopped). Returns records
    committed."""
    def unmeasured(mod, postprocs, hands):
        from edge_mnv2.tune import top_records

        held = {str(r.trace) for r in top_records(database, mod, 1 << 30)}
        return [s for s in candidates(mod, postprocs, hands) if str(s.trace) not in held]

    return measure_tasks(database, [(task, library) for task in tasks], "  hand-written schedules", unmeasured,
                         tvm_target, device, builder, runner)


def pending(measured: dict | None, library=LIBRARY) -> tuple[HandSchedule, ...]:
    """The library's schedules that a log whose ``tuning.json`` lists ``measured`` (name: version) has
    not measured at their current version."""
    return tuple(hand for hand in library if (measured or {}).get(hand.name) != hand.version)


def versions(library=LIBRARY) -> dict[str, int]:
    """The library's schedules by name and version, as ``tuning.json`` records them."""
    return {hand.name: hand.version for hand in library}
