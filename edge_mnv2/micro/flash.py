"""Putting firmware on a board: start it under qemu, or run the board's flasher."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from edge_mnv2.artifact import Artifact, load_artifact
from edge_mnv2.errors import EdgeMnv2Error, FlashError
from edge_mnv2.micro.board import board_config
from edge_mnv2.micro.firmware import FirmwareBuild
from edge_mnv2.micro.qemu import EmulatedBoard
from edge_mnv2.targets import TargetSpec, load_target

FLASH_TIMEOUT_S = 300


@dataclass
class FlashedBoard:
    """A real board with the firmware on it, reached over ``url`` (its serial port)."""

    target: TargetSpec
    url: str
    log: str = ""

    def __enter__(self) -> FlashedBoard:
        return self

    def __exit__(self, *exc) -> None:
        pass

    def stop(self) -> None:
        """Nothing to stop: the board keeps running its firmware."""


def _images(elf_or_artifact: str | Path | FirmwareBuild) -> dict[str, Path]:
    """elf/bin/hex paths from a FirmwareBuild, a build or project folder, or an ELF file."""
    if isinstance(elf_or_artifact, FirmwareBuild):
        return {"elf": elf_or_artifact.elf, "bin": elf_or_artifact.bin, "hex": elf_or_artifact.hex}
    path = Path(elf_or_artifact)
    if path.is_dir():
        for candidate in (path / "firmware.elf", path / "build" / "firmware.elf"):
            if candidate.is_file():
                path = candidate
                break
        else:
            raise FlashError(
                f"no firmware.elf in {str(path)!r} or its build/ folder; build the "
                "firmware first (make in the project folder)"
            )
    if not path.is_file():
        raise FlashError(f"firmware {str(path)!r} does not exist; build the firmware first")
    return {"elf": path, "bin": path.with_suffix(".bin"), "hex": path.with_suffix(".hex")}


def load_firmware(artifact_path: str | Path, target_name: str | None = None) -> tuple[Artifact, TargetSpec]:
    """A verified firmware artifact and the board to flash it to (default: the board it was built for)."""
    artifact = load_artifact(artifact_path)
    artifact.verify()
    if not artifact.is_micro:
        raise EdgeMnv2Error(
            f"artifact {artifact_path!r} is not firmware (built for {artifact.target_name}); "
            "compile it for a microcontroller target first"
        )
    target = load_target(target_name or artifact.target_name)
    if target.name != artifact.target_name:
        raise EdgeMnv2Error(f"artifact {artifact_path!r} was built for {artifact.target_name}, not {target.name}")
    return artifact, target


def flash(
    elf_or_artifact: str | Path | FirmwareBuild, target: TargetSpec, port: str | None = None
) -> EmulatedBoard | FlashedBoard:
    """Flash the firmware to ``target``; return something with ``.url`` to open a SerialLink on.

    For ``method = "qemu"`` this is a running :class:`EmulatedBoard` (the caller keeps it alive
    and stops it); for a real board the flasher command runs with ``{elf}``, ``{bin}`` and
    ``{hex}`` filled in, and the result names ``port`` (default: the target's ``[flash] port``).
    """
    board = board_config(target)
    images = _images(elf_or_artifact)
    if board.emulated:
        return EmulatedBoard(target, images["elf"]).start()
    command = [part.format(**{k: str(v) for k, v in images.items()}) for part in board.flash_command]
    for key in ("bin", "hex"):
        if any(f"{{{key}}}" in part for part in board.flash_command) and not images[key].is_file():
            raise FlashError(f"the flasher needs {images[key]}, which is missing; rebuild the firmware")
    if shutil.which(command[0]) is None:
        raise FlashError(
            f"flasher {command[0]!r} for {target.name} is not installed or not on PATH "
            f"(install it, or change [flash] command in the target file)"
        )
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=FLASH_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise FlashError(
            f"{command[0]} did not finish within {FLASH_TIMEOUT_S} s flashing "
            f"{target.name}; check the board's USB connection and power"
        ) from exc
    log = proc.stdout + proc.stderr
    if proc.returncode != 0:
        tail = "\n".join(log.strip().splitlines()[-10:])
        raise FlashError(
            f"{command[0]} failed flashing {target.name} (exit {proc.returncode}); is the "
            f"board connected and not held by another debugger?\n{tail}"
        )
    url = port or board.port
    if not url:
        raise FlashError(
            f"flashed {target.name}, but no serial port is known: pass port= or set [flash] port in the target file"
        )
    return FlashedBoard(target, url, log)
