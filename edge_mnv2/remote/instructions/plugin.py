"""The instruction-counting qemu-user plugin (``insn_count.c``): build it, pass it to qemu, read what it wrote.

The plugin counts the AArch64 instructions a guest executes, split into the classes of :data:`CLASSES`
(a partition: they sum to the total), plus the multiply-adds of the vector FMAs. A guest brackets a
region with ``lseek(MARKER_FD, BEGIN, SEEK_SET)`` ... ``lseek(MARKER_FD, END, SEEK_SET)``; the plugin
appends one JSON line per region, and one ``"exit"`` line for the whole process when it exits. A region
holds the instructions after the begin marker's ``svc`` up to and including the end marker's ``svc``
(so the end marker's own call is inside it). Counting is exact for a region whose work runs on one guest
thread. Written for qemu-user 7.2 (Debian 12; plugin API version 1) and built with the host's gcc.

Build it once with ``python -m edge_mnv2.remote.instructions.plugin`` (prints the plugin's path).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from edge_mnv2.errors import DeviceError
from edge_mnv2.remote.emulator import cache_dir

SOURCE = Path(__file__).with_name("insn_count.c")
# The classes the plugin reports, in the order of its enum; every instruction is in exactly one.
CLASSES: tuple[str, ...] = (
    "integer",
    "branch",
    "load_store",
    "simd_fp_load_store",
    "vector128",
    "vector64",
    "scalar_fp",
    "vector_fma",
    "scalar_fma",
)
MARKER_FD = 0x7ED6E  # 519534: a file descriptor no process has, so the marker lseek only says EBADF
BEGIN = 1
END = 2
GCC_FLAGS = ("-O2", "-shared", "-fPIC", "-std=gnu11")


def build_plugin(cache: Path | None = None) -> Path:
    """Compile the plugin with the host's gcc into the cache (once per version of its source); its path."""
    source = SOURCE.read_bytes()
    directory = Path(cache_dir() if cache is None else cache) / "qemu-plugins"
    target = directory / f"insn_count-{hashlib.sha256(source).hexdigest()[:12]}.so"
    if target.is_file():
        return target
    gcc = shutil.which("gcc")
    if gcc is None:
        raise DeviceError(
            "the instruction-counting plugin needs the host's C compiler gcc, which is not on PATH: "
            "install gcc: run `make setup`"
        )
    directory.mkdir(parents=True, exist_ok=True)
    # Built under a temporary name and renamed: a concurrent or interrupted build never leaves a partial .so
    # under the name later runs trust.
    fd, temp = tempfile.mkstemp(prefix=".insn_count-", suffix=".so.tmp", dir=directory)
    os.close(fd)
    try:
        done = subprocess.run([gcc, *GCC_FLAGS, "-o", temp, str(SOURCE)], check=False, capture_output=True, text=True)
        if done.returncode != 0:
            tail = "\n".join(done.stderr.strip().splitlines()[-15:])
            raise DeviceError(
                f"gcc could not build the instruction-counting plugin {SOURCE} (exit {done.returncode}):\n{tail}"
            )
        os.replace(temp, target)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)
    return target


def _escaped(value: str | os.PathLike) -> str:
    """A value for qemu's option syntax, where a comma separates options and ",," is a literal comma."""
    return os.path.abspath(value).replace(",", ",,")


def plugin_option(plugin: Path, out: Path, marker: int = MARKER_FD) -> list[str]:
    """The qemu-user arguments that load the plugin, writing to ``out`` and watching descriptor ``marker``."""
    return ["-plugin", f"{_escaped(plugin)},out={_escaped(out)},marker={int(marker)}"]


@dataclass(frozen=True)
class Region:
    """The instructions counted in one region (or, for the exit line, the whole process)."""

    total: int
    mix: dict[str, int]  # per class of CLASSES; the values sum to total
    vector_fma_lanes: int  # multiply-adds done by vector FMLA/FMLS (lanes per instruction, summed)

    @classmethod
    def from_json(cls, record: dict) -> Region:
        """A region from one line the plugin wrote."""
        return cls(
            total=int(record["total"]),
            mix={name: int(record["mix"][name]) for name in CLASSES},
            vector_fma_lanes=int(record["vector_fma_lanes"]),
        )

    def __sub__(self, other: Region) -> Region:
        """This region less ``other`` (say, the cost of the markers themselves, counted in an empty region)."""
        return Region(
            self.total - other.total,
            {k: self.mix[k] - other.mix.get(k, 0) for k in self.mix},
            self.vector_fma_lanes - other.vector_fma_lanes,
        )


def _records(out: Path) -> list[dict]:
    """The complete JSON lines of a plugin output file (none when it does not exist)."""
    try:
        text = Path(out).read_text()
    except FileNotFoundError:
        return []
    lines = text.split("\n")
    # The last piece is "" after a complete final line; anything else there is a line a killed process
    # did not finish, which is dropped rather than misread.
    return [json.loads(line) for line in lines[:-1] if line.strip()]


def read_regions(out: Path) -> list[Region]:
    """The regions the plugin wrote to ``out``, in the order they ended (exit lines left out)."""
    return [Region.from_json(r) for r in _records(out) if not r.get("exit")]


def read_exit(out: Path) -> Region | None:
    """The whole-process counts of the last process that exited writing to ``out`` (None if none did)."""
    exits = [r for r in _records(out) if r.get("exit")]
    return Region.from_json(exits[-1]) if exits else None


def main() -> None:
    """Build the plugin (or find it built) and print its path."""
    try:
        print(build_plugin())
    except DeviceError as error:
        raise SystemExit(f"error: {error}") from None


if __name__ == "__main__":
    main()
