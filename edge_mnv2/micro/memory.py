"""What a generated model takes on a board: flash (code + weights) and RAM (arena + stack + I/O).

:func:`check_fits` runs before the firmware is built, from the generated model alone, so a model that
cannot fit fails at once with both figures; :func:`memory_report` gives the exact figures of a built
firmware image (its ELF sections), split into what the model and the firmware take.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from edge_mnv2.errors import FirmwareTooLargeError
from edge_mnv2.micro.board import BoardConfig
from edge_mnv2.micro.emit import ModelSources


def _kib(n: int) -> str:
    return f"{n / 1024:,.1f} KiB" if n < 1 << 20 else f"{n / (1 << 20):,.2f} MiB"


# The int8 kernels' RAM savings (edge_mnv2.micro.int8_plan.memory_savings), as the report words them.
SAVINGS = {
    "input_quantized_in_place": "image quantized in place (no float input)",
    "in_place_depthwise_and_add": "in-place depthwise and residual adds",
    "row_streamed_expansions": "expansions streamed by rows into the depthwise ring",
}


@dataclass(frozen=True)
class MemoryReport:
    """Flash and RAM of a firmware image, in bytes."""

    flash_code: int  # .text (kernels, executor, firmware runtime, libc)
    flash_weights: int  # the model's constant blob
    flash_other: int  # other read-only data and the .data load image
    flash_total: int
    flash_available: int
    ram_arena: int  # activations, liveness-planned
    ram_io: int  # the model input/output float buffers and the uint8 image buffer
    ram_stack: int  # reserved stack
    ram_other: int  # the firmware's own .data/.bss
    ram_total: int
    ram_available: int
    max_stack_frame: int | None = None  # the largest single frame gcc reported (-fstack-usage)
    savings: dict | None = None  # bytes of RAM each saving of the int8 kernels gave

    def to_dict(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        """The report as text, one line for flash and one for RAM."""
        return [
            f"flash {_kib(self.flash_total)} of {_kib(self.flash_available)}: code {_kib(self.flash_code)}, "
            f"weights {_kib(self.flash_weights)}, other {_kib(self.flash_other)}",
            f"RAM   {_kib(self.ram_total)} of {_kib(self.ram_available)}: arena {_kib(self.ram_arena)}, "
            f"I/O buffers {_kib(self.ram_io)}, stack {_kib(self.ram_stack)}, other {_kib(self.ram_other)}",
        ] + (
            [f"RAM saved: {', '.join(f'{SAVINGS[k]} {_kib(v)}' for k, v in self.savings.items())}"]
            if self.savings
            else []
        )


def io_bytes(sources: ModelSources) -> int:
    return sources.input_bytes + sources.output_bytes + sources.image_bytes


def check_fits(sources: ModelSources, board: BoardConfig, model: str) -> None:
    """Raise :class:`FirmwareTooLargeError` if the model alone cannot fit the board (before any build)."""
    flash_need = sources.weight_bytes
    ram_need = sources.arena_bytes + io_bytes(sources) + board.stack_bytes
    problems = []
    if flash_need > board.flash.size:
        problems.append(
            f"flash: at least {_kib(flash_need)} ({flash_need:,} B of weights) but the board has "
            f"{_kib(board.flash.size)} ({board.flash.size:,} B)"
        )
    if ram_need > board.ram.size:
        problems.append(
            f"RAM: at least {_kib(ram_need)} ({ram_need:,} B: arena {sources.arena_bytes:,} + "
            f"I/O {io_bytes(sources):,} + stack {board.stack_bytes:,}) but the board has "
            f"{_kib(board.ram.size)} ({board.ram.size:,} B)"
        )
    if problems:
        raise FirmwareTooLargeError(
            f"{model} does not fit {board.name}: {'; '.join(problems)}. Use a smaller model (width multiplier, "
            "resolution, fewer classes), int8, or a board with more memory",
            needs={"flash": flash_need, "ram": ram_need},
            available={"flash": board.flash.size, "ram": board.ram.size},
        )


def memory_report(sources: ModelSources, build, savings: dict | None = None) -> MemoryReport:
    """The figures of a built firmware (``edge_mnv2.micro.firmware.FirmwareBuild``)."""
    sizes, board = build.sizes, build.board
    io = io_bytes(sources)
    flash_total = sizes["text"] + sizes["rodata"] + sizes["data"]
    ram_total = sizes["data"] + sizes["bss"] + sizes["stack"]
    frame = build.max_stack_frame
    return MemoryReport(
        flash_code=sizes["text"],
        flash_weights=sources.weight_bytes,
        flash_other=flash_total - sizes["text"] - sources.weight_bytes,
        flash_total=flash_total,
        flash_available=board.flash.size,
        ram_arena=sources.arena_bytes,
        ram_io=io,
        ram_stack=sizes["stack"],
        ram_other=ram_total - sources.arena_bytes - io - sizes["stack"],
        ram_total=ram_total,
        ram_available=board.ram.size,
        max_stack_frame=frame.bytes if frame else None,
        savings=savings,
    )
