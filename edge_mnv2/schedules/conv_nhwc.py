"""Hand-written schedules of the family's two convolutions in channels-last (NHWC) layout, with their
epilogues (bias, ReLU6, residual add) fused: the depthwise 3x3 and the pointwise 1x1.

MetaSchedule's CPU search space tiles a channels-last depthwise convolution as it tiles any reduction:
the 3x3 window is split and reordered with the spatial loops, the padded input goes to a buffer of its
own and the result to another before the bias and ReLU6, and vectors run 8 lanes at most. Its best
schedule for ``mobilenet_v2_1.0_224``'s 56x56x144 depthwise layer, 3000 trials in, ran 0.15 ms warm on a
Zen 4; ``depthwise_nhwc`` (padding read in place, vectors of channels accumulating a row segment of
outputs in registers, the epilogue applied per tile) ran 0.07 ms. ``pointwise_nhwc`` does the same for
the 1x1 convolutions: a register tile of a few output pixels by a few vectors of output channels
accumulates over the input channels, and the epilogue runs on the tile.

Both are used twice: as default schedules, with tiles chosen from the target's vector unit
(:mod:`edge_mnv2.schedules.rules`), and as tuning candidates measured beside MetaSchedule's own
(:mod:`edge_mnv2.tuning.library`). Each raises :class:`DoesNotFit` for a kernel it is not written for.
"""

from __future__ import annotations


class DoesNotFit(Exception):
    """The kernel is not what the schedule is written for."""


def _blocks(sch) -> list[str]:
    return [sch.get(b).name_hint for b in sch.get_child_blocks(sch.get_sblock("root"))]


def _largest_divisor(extent: int, at_most: int) -> int:
    return max(d for d in range(1, min(extent, at_most) + 1) if extent % d == 0)


def _conv_with_epilogue(sch, prefix: str, accumulator: str = "float32", pad: str = "pad_temp"):
    """The task's one convolution block named ``prefix...`` (accumulating in ``accumulator``), its
    producer (the padding block ``pad``) inlined into it and its elementwise epilogue (bias, clip,
    residual add; an int8 build's requantization) into the last block; (conv block, its loops, the last
    block's name or None)."""
    names = _blocks(sch)
    convs = [n for n in names if n.startswith(prefix)]
    if len(convs) != 1:
        raise DoesNotFit(f"no {prefix} block")
    conv = sch.get_sblock(convs[0])
    if str(sch.get(conv).writes[0].source.dtype) != accumulator:
        raise DoesNotFit(f"not a {accumulator} convolution")
    before = names[: names.index(convs[0])]
    after = names[names.index(convs[0]) + 1 :]
    if before not in ([], [pad]):
        raise DoesNotFit(f"unexpected producers {before}")
    if before:
        sch.compute_inline(sch.get_sblock(pad))
    for name in after[:-1]:  # bias, clip: one elementwise block at the end
        sch.compute_inline(sch.get_sblock(name))
    return conv, sch.get_loops(conv), (after[-1] if after else None)


