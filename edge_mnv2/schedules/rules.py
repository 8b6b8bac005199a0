"""The default schedule rules, by name, most specific first: each takes a kernel it is written for and
schedules it with tiles chosen from the target's vector unit, or declines it (returns None)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from edge_mnv2.schedules.conv_nhwc import DoesNotFit, depthwise_nhwc, pointwise_nhwc
from edge_mnv2.schedules.generic import elementwise, one_reduction
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
        params = self.params(isa, func)
        try:
            return self.schedule(func, **params), params
        except (DoesNotFit, ValueError, RuntimeError, IndexError):   # RuntimeError: TVM's ScheduleError
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


def _pointwise_params(isa: VectorISA, func) -> dict:
    shape = _output_shape(func)
    lanes = _lanes_for(shape[-1], isa)
    # accumulators (pixels x vectors) plus the weight vectors and a broadcast input must fit the registers
    vectors = 2 if lanes >= 8 else 4
    pixels = max(2, min(8, (isa.registers - vectors - 2) // vectors))
    rows = shape[1] * shape[2] if len(shape) == 4 else 1
    # two input channels a step: on the emulated Cortex-A72 6.65 M instructions for mobilenet_v2_0.35_96
    # against 7.00 M one at a time; on a Zen 4, 0.98x the latency of mobilenet_v2_1.0_224
    return {"pixel_tile": pixels, "channel_tile": vectors * lanes, "lanes": lanes, "unroll_reduction": 2,
            "channels_outer": rows <= 49}   # 7x7: few pixels, wide weights kept in cache


def _depthwise_params(isa: VectorISA, func) -> dict:
    lanes = _lanes_for(_output_shape(func)[-1], isa)
    return {"row_tile": 8 if isa.registers >= 32 else 4, "channel_tile": 2 * lanes, "lanes": lanes}


def _pointwise_any_row(func, **params):
    """``pointwise_nhwc``, with a smaller pixel tile when no tile near the chosen one divides the row."""
    try:
        return pointwise_nhwc(func, **params)
    except ValueError:
        return pointwise_nhwc(func, **dict(params, pixel_tile=max(2, params["pixel_tile"] // 2)))


RULES: tuple[Rule, ...] = (
    Rule("pointwise_nhwc", _pointwise_any_row, _pointwise_params),
    Rule("depthwise_nhwc", depthwise_nhwc, _depthwise_params),
    Rule("one_reduction", one_reduction, lambda isa, func: {"lanes": isa.lanes, "vectors": 4}),
    Rule("elementwise", elementwise, lambda isa, func: {"lanes": isa.lanes, "cores": isa.cores}),
)


def rule(name: str) -> Rule:
    """The registered rule called ``name``."""
    for r in RULES:
        if r.name == name:
            return r
    raise KeyError(f"no schedule rule {name!r}; rules: {', '.join(r.name for r in RULES)}")
