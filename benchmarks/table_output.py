"""Where the benchmarks' Markdown tables go: standard output, and a file when ``-o`` names one."""

from __future__ import annotations

from pathlib import Path


def emit(lines: list[str], output: Path | None) -> None:
    """Print the table's ``lines``, and write them to ``output`` too when it is given."""
    text = "\n".join(lines)
    print(text)
    if output:
        output.write_text(text + "\n")
