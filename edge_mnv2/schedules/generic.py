"""Schedules for the kernels that are neither a pointwise nor a depthwise convolution: any kernel with
one reduction (the stem convolution, the classifier's matmul, pooling, the heads' convolutions), and
elementwise or data-movement kernels (transposes, concatenation, resize, padding).

Both assume only what every fused kernel of a channels-last graph has: the innermost output loop is the
contiguous one, so it is the one to vectorise, and the outer loops carry enough parallel work.
"""

from __future__ import annotations

from edge_mnv2.schedules.conv_nhwc import DoesNotFit

SPATIAL, REDUCE = 0, 2  # tirx IterVar kinds


def block_names(sch) -> list[str]:
    return [sch.get(b).name_hint for b in sch.get_child_blocks(sch.get_sblock("root"))]


def _vector_tile(extent: int, lanes: int, vectors: int) -> tuple[int, int]:
    """(vector width, tile) for an innermost loop of ``extent``: whole vectors of ``lanes`` (or 4, or
    none), and up to ``vectors`` of them per tile, dividing the extent."""
    vec = next((v for v in (lanes, 8, 4) if v <= lanes and extent % v == 0), 1)
    if vec == 1 and extent <= 256:
        # no whole vectors (SSDLite's 66 = 6 anchors x 11 outputs): the whole row innermost, contiguous in
        # the weights and the accumulators, for LLVM's loop vectoriser (a dot product per channel
        # instead would stride through the weights)
        return 1, extent
    tile = vec
    while tile * 2 <= vec * vectors and extent % (tile * 2) == 0:
        tile *= 2
    return vec, tile


def _keeps_index_order(sch, block) -> bool:
    """Whether ``block`` reads its inputs of its own rank at the indices it writes (an elementwise
    epilogue, not a transpose or layout change)."""
    b = sch.get(block)
    written = [str(r.min) for r in b.writes[0].region]
    return all([str(r.min) for r in read.region] == written for read in b.reads if len(read.region) == len(written))


def one_reduction(mod, lanes: int, vectors: int = 4):
    """A kernel with exactly one reduction block: its producers (padding) and its elementwise epilogue
    inlined; the outer output loops fused and run in parallel; per iteration, a tile of up to ``vectors``
    vectors along the innermost output loop accumulates in registers over the whole reduction, then the
    epilogue writes it."""
    from tvm import s_tir

    sch = s_tir.Schedule(mod)
    names = block_names(sch)
    reductions = [n for n in names if any(iv.iter_type == REDUCE for iv in sch.get(sch.get_sblock(n)).iter_vars)]
    if len(reductions) != 1:
        raise DoesNotFit(f"{len(reductions)} reduction blocks")
    at = names.index(reductions[0])
    for name in names[:at] + names[at + 1 : -1]:
        sch.compute_inline(sch.get_sblock(name))
    last = names[-1] if at < len(names) - 1 else None
    apart = None  # a transposing epilogue (SSDLite's heads) runs after the reduction, not inside its tiles
    if last and not _keeps_index_order(sch, sch.get_sblock(last)):
        apart, last = last, None
    block = sch.get_sblock(reductions[0])
    loops = sch.get_loops(block)
    kinds = [iv.iter_type for iv in sch.get(block).iter_vars]
    if len(loops) != len(kinds) or kinds.count(SPATIAL) == 0:
        raise DoesNotFit("loops do not map one to one onto the block's iterators")
    spatial = [loop for loop, kind in zip(loops, kinds) if kind == SPATIAL]
    reduce = [loop for loop, kind in zip(loops, kinds) if kind == REDUCE]
    vec, tile = _vector_tile(sch.get(spatial[-1]).extent.value, lanes, vectors)
    f0, f1 = sch.split(spatial[-1], [None, tile])
    outer = spatial[:-1]
    sch.reorder(*outer, f0, *reduce, f1)
    if last:
        sch.reverse_compute_at(sch.get_sblock(last), f0)
    if any(sch.get(loop).extent.value > 1 for loop in outer):
        sch.parallel(sch.fuse(*outer) if len(outer) > 1 else outer[0])
    elif sch.get(f0).extent.value > 1:
        sch.parallel(f0)  # a vector output (the classifier): its tiles go to the threads
    if vec > 1:
        if tile > vec:
            unrolled, f1 = sch.split(f1, [None, vec])
            sch.unroll(unrolled)
        sch.vectorize(f1)
    sch.decompose_reduction(block, reduce[0])
    if apart:
        outer_loops = sch.get_loops(sch.get_sblock(apart))[:-1]
        if outer_loops:
            sch.parallel(sch.fuse(*outer_loops) if len(outer_loops) > 1 else outer_loops[0])
    if last and vec > 1:
        inner = sch.get_loops(sch.get_sblock(last))[-1]
        if sch.get(inner).extent.value % vec == 0:
            sch.vectorize(sch.split(inner, [None, vec])[-1])
    return sch


def elementwise(mod, lanes: int, cores: int):
    """A kernel without reduction: every block inlined into the last; its innermost loop vectorised where
    it holds whole vectors (else unrolled, when short: the 3 channels of a transposed image), the loops
    outside it fused and shared out to the threads when there is enough work."""
    from tvm import s_tir

    sch = s_tir.Schedule(mod)
    names = block_names(sch)
    if any(iv.iter_type != SPATIAL for n in names for iv in sch.get(sch.get_sblock(n)).iter_vars):
        raise DoesNotFit("has a reduction")
    for name in names[:-1]:
        sch.compute_inline(sch.get_sblock(name))
    loops = sch.get_loops(sch.get_sblock(names[-1]))
    if not loops:
        raise DoesNotFit("a scalar")
    total = 1
    for loop in loops:
        total *= sch.get(loop).extent.value
    *outer, inner = loops
    extent = sch.get(inner).extent.value
    vec = next((v for v in (lanes, 8, 4) if v <= lanes and extent % v == 0), 1)
    if vec > 1:
        rest, inner = sch.split(inner, [None, vec])
        sch.vectorize(inner)
        outer.append(rest)
    elif extent <= 16:
        sch.unroll(inner)
    else:
        outer.append(inner)
    if outer and cores > 1 and total >= 4096:  # below that, waking the threads costs more than the copy
        fused = sch.fuse(*outer) if len(outer) > 1 else outer[0]
        sch.parallel(sch.split(fused, [cores, None])[0])
    return sch
