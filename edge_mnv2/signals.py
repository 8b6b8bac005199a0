"""SIGTERM and SIGHUP take Ctrl-C's path, so what a command started is stopped however it is told to stop.

The tracker, the RPC servers, qemu (emulated boards and the instruction-counting processes) run in
sessions of their own, so a signal sent to the command reaches only the command: ``kill``, systemd or a
container runtime (SIGTERM) or a closed terminal (SIGHUP) would end it at once and leave them running,
holding their ports. Inside :func:`terminating_interrupts` either signal raises :class:`Terminated`, a
``KeyboardInterrupt``, in the main thread: every ``with`` block and ``finally`` that stops a process on
Ctrl-C runs, and the command exits as it does on Ctrl-C (130 when interrupted; 0 for a service whose
normal stop is Ctrl-C). Repeats of either signal while that cleanup runs are ignored (a second Ctrl-C
still stops at once).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator

SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where Ctrl-C's KeyboardInterrupt would be."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def handled(handler: Callable, signums: tuple[int, ...]) -> Iterator[None]:
    """Run ``handler`` on each of ``signums`` while the block runs, then put the previous handlers back.

    Only the main thread can set handlers (and only it receives Python's signal handling), so elsewhere
    this does nothing. A signal other than SIGINT that is ignored on entry (SIGHUP under ``nohup``) stays
    ignored; SIGINT is always taken (a background job's SIGINT is ignored by the shell, not by the user).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    try:
        for signum in signums:
            if signum == signal.SIGINT or signal.getsignal(signum) is not signal.SIG_IGN:
                previous[signum] = signal.signal(signum, handler)
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, signal.SIG_DFL if old is None else old)  # None: set outside Python


@contextlib.contextmanager
def terminating_interrupts(signals: tuple[int, ...] = SIGNALS) -> Iterator[None]:
    """Turn ``signals`` into :class:`Terminated` while the block runs (see :func:`handled`)."""
    raised = False

    def handler(signum, frame):
        nonlocal raised
        if raised:  # the first one's cleanup is running: let it finish
            return
        raised = True
        raise Terminated(signum)

    with handled(handler, signals):
        yield
