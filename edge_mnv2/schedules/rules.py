"""The default schedule rules, by name, most specific first: each takes a kernel it is written for and
schedules it with tiles chosen from the target's vector unit, or declines it (returns None)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from edge_mnv2.schedules.conv_nhwc import DoesNotFit, depthwise_nhwc, pointwise_nhwc
from edge_mnv2.schedules.generic import elementwise, one_reduction
from edge_mnv2.schedules.int8_vnni import pointwise_vnni
from edge_mnv2.schedules.isa import VectorISA


@dataclass(frozen=True)
class Rule:
    """A named default schedule: ``params(isa, func)`` gives its parameters for a target and a kernel,
    ``schedule(func, **params)`` applies them (raising :class:`DoesNotFit` for a kernel it is not for)."""

    name: str
    schedule: Callable
    params: Callable[[VectorISA, object], dict] = field(default=lambda isa, func: {})

    def apply(self, func, isa: VectorISA):
        """``(schedule, params)`` for ``func``, or None when this rule declines it."""
        try:
            params = self.params(isa, func)
            return self.schedule(func, **params), params
        except (DoesNotFit, ValueError, RuntimeError, IndexError):  # RuntimeError: TVM's ScheduleError
            return None


def _output_shape(func) -> list[int]:
    from tvm import s_tir

    sch = s_tir.Schedule(func)
    last = sch.get_child_blocks(sch.get_sblock("root"))[-1]
    return [int(d) for d in sch.get(last).writes[0].source.shape]


def _lanes_for(channels: int, isa: VectorISA) -> int:
    """The target's vector width, or the widest narrower one that divides the channels (24 channels on
    AVX-512: 8-lane vectors)."""
    return next((v for v in (isa.lanes, 8, 4) if v <= isa.lanes and channels % v == 0), isa.lanes)


def _pointwise_tile(isa: VectorISA, width: int, channels: int, lanes: int, unroll: int) -> tuple[int, int]:
    """(pixels, vectors) of the register tile: the pixels a divisor of the row (no remainder loop), the
    channels whole vectors that divide the output channels, and the tile's registers within the
    target's. Among those, the tile with the fewest instructions per multiply-add by a count of one
    reduction step: the input loads (one per pixel, or one vector per pixel for ``unroll`` steps where
    FMAs take their input as a lane), a load per pair of weight vectors, the loop's own steps shared by
    the unrolled reduction. On mobilenet_v2_1.0_224's 14- and 7-pixel rows this takes 7 pixels by 3
    vectors where 4 vectors left a tile of 2 pixels (or none)."""
    most_vectors = 4 if lanes < 8 else 2
    best = None
    for vectors in range(most_vectors, 0, -1):
        if channels % (vectors * lanes):
            continue
        for pixels in range(1, min(width, 8) + 1):
            if width % pixels:
                continue
            if isa.fma_by_lane:  # accumulators, the pixels' input vectors and the weights in registers
                fits = pixels * vectors + pixels + vectors <= isa.registers
                inputs = pixels / unroll
            else:  # accumulators in three quarters of the registers (on the emulated Cortex-A72 a
                fits = pixels * vectors <= isa.registers * 3 // 4  # tile of 28 spilled, doubling loads)
                inputs = pixels
            if not fits:
                continue
            fmas = pixels * vectors
            cost = (fmas + inputs + (vectors + 1) // 2 + 3 / unroll) / fmas
            if best is None or cost < best[0] - 1e-9:
                best = (cost, pixels, vectors)
    return (best[1], best[2]) if best else (2, 1)


def _pointwise_params(isa: VectorISA, func) -> dict:
    shape = _output_shape(func)
    lanes = _lanes_for(shape[-1], isa)
    # two input channels a step: on the emulated Cortex-A72 6.65 M instructions for mobilenet_v2_0.35_96
    # against 7.00 M one at a time; on a Zen 4, 0.98x the latency of mobilenet_v2_1.0_224. Where FMAs take
    # an input lane, four: one vector load of a pixel's four inputs feeds them all
    unroll = 4 if isa.fma_by_lane else 2
    if len(shape) != 4:  # not a convolution's output: pointwise_nhwc declines it
        return {"pixel_tile": 2, "channel_tile": lanes, "lanes": lanes}
    pixels, vectors = _pointwise_tile(isa, shape[2], shape[3], lanes, unroll)
    params = {
        "pixel_tile": pixels,
        "channel_tile": vectors * lanes,
        "lanes": lanes,
        "unroll_reduction": unroll,
        "channels_outer": shape[1] * shape[2] <= 49,
    }  # 7x7: few pixels, wide weights kept in cache
    if isa.fma_by_lane:
        params["vector_inputs"] = True
    return params


def _depthwise_params(isa: VectorISA, func) -> dict:
    lanes = _lanes_for(_output_shape(func)[-1], isa)
    return {"row_tile": 8 if isa.registers >= 32 else 4, "channel_tile": 2 * lanes, "lanes": lanes}


def _vnni_params(isa: VectorISA, func) -> dict:
    if isa.int8_dot != "vnni":
        raise DoesNotFit("the target has no AVX-512 VNNI")
    # accumulators in three quarters of the registers, as the float tiles; the widest tile first
    return {"pixel_tile": 7, "vectors": 3}


RULES: tuple[Rule, ...] = (
    Rule("pointwise_nhwc", pointwise_nhwc, _pointwise_params),
    Rule("depthwise_nhwc", depthwise_nhwc, _depthwise_params),
    Rule("pointwise_vnni", pointwise_vnni, _vnni_params),
    Rule("depthwise_int8", depthwise_nhwc, lambda isa, func: {**_depthwise_params(isa, func), "integer": True}),
    Rule("one_reduction", one_reduction, lambda isa, func: {"lanes": isa.lanes, "vectors": 4}),
    Rule("elementwise", elementwise, lambda isa, func: {"lanes": isa.lanes, "cores": isa.cores}),
)


def rule(name: str) -> Rule:
    """The registered rule called ``name``."""
    for r in RULES:
        if r.name == name:
            return r
    raise KeyError(f"no schedule rule {name!r}; rules: {', '.join(r.name for r in RULES)}")


def first_fitting(func, isa: VectorISA, rules: tuple[Rule, ...] = RULES):
    """``(rule, (schedule, params))`` of the first of ``rules`` that takes ``func``, or None."""
    return next(((r, result) for r in rules if (result := r.apply(func, isa)) is not None), None)
