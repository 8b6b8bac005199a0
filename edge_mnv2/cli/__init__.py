"""The ``edge-mnv2`` command: a thin layer over the package's functions.

User mistakes (any :class:`EdgeMnv2Error`) print one line and exit 2; Ctrl-C exits 130 after each
stage has cleaned up what it was writing, and SIGTERM or SIGHUP do the same (:mod:`edge_mnv2.signals`).

:mod:`edge_mnv2.cli.parser` holds the commands and options, :mod:`edge_mnv2.cli.commands` one handler per
command; the work itself is done by the package's modules.
"""

from __future__ import annotations

import os
import sys

from edge_mnv2 import progress, signals
from edge_mnv2.cli.parser import build_parser
from edge_mnv2.errors import EdgeMnv2Error
from edge_mnv2.remote import runtime_threads

__all__ = ["build_parser", "main"]


def main(argv: list[str] | None = None) -> int:
    """Run the command ``argv`` names (default: ``sys.argv[1:]``); the process's exit code."""
    args = build_parser().parse_args(argv)
    progress.set_quiet(args.quiet)
    try:
        runtime_threads.configure()  # before any kernel runs here or in a process started from here
        with signals.terminating_interrupts():  # SIGTERM/SIGHUP stop what a command started, as Ctrl-C does
            return args.func(args)
    except EdgeMnv2Error as exc:
        print(f"edge-mnv2: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader went away (`edge-mnv2 models | head`): stop quietly, as other command-line tools do;
        # stdout goes to /dev/null so that the interpreter's final flush does not fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a tool killed by the broken pipe
    except KeyboardInterrupt:
        print("edge-mnv2: interrupted; nothing half-written was left behind", file=sys.stderr)
        return 130
