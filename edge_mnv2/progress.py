"""Progress for long work: stage lines with timings, and bars for loops (both on stderr)."""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Iterable, Iterator, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")
_quiet = False


def set_quiet(quiet: bool) -> None:
    """Silence stage lines and bars (for ``--quiet`` and library use)."""
    global _quiet
    _quiet = quiet


def is_quiet() -> bool:
    return _quiet


def note(message: str) -> None:
    """Tell the user something the run decided for them (on stderr, unless quiet)."""
    if not is_quiet():
        print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def stage(title: str) -> Iterator[None]:
    """Announce a stage, and report how long it took when it ends."""
    start = time.perf_counter()
    if not _quiet:
        print(f"• {title} ...", file=sys.stderr, flush=True)
    yield
    if not _quiet:
        print(f"  done in {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)


def bar(items: Iterable[T], desc: str, total: int | None = None) -> Iterable[T]:
    """A progress bar over ``items`` (shown on a terminal only)."""
    return tqdm(
        items,
        desc=f"  {desc}",
        total=total,
        file=sys.stderr,
        leave=False,
        dynamic_ncols=True,
        disable=True if _quiet else None,
    )
