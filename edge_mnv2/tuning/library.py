"""Hand-written schedules (:mod:`edge_mnv2.schedules.conv_nhwc`), measured as tuning candidates beside
MetaSchedule's own, in variants of their tiles, and the default rules' schedule of every task
(:mod:`edge_mnv2.schedules.rules`, what a build with zero trials runs), so that a search starts from the
defaults: its first population is drawn from the best records, and ``compile`` takes a searched schedule
over the default only where it measured faster.

Each schedule of the library is a function that schedules a task's module, or says it does not fit;
``tune`` (:mod:`edge_mnv2.tuning.run`) measures each fitting variant with the log's own builder and runner
and commits it as a record, so ``compile`` picks it only where it measured fastest, and the log keeps it.
In a prepacked log, MetaSchedule's layout rewrite stores the pointwise weights in the order the tile walks
them. Measured in
one batch with the search's best of a 1803-trial log on Zen 5, ``pointwise_nhwc`` won on most of the 1x1
layers (the 56x56 24->144 expansion 0.22 -> 0.09 ms, the 7x7 160->960 0.13 -> 0.08) and lost on a few,
where the search's record stays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from edge_mnv2.schedules.conv_nhwc import DoesNotFit, depthwise_nhwc, pointwise_nhwc
from edge_mnv2.schedules.isa import vector_isa
from edge_mnv2.schedules.rules import first_fitting
from edge_mnv2.tuning.database import top_records
from edge_mnv2.tuning.seed import measure_tasks

__all__ = [
    "DoesNotFit",
    "HandSchedule",
    "LIBRARY",
    "candidates",
    "depthwise_nhwc",
    "measure_library",
    "pending",
    "pointwise_nhwc",
    "versions",
]

LIBRARY_KEY = "schedule_library"  # tuning.json: {schedule name: version} measured into the log


@dataclass(frozen=True)
class HandSchedule:
    """A named, versioned schedule and its variants (keyword arguments of ``apply``)."""

    name: str
    version: int
    apply: Callable
    variants: tuple[dict, ...]
    takes_target: bool = False  # ``apply(mod, target=..., **variant)``: parameters from the target's ISA


def default_rule(mod, target):
    """The schedule the first fitting default rule gives the task ``mod`` on ``target``: the one a
    zero-trial build compiles."""
    func = mod["main"] if hasattr(mod, "functions_items") else mod
    found = first_fitting(func, vector_isa(target))
    if found is None:
        raise DoesNotFit("no default rule fits this kernel")
    return found[1][0]


LIBRARY: tuple[HandSchedule, ...] = (
    HandSchedule("default_rules", 1, default_rule, (dict(),), takes_target=True),
    HandSchedule(
        "depthwise_nhwc",
        1,
        depthwise_nhwc,
        (
            dict(row_tile=8, channel_tile=16),
            dict(row_tile=4, channel_tile=16),
            dict(row_tile=8, channel_tile=32),
            dict(row_tile=4, channel_tile=16, parallel_tiles=True),
        ),
    ),
    HandSchedule(
        "pointwise_nhwc",
        1,
        pointwise_nhwc,
        (
            dict(pixel_tile=8, channel_tile=32),
            dict(pixel_tile=8, channel_tile=48),
            dict(pixel_tile=12, channel_tile=32),
            dict(pixel_tile=14, channel_tile=32),
            dict(pixel_tile=6, channel_tile=64),
            dict(pixel_tile=8, channel_tile=48, channels_outer=True),
            dict(pixel_tile=6, channel_tile=64, channels_outer=True),
            dict(pixel_tile=4, channel_tile=64, channels_outer=True),
        ),
    ),
)


def candidates(mod, postprocs, library=LIBRARY, target=None) -> list:
    """Every variant of every library schedule that fits the task ``mod``, as schedules with this run's
    MetaSchedule postprocessors applied (they repack the weights where the log prepacks them). Schedules
    that need the target's ISA (the default rules) are left out when ``target`` is None."""
    out, seen = [], set()
    for hand in library:
        if hand.takes_target and target is None:
            continue
        for variant in hand.variants:
            try:
                sch = hand.apply(mod, target=target, **variant) if hand.takes_target else hand.apply(mod, **variant)
                if str(sch.trace) in seen:  # variants whose tiles came out the same on this task
                    continue
                seen.add(str(sch.trace))
                sch.enter_postproc()
                if all(p.apply(sch) for p in postprocs):
                    out.append(sch)
            except DoesNotFit:
                break  # the task's structure decides; the variants would not fit either
            except (RuntimeError, ValueError):  # a ScheduleError: this variant does not apply
                continue
    return out


def measure_library(database, tasks, tvm_target, device: str, builder, runner, library=LIBRARY) -> int:
    """Measure the library's fitting schedules of every task with the log's builder and runner, and
    commit each as a record of ``database`` (a task's as soon as they are measured), leaving out those
    the database already holds (a run killed while measuring goes on where it stopped). Returns records
    committed."""

    def unmeasured(mod, postprocs, hands):
        held = {str(r.trace) for r in top_records(database, mod, 1 << 30)}
        return [s for s in candidates(mod, postprocs, hands, tvm_target) if str(s.trace) not in held]

    return measure_tasks(
        database,
        [(task, library) for task in tasks],
        "  hand-written schedules",
        unmeasured,
        tvm_target,
        device,
        builder,
        runner,
    )


def pending(measured: dict | None, library=LIBRARY) -> tuple[HandSchedule, ...]:
    """The library's schedules that a log whose ``tuning.json`` lists ``measured`` (name: version) has
    not measured at their current version."""
    return tuple(hand for hand in library if (measured or {}).get(hand.name) != hand.version)


def versions(library=LIBRARY) -> dict[str, int]:
    """The library's schedules by name and version, as ``tuning.json`` records them."""
    return {hand.name: hand.version for hand in library}
