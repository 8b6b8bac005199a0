"""Firmware projects: the firmware sources plus a model directory, built with arm-none-eabi-gcc.

:func:`build_firmware` writes a self-contained project (``Makefile``, ``src/``, ``boards/``,
``model/``, and ``board.mk`` with the board's settings) that a user can rebuild with ``make``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from edge_mnv2.errors import FirmwareBuildError, FirmwareTooLargeError
from edge_mnv2.micro.board import BoardConfig, board_config
from edge_mnv2.resources import FIRMWARE_ENV, data_dir
from edge_mnv2.targets import TargetSpec

GCC = "arm-none-eabi-gcc"
SIZE = "arm-none-eabi-size"
_OVERFLOW = re.compile(r"region `(\w+)' overflowed by (\d+) bytes")


def firmware_dir() -> Path:
    """The firmware sources (``$EDGE_MNV2_FIRMWARE``, else the project's ``firmware/``: see
    :mod:`edge_mnv2.resources`)."""
    return data_dir("firmware")


@dataclass(frozen=True)
class StackFrame:
    """One function's stack frame from gcc's -fstack-usage."""

    function: str
    bytes: int
    kind: str  # static, dynamic, "dynamic,bounded"


@dataclass(frozen=True)
class FirmwareBuild:
    """A built firmware project and what it takes on the board."""

    project_dir: Path
    board: BoardConfig
    elf: Path
    bin: Path
    hex: Path
    map: Path
    sizes: dict[str, int]  # text, rodata, data, bss, stack (reserved) in bytes
    stack_frames: list[StackFrame] = field(default_factory=list)  # largest first

    @property
    def max_stack_frame(self) -> StackFrame | None:
        """The largest single stack frame (a lower bound on the stack the deepest call needs)."""
        return self.stack_frames[0] if self.stack_frames else None

    @property
    def flash_bytes(self) -> int:
        """Flash used: code, constants (weights) and the .data load image."""
        return self.sizes["text"] + self.sizes["rodata"] + self.sizes["data"]

    @property
    def ram_bytes(self) -> int:
        """RAM used: .data, .bss (arena, I/O buffers) and the reserved stack."""
        return self.sizes["data"] + self.sizes["bss"] + self.sizes["stack"]


def _check_toolchain() -> None:
    missing = [t for t in (GCC, SIZE, "make") if shutil.which(t) is None]
    if missing:
        raise FirmwareBuildError(
            f"{', '.join(missing)} not found: install the Arm GNU toolchain and make (Debian: "
            "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi make)"
        )


def write_project(model_dir: Path, target: TargetSpec, project_dir: Path) -> BoardConfig:
    """Copy the firmware sources and the model into ``project_dir`` and write its board.mk."""
    model_dir = Path(model_dir)
    if not (model_dir / "model.h").is_file():
        raise FirmwareBuildError(
            f"model directory {str(model_dir)!r} has no model.h; generate the model's C code first"
        )
    board = board_config(target)
    src = firmware_dir()
    if not (src / "Makefile").is_file():
        raise FirmwareBuildError(
            f"firmware sources not found in {str(src)!r}; set ${FIRMWARE_ENV} to the project's firmware/ folder"
        )
    project_dir = Path(project_dir)
    project_dir.mkdir(parents=True, exist_ok=True)
    for name in ("src", "boards", "model", "build"):
        shutil.rmtree(project_dir / name, ignore_errors=True)
    shutil.copy(src / "Makefile", project_dir / "Makefile")
    shutil.copytree(src / "src", project_dir / "src")
    shutil.copytree(src / "boards", project_dir / "boards")
    shutil.copytree(model_dir, project_dir / "model")
    lines = [f"# {board.name}: written by edge-mnv2 from {target.path or target.name}; `make` rebuilds"]
    lines += [f"{k} = {v}" for k, v in board.make_vars().items()]  # `make VAR=...` still overrides
    (project_dir / "board.mk").write_text("\n".join(lines) + "\n")
    return board


def section_sizes(elf: Path) -> dict[str, int]:
    """text, rodata, data, bss and stack bytes of an ELF (from arm-none-eabi-size -A)."""
    out = subprocess.run([SIZE, "-A", "-d", str(elf)], capture_output=True, text=True, check=True).stdout
    groups = {
        ".vectors": "text",
        ".text": "text",
        ".rodata": "rodata",
        ".ARM.extab": "rodata",
        ".ARM.exidx": "rodata",
        ".data": "data",
        ".bss": "bss",
        ".stack": "stack",
    }
    sizes = dict.fromkeys(("text", "rodata", "data", "bss", "stack"), 0)
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in groups and parts[1].isdigit():
            sizes[groups[parts[0]]] += int(parts[1])
    return sizes


def stack_frames(build_dir: Path) -> list[StackFrame]:
    """Every function's frame from the .su files under ``build_dir``, largest first."""
    frames = []
    for su in Path(build_dir).rglob("*.su"):
        for line in su.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) == 3 and parts[1].isdigit():
                function = parts[0].rsplit(":", 1)[-1]
                frames.append(StackFrame(function, int(parts[1]), parts[2]))
    return sorted(frames, key=lambda f: (-f.bytes, f.function))


def _overflow_error(log: str, board: BoardConfig) -> FirmwareTooLargeError | None:
    found = _OVERFLOW.findall(log)
    if not found:
        return None
    problems = []
    needs, available_by_region = {}, {}
    for region_name, over in dict(found).items():
        try:
            available = board.region(region_name).size
        except KeyError:
            problems.append(f"{region_name} over by {over} bytes")
            continue
        needs[region_name.lower()] = available + int(over)
        available_by_region[region_name.lower()] = available
        problems.append(f"{region_name} needs {available + int(over)} bytes, has {available} (over by {over})")
    hint = (
        "use a smaller model (width, resolution) or a board with more memory"
        if any(r != "RAM" for r, _ in found)
        else "use a smaller model or lower [micro] stack-bytes, or pick a board with more RAM"
    )
    return FirmwareTooLargeError(
        f"firmware does not fit {board.name}: {'; '.join(problems)}; {hint}", needs=needs, available=available_by_region
    )


def build_firmware(model_dir: Path, target: TargetSpec, project_dir: Path, *, jobs: int | None = None) -> FirmwareBuild:
    """Write the project for ``target`` in ``project_dir``, build it and report what it uses."""
    _check_toolchain()
    board = write_project(model_dir, target, project_dir)
    project_dir = Path(project_dir)
    jobs = jobs or max(1, min(8, len(os.sched_getaffinity(0))))
    proc = subprocess.run(["make", "-C", str(project_dir), f"-j{jobs}"], capture_output=True, text=True)
    log = proc.stdout + proc.stderr
    if proc.returncode != 0:
        too_large = _overflow_error(log, board)
        if too_large is not None:
            raise too_large
        errors = [line for line in log.splitlines() if "error" in line.lower()][:10]
        raise FirmwareBuildError(
            f"firmware build for {board.name} failed (make in {project_dir}):\n"
            + "\n".join(errors or log.splitlines()[-15:])
        )
    build = project_dir / "build"
    elf = build / "firmware.elf"
    return FirmwareBuild(
        project_dir=project_dir,
        board=board,
        elf=elf,
        bin=build / "firmware.bin",
        hex=build / "firmware.hex",
        map=build / "firmware.map",
        sizes=section_sizes(elf),
        stack_frames=stack_frames(build),
    )
