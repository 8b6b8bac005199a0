"""edge-mnv2's int8 kernel library for microcontrollers (``firmware/nn/``), seen from Python.

The kernels come in three implementations (portable C, the DSP extension, Helium) chosen by the C
compiler from ``-mcpu``; their scratch sizes are macros of ``mnv2_nn.h``. Both are read here by
running the board's own preprocessor over the header, so Python never keeps a second copy of them.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from edge_mnv2.errors import CompileError

NN_DIR = "nn"
HEADER = "mnv2_nn.h"
GRAPH_HEADER = "mnv2_graph.h"


def nn_dir() -> Path:
    """The kernel library's sources (``firmware/nn``)."""
    from edge_mnv2.micro.firmware import firmware_dir

    return firmware_dir() / NN_DIR


def library_files() -> list[Path]:
    """The library's C files and headers, which an int8 model directory carries (so that it is a
    self-contained C library; the SIMD files compile to nothing where the core lacks the extension)."""
    return sorted(p for p in nn_dir().iterdir() if p.is_file() and p.suffix in (".c", ".h"))


def evaluate_macros(expressions: list[str], gcc_flags: list[str], cc: str = "arm-none-eabi-gcc") -> list:
    """The values of C expressions over ``mnv2_nn.h`` as the board's compiler sees them: integers, or
    strings for string literals."""
    marker = "@@edge-mnv2@@"
    source = f'#include "{HEADER}"\n' + "".join(f"{marker}{i} {e}\n" for i, e in enumerate(expressions))
    try:
        proc = subprocess.run(
            [cc, *gcc_flags, "-E", "-P", "-I", str(nn_dir()), "-x", "c", "-"],
            input=source,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except FileNotFoundError as exc:
        raise CompileError(f"{cc} is not installed; run `make setup` (Debian: gcc-arm-none-eabi)") from exc
    if proc.returncode != 0:
        raise CompileError(f"{cc} could not read {HEADER}: {(proc.stderr.strip().splitlines() or ['?'])[0]}")
    values: dict[int, object] = {}
    for line in proc.stdout.splitlines():
        m = re.match(rf"{marker}(\d+) (.*)$", line.strip())
        if not m:
            continue
        text = m.group(2).strip()
        if text.startswith('"'):
            values[int(m.group(1))] = text.strip('"')
        else:
            if not re.fullmatch(r"[\d\s()+*/-]+", text):
                raise CompileError(f"{HEADER}: {expressions[int(m.group(1))]} is not an integer expression: {text}")
            # C's / on these non-negative sizes is Python's //
            values[int(m.group(1))] = int(eval(text.replace("/", "//"), {"__builtins__": {}}))  # noqa: S307
    return [values[i] for i in range(len(expressions))]