def depthwise_nhwc(
    mod, row_tile: int, channel_tile: int, parallel_tiles: bool = False, lanes: int = 8, integer: bool = False
):
    """A channels-last depthwise convolution (any stride, padding read in place) with an elementwise
    epilogue: each thread takes output rows (or row segments), each segment of up to ``row_tile`` pixels
    by up to ``channel_tile`` channels (the largest that divide the row and the channels, in whole
    ``lanes``-wide vectors) accumulates in registers over the window, then the epilogue writes it.
    ``integer``: an int8 build's depthwise convolution (int8 x int8 summed in int32 lanes, requantized)."""
    from tvm import s_tir

    sch = s_tir.Schedule(mod)
    if integer:
        conv, loops, last = _conv_with_epilogue(sch, "depthwise_conv2d_nhwc", "int32", "PadInput")
        if len(loops) != 6:
            raise DoesNotFit("not an int8 depthwise convolution")
        loops = [*loops, sch.add_unit_loop(loops[-1])]  # the group's one input channel, as the float kernel has
    else:
        conv, loops, last = _conv_with_epilogue(sch, "group_conv2d_nhwc")
    if len(loops) != 7 or sch.get(loops[6]).extent.value != 1:
        raise DoesNotFit("not depthwise (one input channel per group)")
    n, y, x, f, ry, rx, rc = loops
    width, channels = sch.get(x).extent.value, sch.get(f).extent.value
    # whole vectors (8 lanes by default: AVX2's width, half of AVX-512's) that divide the channels
    tiles = [d for d in range(lanes, channel_tile + 1, lanes) if channels % d == 0]
    if not tiles:
        raise DoesNotFit(f"{channels} channels are not a multiple of {lanes}")
    x0, x1 = sch.split(x, [None, _largest_divisor(width, row_tile)])
    f0, f1 = sch.split(f, [None, max(tiles)])
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


def pointwise_nhwc(
    mod,
    pixel_tile: int,
    channel_tile: int,
    channels_outer: bool = False,
    lanes: int | None = None,
    unroll_reduction: int = 1,
    vector_inputs: bool = False,
):
    """A channels-last 1x1 convolution with an elementwise epilogue, as a register-tiled matrix product:
    a tile of up to ``pixel_tile`` pixels of a row by up to ``channel_tile`` output channels (the largest
    that divide the row and the channels, in whole ``lanes``-wide vectors; by default 16 lanes, 8 where
    16 does not divide) sums
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
    lanes = lanes or (16 if channels % 16 == 0 else 8)
    if channels % lanes:
        raise DoesNotFit(f"{channels} channels are not a multiple of {lanes}")
    pixels = _largest_divisor(width, pixel_tile)
    if 2 * pixels < min(pixel_tile, width):
        # a 7-wide row with a tile of 6 would get 1: a tile that reuses nothing, not worth a trial
        raise ValueError(f"no tile near {pixel_tile} pixels divides a row of {width}")
    tile = max(d for d in range(lanes, max(channel_tile, lanes) + 1, lanes) if channels % d == 0)
    x0, x1 = sch.split(x, [None, pixels])
    f0, f1, f2 = sch.split(f, [None, tile // lanes, lanes])
    reduce = [rc]
    in_channels = sch.get(rc).extent.value
    if unroll_reduction > 1 and in_channels % unroll_reduction == 0:
        # input channels a few at a time: fewer loop steps, and a vector of inputs feeding FMAs by lane
        reduce = list(sch.split(rc, [None, unroll_reduction]))
    sch.reorder(*((n, f0, y, x0) if channels_outer else (n, y, x0, f0)), *reduce, x1, f1, f2)
    outer = sch.fuse(*((n, f0, y, x0) if channels_outer else (n, y, x0, f0)))
    if last:
        sch.reverse_compute_at(sch.get_sblock(last), outer)
    sch.parallel(outer)
    if vector_inputs and len(reduce) > 1:
        # the tile's inputs for a reduction step loaded as one vector per pixel; each FMA takes its
        # input channel as a lane of that vector (NEON's FMLA by element) instead of a load of its own
        cached = sch.cache_read(conv, 0, "global")  # small and "global": a stack array, not a workspace call
        sch.compute_at(cached, reduce[0])
        *_, pixel, lane = sch.get_loops(cached)
        sch.vectorize(lane)
        sch.unroll(pixel)  # constant indices only: LLVM keeps the tile's inputs in registers
    if len(reduce) > 1:
        sch.unroll(reduce[1])
    sch.unroll(x1)
    sch.unroll(f1)
    sch.vectorize(f2)
    if last:
        sch.vectorize(sch.split(sch.get_loops(sch.get_sblock(last))[-1], [None, lanes])[-1])
    sch.decompose_reduction(conv, reduce[0])
    return sch
